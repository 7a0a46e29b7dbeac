"""PaymentMethodService over gRPC: proto in, command to the service layer, proto out."""

from __future__ import annotations

from payments.v1 import payment_methods_pb2 as pb
from payments.v1 import payment_methods_pb2_grpc

from server.adapters.payment_method_codec import billing_from_proto, payment_method_to_proto
from server.domain.principal import Principal
from server.grpc import methods as rpc
from server.service.ownership import require_own_method, user_id_for
from server.service.payment_methods import commands as payment_method_commands
from server.service.payment_methods import queries as payment_method_queries
from server.service.payment_methods.requests import (
    AttachPaymentMethod,
    DetachPaymentMethod,
    UpdatePaymentMethod,
)


def _attach(request: pb.AttachPaymentMethodRequest, principal: Principal) -> AttachPaymentMethod:
    return AttachPaymentMethod(
        request_id=request.request_id,
        user_id=user_id_for(principal.owner, request.user_id),
        provider_payment_method_id=request.provider_payment_method_id,
        set_default=request.set_default,
        billing_details=billing_from_proto(request.billing_details),
    )


def _update(request: pb.UpdatePaymentMethodRequest, _: Principal) -> UpdatePaymentMethod:
    changes = request.payment_method
    return UpdatePaymentMethod(
        id=changes.id,
        request_id=request.request_id,
        default=changes.default,
        billing_details=billing_from_proto(changes.billing_details)
        if changes.HasField("billing_details")
        else None,
        update_mask=tuple(request.update_mask.paths) if request.HasField("update_mask") else None,
    )


def _detach(request: pb.DetachPaymentMethodRequest, _: Principal) -> DetachPaymentMethod:
    return DetachPaymentMethod(request.id, request.request_id)


_ANSWER = rpc.resource(payment_method_to_proto)
_OWN = rpc.owner_only(require_own_method)


class PaymentMethodServicer(rpc.Servicer, payment_methods_pb2_grpc.PaymentMethodServiceServicer):
    AttachPaymentMethod = rpc.command(
        _attach, payment_method_commands.attach_payment_method, _ANSWER
    )
    GetPaymentMethod = rpc.read(
        rpc.by_id(payment_method_queries.get_payment_method), payment_method_to_proto
    )
    ListPaymentMethods = rpc.read(
        rpc.users_page(payment_method_queries.list_payment_methods),
        rpc.page(pb.ListPaymentMethodsResponse, "payment_methods", payment_method_to_proto),
    )
    UpdatePaymentMethod = rpc.command(
        _update, payment_method_commands.update_payment_method, _ANSWER, _OWN
    )
    DetachPaymentMethod = rpc.command(
        _detach, payment_method_commands.detach_payment_method, _ANSWER, _OWN
    )
