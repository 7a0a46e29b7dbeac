"""PaymentService over gRPC: proto in, command to the service layer, proto out."""

from __future__ import annotations

from typing import Any

from grpc import aio
from payments.v1 import payments_pb2, payments_pb2_grpc

from server.adapters.codec import capture_method_from_proto, payment_to_proto
from server.domain.errors import FieldViolation, InvalidArgument
from server.domain.payment import Payment
from server.grpc.caller import caller_of, principal_of
from server.grpc.list_payments_query import query_from_request
from server.grpc.replies import reply
from server.service.dependencies import Dependencies
from server.service.ownership import require_own_payment, user_id_for
from server.service.payments import commands as payment_commands
from server.service.payments import queries as payment_queries
from server.service.payments.client_secrets import client_secret_while_awaiting_customer
from server.service.payments.reconcile import reconcile_payments
from server.service.payments.requests import (
    AmountInput,
    CancelPayment,
    CapturePayment,
    ConfirmPayment,
    CreatePayment,
    SimulatePayment,
)
from server.service.pipeline.command import Outcome

Context = aio.ServicerContext[Any, Any]
_SIMULATED = {
    payments_pb2.SIMULATED_OUTCOME_SUCCEEDED: True,
    payments_pb2.SIMULATED_OUTCOME_FAILED: False,
}


def _respond(context: Context, outcome: Outcome[Payment]) -> payments_pb2.Payment:
    message = reply(context, outcome, payment_to_proto)
    if principal_of(context).may_see_client_secret_of(outcome.resource.user_id):
        message.client_secret = outcome.client_secret
    return message


class PaymentServicer(payments_pb2_grpc.PaymentServiceServicer):
    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    async def _require_own(self, payment_id: str, context: Context) -> None:
        await require_own_payment(self._deps.uow, payment_id, principal_of(context).owner)

    async def CreatePayment(
        self, request: payments_pb2.CreatePaymentRequest, context: Context
    ) -> payments_pb2.Payment:
        command = CreatePayment(
            request_id=request.request_id,
            order_id=request.order_id,
            user_id=user_id_for(principal_of(context).owner, request.user_id),
            amount=AmountInput(request.amount.currency_code, request.amount.minor_units)
            if request.HasField("amount")
            else None,
            payment_method_id=request.payment_method_id,
            capture_method=capture_method_from_proto(request.capture_method),
            confirm=request.confirm,
            description=request.description,
            metadata=dict(request.metadata),
        )
        outcome = await payment_commands.create_payment(self._deps, caller_of(context), command)
        return _respond(context, outcome)

    async def GetPayment(
        self, request: payments_pb2.GetPaymentRequest, context: Context
    ) -> payments_pb2.Payment:
        payment_commands.require_payment_id(request.id)
        principal = principal_of(context)
        payment = await payment_queries.get_payment(
            self._deps.uow, request.id, principal.owner, self._deps.payment_statements
        )
        message = payment_to_proto(payment)
        if principal.may_see_client_secret_of(payment.user_id):
            message.client_secret = await client_secret_while_awaiting_customer(self._deps, payment)
        return message

    async def ListPayments(
        self, request: payments_pb2.ListPaymentsRequest, context: Context
    ) -> payments_pb2.ListPaymentsResponse:
        query = query_from_request(request)
        found, token = await payment_queries.list_payments(
            self._deps.lagging_reads, query, request.page_token, principal_of(context).owner
        )
        return payments_pb2.ListPaymentsResponse(
            payments=[payment_to_proto(p) for p in found], next_page_token=token
        )

    async def ConfirmPayment(
        self, request: payments_pb2.ConfirmPaymentRequest, context: Context
    ) -> payments_pb2.Payment:
        await self._require_own(request.id, context)
        command = ConfirmPayment(request.id, request.request_id, request.payment_method_id)
        outcome = await payment_commands.confirm_payment(self._deps, caller_of(context), command)
        return _respond(context, outcome)

    async def CapturePayment(
        self, request: payments_pb2.CapturePaymentRequest, context: Context
    ) -> payments_pb2.Payment:
        await self._require_own(request.id, context)
        amount = request.amount_to_capture
        command = CapturePayment(
            request.id,
            request.request_id,
            AmountInput(amount.currency_code, amount.minor_units)
            if request.HasField("amount_to_capture")
            else None,
        )
        outcome = await payment_commands.capture_payment(self._deps, caller_of(context), command)
        return _respond(context, outcome)

    async def CancelPayment(
        self, request: payments_pb2.CancelPaymentRequest, context: Context
    ) -> payments_pb2.Payment:
        await self._require_own(request.id, context)
        command = CancelPayment(request.id, request.request_id, request.reason)
        outcome = await payment_commands.cancel_payment(self._deps, caller_of(context), command)
        return _respond(context, outcome)

    async def SimulatePayment(
        self, request: payments_pb2.SimulatePaymentRequest, context: Context
    ) -> payments_pb2.Payment:
        command = SimulatePayment(request.id, request.request_id, _SIMULATED.get(request.outcome))
        outcome = await payment_commands.simulate_payment(self._deps, caller_of(context), command)
        return _respond(context, outcome)

    async def ReconcilePayments(
        self, request: payments_pb2.ReconcilePaymentsRequest, context: Context
    ) -> payments_pb2.ReconcilePaymentsResponse:
        if request.page_size < 0:
            raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
        report = await reconcile_payments(
            self._deps,
            include_not_due=request.include_not_due,
            limit=min(request.page_size or 100, 1000),
        )
        return payments_pb2.ReconcilePaymentsResponse(
            checked_count=report.checked,
            changed_payment_ids=report.changed,
            unresolved_payment_ids=report.unresolved,
        )
