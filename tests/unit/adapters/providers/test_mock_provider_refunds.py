"""The mock provider's refunds: deterministic, idempotent, and one method whose refunds fail."""

from __future__ import annotations

import pytest

from server.adapters.providers.mock import MockProvider
from server.domain.money import Money
from server.domain.payment import CaptureMethod
from server.service.provider import (
    CreateAtProvider,
    ProviderRefundStatus,
    ProviderRejected,
)


async def charged(provider: MockProvider, method: str) -> str:
    created = await provider.create_payment(
        CreateAtProvider("pay_1", "order-1", Money("USD", 1000), CaptureMethod.AUTOMATIC, method),
        f"{method}:create",
    )
    await provider.confirm_payment(created.provider_payment_id, "", f"{method}:confirm")
    return created.provider_payment_id


async def test_refunds_succeed_replay_by_key_and_stop_at_the_charge() -> None:
    provider = MockProvider()
    intent = await charged(provider, "pm_card_visa")
    first = await provider.refund_payment(intent, 600, "ref-1")
    assert first.status is ProviderRefundStatus.SUCCEEDED
    assert await provider.refund_payment(intent, 600, "ref-1") == first
    with pytest.raises(ProviderRejected):
        await provider.refund_payment(intent, 401, "ref-2")
    rest = await provider.refund_payment(intent, 400, "ref-3")
    assert rest.status is ProviderRefundStatus.SUCCEEDED


async def test_refund_fail_method_charges_but_every_refund_fails() -> None:
    provider = MockProvider()
    intent = await charged(provider, "pm_card_refundFail")
    failed = await provider.refund_payment(intent, 100, "ref-1")
    assert failed.status is ProviderRefundStatus.FAILED
    assert failed.failure is not None
    assert failed.failure.code == "refund_failed"
