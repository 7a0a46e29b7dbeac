"""PaymentMethodService over gRPC: proto in, command to the service layer, proto out."""

from __future__ import annotations

from typing import Any

from grpc import aio
from payments.v1 import payment_methods_pb2 as pb
from payments.v1 import payment_methods_pb2_grpc

from server.adapters.payment_method_codec import billing_from_proto, payment_method_to_proto
from server.domain.payment_method import PaymentMethod
from server.grpc.caller import caller_of, principal_of
from server.grpc.replies import reply
from server.service.dependencies import Dependencies
from server.service.ownership import require_own_method, user_id_for
from server.service.payment_methods import commands as payment_method_commands
from server.service.payment_methods import queries as payment_method_queries
from server.service.payment_methods.requests import (
    AttachPaymentMethod,
    DetachPaymentMethod,
    UpdatePaymentMethod,
)
from server.service.pipeline.command import Outcome

Context = aio.ServicerContext[Any, Any]


def _respond(context: Context, outcome: Outcome[PaymentMethod]) -> pb.PaymentMethod:
    return reply(context, outcome, payment_method_to_proto)


class PaymentMethodServicer(payment_methods_pb2_grpc.PaymentMethodServiceServicer):
    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    async def AttachPaymentMethod(
        self, request: pb.AttachPaymentMethodRequest, context: Context
    ) -> pb.PaymentMethod:
        command = AttachPaymentMethod(
            request_id=request.request_id,
            user_id=user_id_for(principal_of(context).owner, request.user_id),
            provider_payment_method_id=request.provider_payment_method_id,
            set_default=request.set_default,
            billing_details=billing_from_proto(request.billing_details),
        )
        outcome = await payment_method_commands.attach_payment_method(
            self._deps, caller_of(context), command
        )
        return _respond(context, outcome)

    async def GetPaymentMethod(
        self, request: pb.GetPaymentMethodRequest, context: Context
    ) -> pb.PaymentMethod:
        method = await payment_method_queries.get_payment_method(
            self._deps.uow, request.id, principal_of(context).owner
        )
        return payment_method_to_proto(method)

    async def ListPaymentMethods(
        self, request: pb.ListPaymentMethodsRequest, context: Context
    ) -> pb.ListPaymentMethodsResponse:
        found, token = await payment_method_queries.list_payment_methods(
            self._deps.lagging_reads,
            user_id_for(principal_of(context).owner, request.user_id),
            request.page_size,
            request.page_token,
        )
        return pb.ListPaymentMethodsResponse(
            payment_methods=[payment_method_to_proto(m) for m in found], next_page_token=token
        )

    async def UpdatePaymentMethod(
        self, request: pb.UpdatePaymentMethodRequest, context: Context
    ) -> pb.PaymentMethod:
        changes = request.payment_method
        await require_own_method(self._deps.uow, changes.id, principal_of(context).owner)
        command = UpdatePaymentMethod(
            id=changes.id,
            request_id=request.request_id,
            default=changes.default,
            billing_details=billing_from_proto(changes.billing_details)
            if changes.HasField("billing_details")
            else None,
            update_mask=tuple(request.update_mask.paths)
            if request.HasField("update_mask")
            else None,
        )
        outcome = await payment_method_commands.update_payment_method(
            self._deps, caller_of(context), command
        )
        return _respond(context, outcome)

    async def DetachPaymentMethod(
        self, request: pb.DetachPaymentMethodRequest, context: Context
    ) -> pb.PaymentMethod:
        await require_own_method(self._deps.uow, request.id, principal_of(context).owner)
        command = DetachPaymentMethod(request.id, request.request_id)
        outcome = await payment_method_commands.detach_payment_method(
            self._deps, caller_of(context), command
        )
        return _respond(context, outcome)
