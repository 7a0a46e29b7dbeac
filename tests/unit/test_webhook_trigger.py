"""`payments webhook send`'s events read as Stripe's do, by the code that applies them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.signature import sign, verify_signature
from server.adapters.providers.stripe_events import PAYMENT_INTENT_EVENTS, StripeEvents
from server.adapters.providers.stripe_provider import view_data
from server.config import ConfigError
from server.domain.currencies import MINOR_UNIT_EXPONENTS
from server.domain.money import Money
from server.domain.payment import CaptureMethod, Payment
from server.domain.payment_states import PaymentState
from server.service.provider import ProviderStatus
from server.webhook_trigger import INTENT_STATUS, event_for, sidecar_url

NOW = datetime(2026, 1, 2, tzinfo=UTC)
REPORTED = {
    "payment_intent.succeeded": ProviderStatus.SUCCEEDED,
    "payment_intent.payment_failed": ProviderStatus.FAILED,
    "payment_intent.canceled": ProviderStatus.CANCELED,
    "payment_intent.requires_action": ProviderStatus.REQUIRES_ACTION,
    "payment_intent.processing": ProviderStatus.PROCESSING,
    "payment_intent.amount_capturable_updated": ProviderStatus.REQUIRES_CAPTURE,
}


def payment(currency: str = "EUR", minor_units: int = 4200, intent: str = "pi_123") -> Payment:
    return Payment(
        id="pay_1",
        order_id="order-1",
        user_id="user-1",
        amount=Money(currency, minor_units),
        state=PaymentState.REQUIRES_ACTION,
        provider="stripe",
        capture_method=CaptureMethod.AUTOMATIC,
        create_time=NOW,
        update_time=NOW,
        provider_payment_id=intent,
    )


def test_it_can_send_every_payment_intent_event_the_sidecar_applies() -> None:
    assert set(INTENT_STATUS) == PAYMENT_INTENT_EVENTS == set(REPORTED)


@given(
    event_type=st.sampled_from(sorted(INTENT_STATUS)),
    currency=st.sampled_from(sorted(MINOR_UNIT_EXPONENTS)),
    minor_units=st.integers(min_value=1, max_value=10**12),
)
def test_the_event_reads_as_stripes(event_type: str, currency: str, minor_units: int) -> None:
    body = event_for(event_type, payment(currency, minor_units), int(NOW.timestamp()))
    event = StripeEvents().parse(body)
    assert event.type == event_type
    assert event.problem is None
    intent = json.loads(event.payload)["data"]["object"]
    assert intent["metadata"] == {"payment_id": "pay_1", "order_id": "order-1"}
    assert intent["amount"] == minor_units
    assert intent["currency"] == currency.lower()
    reported = view_data(intent)
    assert reported.provider_payment_id == "pi_123"
    assert reported.status is REPORTED[event_type]
    succeeded = reported.status is ProviderStatus.SUCCEEDED
    assert reported.amount_received == (minor_units if succeeded else 0)


def test_each_event_has_its_own_id_and_a_valid_signature() -> None:
    first = event_for("payment_intent.succeeded", payment(), int(NOW.timestamp()))
    second = event_for("payment_intent.succeeded", payment(), int(NOW.timestamp()))
    assert json.loads(first)["id"] != json.loads(second)["id"]
    header = sign(first, "whsec_x", 1_000)
    assert verify_signature(first, header, ["whsec_x"], now=1_000) == 1_000


def test_a_payment_never_sent_to_the_provider_has_no_event() -> None:
    with pytest.raises(ConfigError, match="no PaymentIntent yet"):
        event_for("payment_intent.succeeded", payment(intent=""), 0)


def test_unknown_types_are_refused_with_the_list() -> None:
    with pytest.raises(ConfigError, match=r"one of: payment_intent\.amount_capturable_updated"):
        event_for("invoice.paid", payment(), 0)


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("0.0.0.0:8080", "http://127.0.0.1:8080/webhooks/stripe"),
        ("127.0.0.1:9000", "http://127.0.0.1:9000/webhooks/stripe"),
        ("[::]:8080", "http://127.0.0.1:8080/webhooks/stripe"),
        ("[::1]:8080", "http://[::1]:8080/webhooks/stripe"),
        ("gateway.local:8080", "http://gateway.local:8080/webhooks/stripe"),
    ],
)
def test_the_default_url_is_the_sidecar_on_this_machine(address: str, url: str) -> None:
    assert sidecar_url(address) == url
