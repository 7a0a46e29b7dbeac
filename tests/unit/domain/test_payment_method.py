"""Tests for the saved payment method entity and its id."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from server.domain.errors import FailedPrecondition
from server.domain.ids import PAYMENT_ID, PAYMENT_METHOD_ID
from server.domain.payment_method import (
    Address,
    BillingDetails,
    CardDetails,
    PaymentMethod,
    PaymentMethodType,
    new_payment_method,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def method(*, is_default: bool = False) -> PaymentMethod:
    return new_payment_method(
        method_id=PAYMENT_METHOD_ID.new(),
        user_id="user-1",
        provider="mock",
        provider_customer_id="mock_cus_1",
        provider_payment_method_id="pm_card_visa",
        card=CardDetails("visa", "4242", 12, 2030),
        is_default=is_default,
        billing_details=BillingDetails(name="Ada"),
        now=NOW,
    )


def test_ids_are_pmt_and_never_look_like_stripe_or_payment_ids() -> None:
    new_id = PAYMENT_METHOD_ID.new()
    assert new_id.startswith("pmt_")
    assert PAYMENT_METHOD_ID.matches(new_id)
    assert not PAYMENT_ID.matches(new_id)
    assert not PAYMENT_METHOD_ID.matches("pm_card_visa")
    assert not PAYMENT_METHOD_ID.matches(PAYMENT_ID.new())


def test_a_new_method_is_an_attached_card() -> None:
    created = method()
    assert created.type is PaymentMethodType.CARD
    assert created.attached
    assert created.create_time == created.update_time == NOW
    assert created.detach_time is None


def test_default_and_billing_changes_touch_update_time_only_when_they_change() -> None:
    saved = method()
    saved.set_default(False, LATER)
    saved.update_billing(BillingDetails(name="Ada"), LATER)
    assert saved.update_time == NOW
    saved.set_default(True, LATER)
    assert saved.is_default
    assert saved.update_time == LATER
    billing = BillingDetails(name="Ada", address=Address(country="GB"))
    saved.update_billing(billing, LATER + timedelta(1))
    assert saved.billing_details == billing
    assert saved.update_time == LATER + timedelta(1)


def test_detaching_clears_the_default_and_is_final() -> None:
    saved = method(is_default=True)
    saved.detach(LATER)
    assert not saved.attached
    assert not saved.is_default
    assert saved.detach_time == saved.update_time == LATER
    changes: list[Callable[[], None]] = [
        lambda: saved.detach(LATER),
        lambda: saved.set_default(True, LATER),
        lambda: saved.update_billing(BillingDetails(), LATER),
    ]
    for change in changes:
        with pytest.raises(FailedPrecondition) as refused:
            change()
        assert refused.value.reason == "PAYMENT_METHOD_DETACHED"
        assert refused.value.metadata["payment_method_id"] == saved.id


def test_empty_billing_details() -> None:
    assert BillingDetails().is_empty
    assert not BillingDetails(address=Address(city="Paris")).is_empty
