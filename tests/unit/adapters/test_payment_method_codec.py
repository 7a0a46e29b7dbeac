"""Tests for the protobuf codec of saved payment methods (the API form and replays)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from payments.v1 import payment_methods_pb2 as pb

from server.adapters.payment_method_codec import (
    decode_payment_method,
    encode_payment_method,
    payment_method_from_proto,
    payment_method_to_proto,
)
from server.domain.ids import PAYMENT_METHOD_ID
from server.domain.payment_method import (
    Address,
    BillingDetails,
    CardDetails,
    PaymentMethod,
    PaymentMethodType,
)

proto_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)
)
addresses = st.builds(
    Address, proto_text, proto_text, proto_text, proto_text, proto_text, proto_text
)
billings = st.builds(BillingDetails, proto_text, proto_text, proto_text, addresses)
methods = st.builds(
    PaymentMethod,
    id=st.builds(PAYMENT_METHOD_ID.new),
    user_id=proto_text,
    provider=st.sampled_from(["mock", "stripe"]),
    provider_customer_id=proto_text,
    provider_payment_method_id=proto_text,
    type=st.just(PaymentMethodType.CARD),
    card=st.builds(
        CardDetails,
        st.sampled_from(["visa", "amex"]),
        st.text(alphabet="0123456789", min_size=4, max_size=4),
        st.integers(1, 12),
        st.integers(2000, 9999),
    ),
    is_default=st.booleans(),
    billing_details=billings,
    create_time=moments,
    update_time=moments,
    detach_time=st.one_of(st.none(), moments),
)


@given(methods)
def test_round_trips_through_bytes(method: PaymentMethod) -> None:
    data = encode_payment_method(method)
    assert decode_payment_method(data) == method
    # Replays are byte for byte: encoding the decoded method gives the same bytes.
    assert encode_payment_method(decode_payment_method(data)) == data


@given(methods)
def test_round_trips_through_proto(method: PaymentMethod) -> None:
    assert payment_method_from_proto(payment_method_to_proto(method)) == method


def test_proto_fields() -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    method = PaymentMethod(
        id="pmt_01JD0000000000000000000000",
        user_id="user-1",
        provider="mock",
        provider_customer_id="mock_cus_1",
        provider_payment_method_id="pm_card_visa",
        type=PaymentMethodType.CARD,
        card=CardDetails("visa", "4242", 12, 2030),
        is_default=True,
        billing_details=BillingDetails(name="Ada"),
        create_time=now,
        update_time=now,
    )
    message = payment_method_to_proto(method)
    assert message.state == pb.PAYMENT_METHOD_STATE_ATTACHED
    assert message.type == pb.PAYMENT_METHOD_TYPE_CARD
    assert message.default
    assert message.card.last4 == "4242"
    assert message.billing_details.name == "Ada"
    # Empty sub-messages stay unset, so JSON readers see no empty objects.
    assert not message.billing_details.HasField("address")
    assert not message.HasField("detach_time")
    method.detach(now + timedelta(days=1))
    detached = payment_method_to_proto(method)
    assert detached.state == pb.PAYMENT_METHOD_STATE_DETACHED
    assert detached.detach_time.ToDatetime(UTC) == now + timedelta(days=1)
    method.billing_details = BillingDetails()
    assert not payment_method_to_proto(method).HasField("billing_details")
