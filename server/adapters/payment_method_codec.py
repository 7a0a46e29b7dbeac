"""Saved payment methods to and from their protobuf form, for the API and for replays."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC

from payments.v1 import payment_methods_pb2 as pb

from server.adapters.codec import decoder, encoder, timestamp
from server.domain.payment_method import (
    Address,
    BillingDetails,
    CardDetails,
    PaymentMethod,
    PaymentMethodType,
)

_TYPE_TO_PROTO = {PaymentMethodType.CARD: pb.PAYMENT_METHOD_TYPE_CARD}
_TYPE_FROM_PROTO: dict[int, PaymentMethodType] = {v: k for k, v in _TYPE_TO_PROTO.items()}
_ADDRESS_FIELDS = tuple(field.name for field in fields(Address))


def _address_fields(address: Address | pb.Address) -> dict[str, str]:
    """The message and the domain name an address's lines alike."""
    return {name: getattr(address, name) for name in _ADDRESS_FIELDS}


def billing_to_proto(billing: BillingDetails) -> pb.BillingDetails:
    message = pb.BillingDetails(name=billing.name, email=billing.email, phone=billing.phone)
    address = billing.address
    if address != Address():
        # Left unset when empty, so JSON readers see no empty object.
        message.address.CopyFrom(pb.Address(**_address_fields(address)))
    return message


def billing_from_proto(message: pb.BillingDetails) -> BillingDetails:
    return BillingDetails(
        name=message.name,
        email=message.email,
        phone=message.phone,
        address=Address(**_address_fields(message.address)),
    )


def payment_method_to_proto(method: PaymentMethod) -> pb.PaymentMethod:
    message = pb.PaymentMethod(
        id=method.id,
        user_id=method.user_id,
        provider=method.provider,
        provider_customer_id=method.provider_customer_id,
        provider_payment_method_id=method.provider_payment_method_id,
        type=_TYPE_TO_PROTO[method.type],
        card=pb.CardDetails(
            brand=method.card.brand,
            last4=method.card.last4,
            exp_month=method.card.exp_month,
            exp_year=method.card.exp_year,
        ),
        default=method.is_default,
        state=pb.PAYMENT_METHOD_STATE_ATTACHED
        if method.attached
        else pb.PAYMENT_METHOD_STATE_DETACHED,
        create_time=timestamp(method.create_time),
        update_time=timestamp(method.update_time),
    )
    if not method.billing_details.is_empty:
        message.billing_details.CopyFrom(billing_to_proto(method.billing_details))
    if method.detach_time is not None:
        message.detach_time.CopyFrom(timestamp(method.detach_time))
    return message


def payment_method_from_proto(message: pb.PaymentMethod) -> PaymentMethod:
    card = message.card
    return PaymentMethod(
        id=message.id,
        user_id=message.user_id,
        provider=message.provider,
        provider_customer_id=message.provider_customer_id,
        provider_payment_method_id=message.provider_payment_method_id,
        type=_TYPE_FROM_PROTO[message.type],
        card=CardDetails(card.brand, card.last4, card.exp_month, card.exp_year),
        is_default=message.default,
        billing_details=billing_from_proto(message.billing_details),
        create_time=message.create_time.ToDatetime(UTC),
        update_time=message.update_time.ToDatetime(UTC),
        detach_time=message.detach_time.ToDatetime(UTC)
        if message.HasField("detach_time")
        else None,
    )


encode_payment_method = encoder(payment_method_to_proto)
decode_payment_method = decoder(pb.PaymentMethod.FromString, payment_method_from_proto)
