"""Tests for the protobuf codec of payments and their events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st
from payments.v1 import payments_pb2

from server.adapters.codec import (
    decode_payment,
    encode_payment,
    payment_event_envelope,
    payment_fields,
    payment_from_proto,
    payment_to_proto,
    timestamp,
)
from server.domain.currencies import MINOR_UNIT_EXPONENTS
from server.domain.events import PaymentEvent, event_types_for
from server.domain.money import MAX_MINOR_UNITS, Money
from server.domain.payment import CaptureMethod, Payment
from server.domain.payment_states import PaymentState
from server.grpc.methods import page

T0 = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)

# Text as it can travel in a proto3 string: any Unicode scalar value (no lone surrogates).
proto_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
moments = st.datetimes(
    min_value=datetime(1900, 1, 1, 0, 0),
    max_value=datetime(9000, 12, 31, 0, 0),
    timezones=st.one_of(
        st.just(UTC),
        st.builds(
            timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
        ),
    ),
)


@st.composite
def payments(draw: st.DrawFn) -> Payment:
    currency_code = draw(st.sampled_from(sorted(MINOR_UNIT_EXPONENTS)))
    amount = draw(st.integers(min_value=1, max_value=MAX_MINOR_UNITS))
    captured = draw(st.integers(min_value=0, max_value=amount))
    refunded = draw(st.integers(min_value=0, max_value=captured))
    return Payment(
        id=draw(proto_text),
        order_id=draw(proto_text),
        user_id=draw(proto_text),
        amount=Money(currency_code, amount),
        state=draw(st.sampled_from(PaymentState)),
        provider=draw(st.sampled_from(["mock", "stripe"])),
        capture_method=draw(st.sampled_from(CaptureMethod)),
        create_time=draw(moments),
        update_time=draw(moments),
        provider_payment_id=draw(proto_text),
        payment_method_id=draw(proto_text),
        amount_captured=captured,
        amount_refunded=refunded,
        failure_code=draw(proto_text),
        failure_message=draw(proto_text),
        description=draw(proto_text),
        metadata=draw(st.dictionaries(proto_text, proto_text, max_size=8)),
        capture_time=draw(st.none() | moments),
    )


def sample_payment(**changes: object) -> Payment:
    payment = Payment(
        id="pay_01JD0000000000000000000000",
        order_id="order-1",
        user_id="user-1",
        amount=Money("USD", 1050),
        state=PaymentState.SUCCEEDED,
        provider="mock",
        capture_method=CaptureMethod.MANUAL,
        create_time=T0,
        update_time=T0 + timedelta(seconds=3),
        provider_payment_id="mock_pi_1",
        payment_method_id="pm_card_visa",
        amount_captured=1000,
        amount_refunded=0,
        description="coffee",
        metadata={"a": "1", "b": "2"},
    )
    for name, value in changes.items():
        setattr(payment, name, value)
    return payment


# --- round trip --------------------------------------------------------------------------------


@given(payments())
def test_payment_round_trips_through_proto(payment: Payment) -> None:
    assert payment_from_proto(payment_to_proto(payment)) == payment


@given(payments())
def test_payment_round_trips_through_bytes(payment: Payment) -> None:
    decoded = decode_payment(encode_payment(payment))
    assert decoded == payment
    assert decoded.create_time.tzinfo is UTC
    assert decoded.update_time.tzinfo is UTC


@given(st.lists(payments(), max_size=5))
def test_a_list_built_from_the_fields_is_the_list_of_the_messages(found: list[Payment]) -> None:
    """ListPayments builds each message in place from its fields; nothing may differ."""
    in_place = page(payments_pb2.ListPaymentsResponse, "payments", payment_fields)((found, ""))
    copied = page(payments_pb2.ListPaymentsResponse, "payments", payment_to_proto)((found, ""))
    assert in_place == copied
    assert in_place.SerializeToString(deterministic=True) == copied.SerializeToString(
        deterministic=True
    )
    for message, payment in zip(in_place.payments, found, strict=True):
        assert message.HasField("capture_time") == (payment.capture_time is not None)


def test_payment_to_proto_fields() -> None:
    message = payment_to_proto(sample_payment())
    assert message.id == "pay_01JD0000000000000000000000"
    assert message.state == payments_pb2.PAYMENT_STATE_SUCCEEDED
    assert message.capture_method == payments_pb2.CAPTURE_METHOD_MANUAL
    assert (message.amount.currency_code, message.amount.minor_units) == ("USD", 1050)
    assert (message.amount_captured.currency_code, message.amount_captured.minor_units) == (
        "USD",
        1000,
    )
    assert message.amount_refunded.currency_code == "USD"
    assert message.amount_refunded.minor_units == 0
    assert message.create_time.ToDatetime(UTC) == T0
    assert message.update_time.ToDatetime(UTC) == T0 + timedelta(seconds=3)
    assert dict(message.metadata) == {"a": "1", "b": "2"}
    assert message.client_secret == ""


@pytest.mark.parametrize("state", list(PaymentState))
def test_every_state_maps_to_the_proto_enum_of_the_same_name(state: PaymentState) -> None:
    message = payment_to_proto(sample_payment(state=state))
    assert payments_pb2.PaymentState.Name(message.state) == f"PAYMENT_STATE_{state.value}"
    assert payment_from_proto(message).state is state


# --- deterministic bytes -----------------------------------------------------------------------


@given(payments())
def test_a_decoded_payment_encodes_to_the_same_bytes(payment: Payment) -> None:
    # A stored replay is decoded and sent again: its bytes must not drift.
    stored = encode_payment(payment)
    assert encode_payment(decode_payment(stored)) == stored


@given(
    st.dictionaries(proto_text, proto_text, min_size=2, max_size=30).flatmap(
        lambda metadata: st.tuples(st.just(metadata), st.permutations(list(metadata.items())))
    )
)
def test_encode_payment_ignores_metadata_insertion_order(
    data: tuple[dict[str, str], list[tuple[str, str]]],
) -> None:
    metadata, shuffled = data
    first = encode_payment(sample_payment(metadata=dict(metadata)))
    second = encode_payment(sample_payment(metadata=dict(shuffled)))
    assert first == second


def test_encode_payment_with_many_keys_in_reverse_order() -> None:
    items = [(f"key-{i:03d}", f"value-{i}") for i in range(50)]
    forward = encode_payment(sample_payment(metadata=dict(items)))
    backward = encode_payment(sample_payment(metadata=dict(reversed(items))))
    assert forward == backward
    assert decode_payment(forward).metadata == dict(items)


# --- event envelopes ---------------------------------------------------------------------------

ONEOF_FIELD_FOR_TYPE = {
    "payment.created": "payment_created",
    "payment.processing": "payment_processing",
    "payment.requires_action": "payment_requires_action",
    "payment.authorized": "payment_authorized",
    "payment.succeeded": "payment_succeeded",
    "payment.failed": "payment_failed",
    "payment.canceled": "payment_canceled",
    "payment.captured": "payment_captured",
}


@pytest.mark.parametrize(("event_type", "oneof_field"), sorted(ONEOF_FIELD_FOR_TYPE.items()))
def test_payment_event_envelope(event_type: str, oneof_field: str) -> None:
    payment = sample_payment()
    occurred = T0 + timedelta(minutes=1)
    event = PaymentEvent(type=event_type, payment_id=payment.id, sequence=7, occurred_at=occurred)
    envelope = payment_event_envelope(event, payment)
    assert envelope.type == event_type
    assert envelope.aggregate_type == "payment"
    assert envelope.aggregate_id == payment.id
    assert envelope.sequence == 7
    assert envelope.occurred_at.ToDatetime(UTC) == occurred
    assert envelope.WhichOneof("event") == oneof_field
    body = getattr(envelope, oneof_field)
    assert body.payment == payment_to_proto(payment)
    event_id = uuid.UUID(envelope.event_id)
    assert str(event_id) == envelope.event_id
    assert event_id.version == 4


def test_every_event_a_payment_can_emit_has_an_envelope() -> None:
    payment = sample_payment()
    emitted = {"payment.created"} | {
        event_type
        for state in PaymentState
        for manual in (False, True)
        for event_type in event_types_for(state, manual)
    }
    assert emitted == set(ONEOF_FIELD_FOR_TYPE)
    for event_type in emitted:
        event = PaymentEvent(type=event_type, payment_id=payment.id, sequence=1, occurred_at=T0)
        assert payment_event_envelope(event, payment).WhichOneof("event") is not None


def test_canceled_envelope_carries_the_reason() -> None:
    payment = sample_payment(state=PaymentState.CANCELED)
    event = PaymentEvent("payment.canceled", payment.id, 3, T0, reason="duplicate order")
    envelope = payment_event_envelope(event, payment)
    assert envelope.payment_canceled.reason == "duplicate order"


def test_canceled_envelope_without_reason() -> None:
    payment = sample_payment(state=PaymentState.CANCELED)
    envelope = payment_event_envelope(PaymentEvent("payment.canceled", payment.id, 3, T0), payment)
    assert envelope.payment_canceled.reason == ""
    assert envelope.HasField("payment_canceled")


def test_each_envelope_gets_its_own_event_id() -> None:
    payment = sample_payment()
    ids = {
        payment_event_envelope(
            PaymentEvent("payment.succeeded", payment.id, n, T0), payment
        ).event_id
        for n in range(1, 51)
    }
    assert len(ids) == 50


@given(st.datetimes(timezones=st.timezones()))
def test_timestamp_is_what_protobuf_makes_of_the_moment(moment: datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(moment.astimezone(UTC))
    assert timestamp(moment) == expected
