"""PaymentService over gRPC: proto in, command to the service layer, proto out."""

from __future__ import annotations

from collections.abc import Awaitable

from payments.v1 import payments_pb2, payments_pb2_grpc

from server.adapters.codec import capture_method_from_proto, payment_fields, payment_to_proto
from server.domain.errors import FieldViolation, InvalidArgument
from server.domain.payment import Payment
from server.domain.principal import Principal
from server.grpc import methods as rpc
from server.grpc.list_payments_query import query_from_request
from server.service.dependencies import Dependencies
from server.service.ownership import require_own_payment, user_id_for
from server.service.payments import commands as payment_commands
from server.service.payments import queries as payment_queries
from server.service.payments.client_secrets import client_secret_while_awaiting_customer
from server.service.payments.reconcile import reconcile_payments
from server.service.payments.requests import (
    CancelPayment,
    CapturePayment,
    ConfirmPayment,
    CreatePayment,
    SimulatePayment,
)
from server.service.pipeline.command import Outcome

_SIMULATED = {
    payments_pb2.SIMULATED_OUTCOME_SUCCEEDED: True,
    payments_pb2.SIMULATED_OUTCOME_FAILED: False,
}


def _answer(outcome: Outcome[Payment], principal: Principal) -> payments_pb2.Payment:
    message = payment_to_proto(outcome.resource)
    if principal.may_see_client_secret_of(outcome.resource.user_id):
        message.client_secret = outcome.client_secret
    return message


def _create(request: payments_pb2.CreatePaymentRequest, principal: Principal) -> CreatePayment:
    return CreatePayment(
        request_id=request.request_id,
        order_id=request.order_id,
        user_id=user_id_for(principal.owner, request.user_id),
        amount=rpc.optional_amount(request, "amount"),
        payment_method_id=request.payment_method_id,
        capture_method=capture_method_from_proto(request.capture_method),
        confirm=request.confirm,
        description=request.description,
        metadata=dict(request.metadata),
    )


async def _get(
    deps: Dependencies, request: payments_pb2.GetPaymentRequest, principal: Principal
) -> payments_pb2.Payment:
    payment = await payment_queries.get_payment(
        deps.uow, request.id, principal.owner, deps.payment_statements
    )
    message = payment_to_proto(payment)
    if principal.may_see_client_secret_of(payment.user_id):
        message.client_secret = await client_secret_while_awaiting_customer(deps, payment)
    return message


def _list(
    deps: Dependencies, request: payments_pb2.ListPaymentsRequest, principal: Principal
) -> Awaitable[rpc.Page[Payment]]:
    query = query_from_request(request)
    # The statements read the primary: with a replica, lists stay on it.
    statements = deps.payment_statements if deps.replica is None else None
    return payment_queries.list_payments(
        deps.lagging_reads, query, request.page_token, principal.owner, statements
    )


def _confirm(request: payments_pb2.ConfirmPaymentRequest, _: Principal) -> ConfirmPayment:
    return ConfirmPayment(request.id, request.request_id, request.payment_method_id)


def _capture(request: payments_pb2.CapturePaymentRequest, _: Principal) -> CapturePayment:
    return CapturePayment(
        request.id, request.request_id, rpc.optional_amount(request, "amount_to_capture")
    )


def _cancel(request: payments_pb2.CancelPaymentRequest, _: Principal) -> CancelPayment:
    return CancelPayment(request.id, request.request_id, request.reason)


def _simulate(request: payments_pb2.SimulatePaymentRequest, _: Principal) -> SimulatePayment:
    return SimulatePayment(request.id, request.request_id, _SIMULATED.get(request.outcome))


async def _reconcile(
    deps: Dependencies, request: payments_pb2.ReconcilePaymentsRequest, _: Principal
) -> payments_pb2.ReconcilePaymentsResponse:
    if request.page_size < 0:
        raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
    report = await reconcile_payments(
        deps, include_not_due=request.include_not_due, limit=min(request.page_size or 100, 1000)
    )
    return payments_pb2.ReconcilePaymentsResponse(
        checked_count=report.checked,
        changed_payment_ids=report.changed,
        unresolved_payment_ids=report.unresolved,
    )


_OWN = rpc.owner_only(require_own_payment)


class PaymentServicer(rpc.Servicer, payments_pb2_grpc.PaymentServiceServicer):
    CreatePayment = rpc.command(_create, payment_commands.create_payment, _answer)
    GetPayment = rpc.answered(_get)
    ListPayments = rpc.read(
        _list, rpc.page(payments_pb2.ListPaymentsResponse, "payments", payment_fields)
    )
    ConfirmPayment = rpc.command(_confirm, payment_commands.confirm_payment, _answer, _OWN)
    CapturePayment = rpc.command(_capture, payment_commands.capture_payment, _answer, _OWN)
    CancelPayment = rpc.command(_cancel, payment_commands.cancel_payment, _answer, _OWN)
    SimulatePayment = rpc.command(_simulate, payment_commands.simulate_payment, _answer)
    ReconcilePayments = rpc.answered(_reconcile)
