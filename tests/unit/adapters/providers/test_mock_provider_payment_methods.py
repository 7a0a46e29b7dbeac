"""Tests for saved payment methods at the deterministic mock provider."""

from __future__ import annotations

import pytest

from server.adapters.providers.mock import CARD_EXPIRY, CARDS, OUTCOMES, MockProvider
from server.domain.payment_method import BillingDetails
from server.service.provider import PaymentMethodDeclined, ProviderRejected


@pytest.fixture
def provider() -> MockProvider:
    return MockProvider()


@pytest.mark.parametrize(
    ("method", "brand", "last4"),
    [
        ("pm_card_visa", "visa", "4242"),
        ("pm_card_mastercard", "mastercard", "4444"),
        ("pm_card_amex", "amex", "8431"),
        ("pm_card_discover", "discover", "1117"),
        ("pm_card_chargeCustomerFail", "visa", "0341"),
    ],
)
async def test_attach_returns_fixed_card_details(
    provider: MockProvider, method: str, brand: str, last4: str
) -> None:
    attached = await provider.attach_payment_method(method, "mock_cus_1", "key-1")
    assert attached.provider_payment_method_id == method
    assert attached.type == "card"
    assert (attached.brand, attached.last4) == (brand, last4)
    assert (attached.exp_month, attached.exp_year) == CARD_EXPIRY == (12, 2030)


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("pm_card_visa_chargeDeclined", "card_declined"),
        ("pm_card_chargeDeclined", "card_declined"),
        ("pm_card_insufficientFunds", "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
    ],
)
async def test_cards_stripe_declines_on_attach_are_declined(
    provider: MockProvider, method: str, code: str
) -> None:
    with pytest.raises(PaymentMethodDeclined) as declined:
        await provider.attach_payment_method(method, "mock_cus_1", "key-1")
    assert declined.value.failure.code == code


async def test_every_test_method_either_attaches_or_is_declined(provider: MockProvider) -> None:
    for method, outcome in OUTCOMES.items():
        if method in CARDS:
            await provider.attach_payment_method(method, "mock_cus_1", f"key-{method}")
        else:
            assert outcome.failure is not None, method
            with pytest.raises(PaymentMethodDeclined):
                await provider.attach_payment_method(method, "mock_cus_1", f"key-{method}")
    assert set(CARDS) <= set(OUTCOMES)


async def test_unknown_methods_are_rejected(provider: MockProvider) -> None:
    for call in (
        provider.attach_payment_method("pm_card_nope", "mock_cus_1", "key-1"),
        provider.detach_payment_method("pm_card_nope", "key-2"),
        provider.update_payment_method_billing("pm_card_nope", BillingDetails(), "key-3"),
    ):
        with pytest.raises(ProviderRejected) as rejected:
            await call
        assert rejected.value.code == "resource_missing"


async def test_one_deterministic_customer_per_user(provider: MockProvider) -> None:
    first = await provider.ensure_customer("user-1", "key-1")
    assert first.startswith("mock_cus_")
    assert await provider.ensure_customer("user-1", "key-2") == first
    assert await MockProvider().ensure_customer("user-1", "key-1") == first
    assert await provider.ensure_customer("user-2", "key-1") != first


async def test_detach_and_billing_updates_of_known_methods(provider: MockProvider) -> None:
    await provider.update_payment_method_billing("pm_card_visa", BillingDetails(name="A"), "k1")
    await provider.detach_payment_method("pm_card_visa", "k2")
    # Detaching again is accepted, and the stateless mock attaches the same card afterwards.
    await provider.detach_payment_method("pm_card_visa", "k3")
    attached = await provider.attach_payment_method("pm_card_visa", "mock_cus_1", "k4")
    assert (attached.brand, attached.last4) == ("visa", "4242")
