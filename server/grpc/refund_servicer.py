"""RefundService over gRPC: proto in, command to the service layer, proto out."""

from __future__ import annotations

from typing import Any

from grpc import aio
from payments.v1 import refunds_pb2, refunds_pb2_grpc

from server.adapters.codec import refund_to_proto
from server.grpc.caller import caller_of, principal_of
from server.service import refund_queries
from server.service.commands import AmountInput
from server.service.dependencies import Dependencies
from server.service.refund_commands import CreateRefund, create_refund
from server.service.refund_window import window_override_of

Context = aio.ServicerContext[Any, Any]
REPLAYED = (("idempotent-replayed", "true"),)


class RefundServicer(refunds_pb2_grpc.RefundServiceServicer):
    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    async def CreateRefund(
        self, request: refunds_pb2.CreateRefundRequest, context: Context
    ) -> refunds_pb2.Refund:
        command = CreateRefund(
            request_id=request.request_id,
            payment_id=request.payment_id,
            amount=AmountInput(request.amount.currency_code, request.amount.minor_units)
            if request.HasField("amount")
            else None,
            reason=request.reason,
            window_override_reason=window_override_of(
                principal_of(context),
                request.HasField("window_override"),
                request.window_override.reason,
            ),
        )
        outcome = await create_refund(self._deps, caller_of(context), command)
        if outcome.replayed:
            context.set_trailing_metadata(REPLAYED)
        return refund_to_proto(outcome.refund)

    async def GetRefund(
        self, request: refunds_pb2.GetRefundRequest, context: Context
    ) -> refunds_pb2.Refund:
        refund = await refund_queries.get_refund(
            self._deps.uow, request.id, principal_of(context).owner
        )
        return refund_to_proto(refund)

    async def ListRefunds(
        self, request: refunds_pb2.ListRefundsRequest, context: Context
    ) -> refunds_pb2.ListRefundsResponse:
        query = refund_queries.refund_query(request.payment_id, request.page_size)
        found, token = await refund_queries.list_refunds(
            self._deps.uow, query, request.page_token, principal_of(context).owner
        )
        return refunds_pb2.ListRefundsResponse(
            refunds=[refund_to_proto(r) for r in found], next_page_token=token
        )
