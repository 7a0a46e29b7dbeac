"""Domain objects to and from their protobuf form: one codec for the API, the outbox and replays."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from payments.v1 import events_pb2, money_pb2, payments_pb2, refunds_pb2

from server.domain.events import PaymentEvent
from server.domain.money import Money
from server.domain.payment import CaptureMethod, Payment
from server.domain.payment_states import PaymentState
from server.domain.refund import Refund, RefundState

R = TypeVar("R")
M = TypeVar("M", bound=Message)

_CAPTURE_TO_PROTO = {
    CaptureMethod.AUTOMATIC: payments_pb2.CAPTURE_METHOD_AUTOMATIC,
    CaptureMethod.MANUAL: payments_pb2.CAPTURE_METHOD_MANUAL,
}
_CAPTURE_FROM_PROTO: dict[int, CaptureMethod] = {v: k for k, v in _CAPTURE_TO_PROTO.items()}
_STATE_TO_PROTO = {
    state: payments_pb2.PaymentState.Value(f"PAYMENT_STATE_{state.value}") for state in PaymentState
}
_STATE_FROM_PROTO: dict[int, PaymentState] = {v: k for k, v in _STATE_TO_PROTO.items()}


def state_to_proto(state: PaymentState) -> payments_pb2.PaymentState.ValueType:
    return _STATE_TO_PROTO[state]


def state_from_proto(value: int) -> PaymentState | None:
    return _STATE_FROM_PROTO.get(value)


def capture_method_from_proto(value: int) -> CaptureMethod | None:
    if value == payments_pb2.CAPTURE_METHOD_UNSPECIFIED:
        return CaptureMethod.AUTOMATIC
    return _CAPTURE_FROM_PROTO.get(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(moment: datetime) -> Timestamp:
    return Timestamp(**_timestamp_fields(moment))


def _timestamp_fields(moment: datetime) -> dict[str, int]:
    """A Timestamp's fields, as keyword arguments. A message built with a dict in a field
    makes that field in place, where a Timestamp would be made and then copied."""
    # Arithmetic on the timedelta: Timestamp.FromDatetime costs several times as much,
    # and a payment's reply and events carry six of these.
    if moment.tzinfo is None:
        moment = moment.astimezone(UTC)
    since = moment - _EPOCH
    return {"seconds": since.days * 86_400 + since.seconds, "nanos": since.microseconds * 1000}


def encoder(to_proto: Callable[[R], Message]) -> Callable[[R], bytes]:
    """Deterministic bytes, so a stored response replays byte for byte."""
    return lambda resource: to_proto(resource).SerializeToString(deterministic=True)


def decoder(parse: Callable[[bytes], M], from_proto: Callable[[M], R]) -> Callable[[bytes], R]:
    """A stored response back, for replaying it."""
    return lambda data: from_proto(parse(data))


class Event(Protocol):
    @property
    def type(self) -> str: ...

    @property
    def sequence(self) -> int: ...

    @property
    def occurred_at(self) -> datetime: ...


def new_envelope(
    event: Event, aggregate_type: str, aggregate_id: str, bodies: Mapping[str, str]
) -> tuple[events_pb2.EventEnvelope, Any]:
    """A new envelope for one event of an aggregate, and the body its type selects."""
    envelope = events_pb2.EventEnvelope(
        event_id=str(uuid.uuid4()),
        type=event.type,
        occurred_at=timestamp(event.occurred_at),
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        sequence=event.sequence,
    )
    return envelope, getattr(envelope, bodies[event.type])


def money_to_proto(money: Money) -> money_pb2.Money:
    return money_pb2.Money(currency_code=money.currency_code, minor_units=money.minor_units)


def payment_fields(payment: Payment) -> dict[str, Any]:
    """The Payment message's fields, as keyword arguments: the one mapping of a payment to
    its proto. A list's reply takes these straight, and builds each message in place."""
    currency = payment.amount.currency_code
    capture_time = payment.capture_time
    return {
        "id": payment.id,
        "order_id": payment.order_id,
        "user_id": payment.user_id,
        "amount": {"currency_code": currency, "minor_units": payment.amount.minor_units},
        "state": _STATE_TO_PROTO[payment.state],
        "provider": payment.provider,
        "provider_payment_id": payment.provider_payment_id,
        "capture_method": _CAPTURE_TO_PROTO[payment.capture_method],
        "amount_captured": {"currency_code": currency, "minor_units": payment.amount_captured},
        "amount_refunded": {"currency_code": currency, "minor_units": payment.amount_refunded},
        "failure_code": payment.failure_code,
        "failure_message": payment.failure_message,
        "description": payment.description,
        # None, not {}: an empty map costs a pass through Python's MutableMapping.update.
        "metadata": payment.metadata or None,
        "create_time": _timestamp_fields(payment.create_time),
        "update_time": _timestamp_fields(payment.update_time),
        "payment_method_id": payment.payment_method_id,
        "capture_time": _timestamp_fields(capture_time) if capture_time else None,
    }


def payment_to_proto(payment: Payment) -> payments_pb2.Payment:
    return payments_pb2.Payment(**payment_fields(payment))


def payment_from_proto(message: payments_pb2.Payment) -> Payment:
    return Payment(
        id=message.id,
        order_id=message.order_id,
        user_id=message.user_id,
        amount=Money(message.amount.currency_code, message.amount.minor_units),
        state=_STATE_FROM_PROTO[message.state],
        provider=message.provider,
        capture_method=_CAPTURE_FROM_PROTO[message.capture_method],
        create_time=message.create_time.ToDatetime(UTC),
        update_time=message.update_time.ToDatetime(UTC),
        provider_payment_id=message.provider_payment_id,
        payment_method_id=message.payment_method_id,
        amount_captured=message.amount_captured.minor_units,
        amount_refunded=message.amount_refunded.minor_units,
        failure_code=message.failure_code,
        failure_message=message.failure_message,
        description=message.description,
        metadata=dict(message.metadata),
        capture_time=message.capture_time.ToDatetime(UTC)
        if message.HasField("capture_time")
        else None,
    )


encode_payment = encoder(payment_to_proto)
decode_payment = decoder(payments_pb2.Payment.FromString, payment_from_proto)


_REFUND_STATE_TO_PROTO = {
    state: refunds_pb2.RefundState.Value(f"REFUND_STATE_{state.value}") for state in RefundState
}
_REFUND_STATE_FROM_PROTO: dict[int, RefundState] = {v: k for k, v in _REFUND_STATE_TO_PROTO.items()}


def refund_to_proto(refund: Refund) -> refunds_pb2.Refund:
    return refunds_pb2.Refund(
        id=refund.id,
        payment_id=refund.payment_id,
        amount=money_to_proto(refund.amount),
        state=_REFUND_STATE_TO_PROTO[refund.state],
        reason=refund.reason,
        provider_refund_id=refund.provider_refund_id,
        failure_code=refund.failure_code,
        failure_message=refund.failure_message,
        create_time=timestamp(refund.create_time),
        update_time=timestamp(refund.update_time),
        window_override_reason=refund.window_override_reason,
    )


def refund_from_proto(message: refunds_pb2.Refund, provider: str = "") -> Refund:
    return Refund(
        id=message.id,
        payment_id=message.payment_id,
        amount=Money(message.amount.currency_code, message.amount.minor_units),
        state=_REFUND_STATE_FROM_PROTO[message.state],
        provider=provider,
        create_time=message.create_time.ToDatetime(UTC),
        update_time=message.update_time.ToDatetime(UTC),
        reason=message.reason,
        provider_refund_id=message.provider_refund_id,
        failure_code=message.failure_code,
        failure_message=message.failure_message,
        window_override_reason=message.window_override_reason,
    )


encode_refund = encoder(refund_to_proto)
decode_refund = decoder(refunds_pb2.Refund.FromString, refund_from_proto)


_PAYMENT_EVENT_FIELDS = {
    "payment.created": "payment_created",
    "payment.processing": "payment_processing",
    "payment.requires_action": "payment_requires_action",
    "payment.authorized": "payment_authorized",
    "payment.succeeded": "payment_succeeded",
    "payment.failed": "payment_failed",
    "payment.canceled": "payment_canceled",
    "payment.captured": "payment_captured",
    "refund.issued": "refund_issued",
    "refund.failed": "refund_failed",
}


def payment_event_envelope(event: PaymentEvent, payment: Payment) -> events_pb2.EventEnvelope:
    return payment_event_envelopes([event], payment)[0]


def payment_event_envelopes(
    events: Sequence[PaymentEvent], payment: Payment
) -> list[events_pb2.EventEnvelope]:
    """The envelopes of `events`, each carrying `payment` as it is after the change.

    The payment's proto is built once: every event of one write carries the same.
    """
    snapshot = payment_to_proto(payment) if events else None
    envelopes = []
    for event in events:
        envelope, body = new_envelope(event, "payment", event.payment_id, _PAYMENT_EVENT_FIELDS)
        body.payment.CopyFrom(snapshot)
        if event.refund is not None:
            body.refund.CopyFrom(refund_to_proto(event.refund))
        if event.reason and event.type == "payment.canceled":
            body.reason = event.reason
        envelopes.append(envelope)
    return envelopes
