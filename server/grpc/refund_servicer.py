"""RefundService over gRPC: proto in, command to the service layer, proto out."""

from __future__ import annotations

from collections.abc import Awaitable

from payments.v1 import refunds_pb2, refunds_pb2_grpc

from server.adapters.codec import refund_to_proto
from server.domain.principal import Principal
from server.domain.refund import Refund
from server.grpc import methods as rpc
from server.service.dependencies import Dependencies
from server.service.refunds import queries as refund_queries
from server.service.refunds.commands import CreateRefund, create_refund
from server.service.refunds.window import window_override_of


def _create(request: refunds_pb2.CreateRefundRequest, principal: Principal) -> CreateRefund:
    return CreateRefund(
        request_id=request.request_id,
        payment_id=request.payment_id,
        amount=rpc.optional_amount(request, "amount"),
        reason=request.reason,
        window_override_reason=window_override_of(
            principal, request.HasField("window_override"), request.window_override.reason
        ),
    )


def _list(
    deps: Dependencies, request: refunds_pb2.ListRefundsRequest, principal: Principal
) -> Awaitable[rpc.Page[Refund]]:
    query = refund_queries.refund_query(request.payment_id, request.page_size)
    return refund_queries.list_refunds(deps.uow, query, request.page_token, principal.owner)


class RefundServicer(rpc.Servicer, refunds_pb2_grpc.RefundServiceServicer):
    CreateRefund = rpc.command(_create, create_refund, rpc.resource(refund_to_proto))
    GetRefund = rpc.read(rpc.by_id(refund_queries.get_refund), refund_to_proto)
    ListRefunds = rpc.read(
        _list, rpc.page(refunds_pb2.ListRefundsResponse, "refunds", refund_to_proto)
    )
