"""Tests for the deterministic mock provider."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest

from server.adapters.providers.base import (
    CreateAtProvider,
    PaymentProvider,
    ProviderPayment,
    ProviderRejected,
    ProviderStatus,
)
from server.adapters.providers.mock import MockProvider
from server.domain.errors import ProviderUnavailable
from server.domain.money import Money
from server.domain.payment import CaptureMethod, Failure


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger.jsonl"


@pytest.fixture
def provider(ledger: Path) -> MockProvider:
    return MockProvider(ledger=ledger)


def request(
    payment_method_id: str = "pm_card_visa",
    *,
    capture_method: CaptureMethod = CaptureMethod.AUTOMATIC,
    confirm: bool = True,
    amount: int = 2000,
) -> CreateAtProvider:
    return CreateAtProvider(
        payment_id="pay_01JD0000000000000000000000",
        order_id="order-1",
        amount=Money("USD", amount),
        capture_method=capture_method,
        payment_method_id=payment_method_id,
        confirm=confirm,
    )


def ledger_lines(ledger: Path) -> list[dict[str, str]]:
    if not ledger.exists():
        return []
    return [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines()]


def test_mock_is_a_payment_provider() -> None:
    provider: PaymentProvider = MockProvider()
    assert provider.name == "mock"


async def test_visa_automatic_succeeds(provider: MockProvider, ledger: Path) -> None:
    result = await provider.create_payment(request(), "key-1")
    assert result.status is ProviderStatus.SUCCEEDED
    assert result.amount_received == 2000
    assert result.failure is None
    assert result.provider_payment_id.startswith("mock_pi_")
    assert ledger_lines(ledger) == [
        {"kind": "charge", "provider_payment_id": result.provider_payment_id}
    ]
    assert await provider.retrieve_payment(result.provider_payment_id) == result


async def test_visa_manual_requires_capture_then_partial_capture(
    provider: MockProvider, ledger: Path
) -> None:
    authorized = await provider.create_payment(
        request(capture_method=CaptureMethod.MANUAL), "key-1"
    )
    assert authorized.status is ProviderStatus.REQUIRES_CAPTURE
    assert authorized.amount_received == 0
    pid = authorized.provider_payment_id
    captured = await provider.capture_payment(pid, 1500, "key-2")
    assert captured == ProviderPayment(pid, ProviderStatus.SUCCEEDED, 1500)
    assert [line["kind"] for line in ledger_lines(ledger)] == ["authorize", "capture"]
    assert (await provider.retrieve_payment(pid)).amount_received == 1500


@pytest.mark.parametrize("amount", [0, -1, 2001])
async def test_capture_outside_the_authorized_amount_is_rejected(
    provider: MockProvider, amount: int
) -> None:
    authorized = await provider.create_payment(
        request(capture_method=CaptureMethod.MANUAL), "key-1"
    )
    with pytest.raises(ProviderRejected):
        await provider.capture_payment(authorized.provider_payment_id, amount, "key-2")
    retrieved = await provider.retrieve_payment(authorized.provider_payment_id)
    assert retrieved.status is ProviderStatus.REQUIRES_CAPTURE


async def test_capture_of_a_succeeded_payment_is_rejected(provider: MockProvider) -> None:
    result = await provider.create_payment(request(), "key-1")
    with pytest.raises(ProviderRejected):
        await provider.capture_payment(result.provider_payment_id, 2000, "key-2")


@pytest.mark.parametrize(
    ("payment_method_id", "code"),
    [
        ("pm_card_chargeDeclined", "card_declined"),
        ("pm_card_visa_chargeDeclined", "card_declined"),
        ("pm_card_insufficientFunds", "insufficient_funds"),
        ("pm_card_visa_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
        ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc"),
    ],
)
async def test_declines_fail_with_their_code(
    provider: MockProvider, ledger: Path, payment_method_id: str, code: str
) -> None:
    result = await provider.create_payment(request(payment_method_id), "key-1")
    assert result.status is ProviderStatus.FAILED
    assert result.failure is not None
    assert result.failure.code == code
    assert result.failure.message
    assert result.amount_received == 0
    assert ledger_lines(ledger) == []


async def test_declined_messages(provider: MockProvider) -> None:
    declined = await provider.create_payment(request("pm_card_chargeDeclined"), "key-1")
    poor = await provider.create_payment(request("pm_card_insufficientFunds"), "key-2")
    assert declined.failure == Failure("card_declined", "Your card was declined.")
    assert poor.failure == Failure("insufficient_funds", "Your card has insufficient funds.")


@pytest.mark.parametrize(
    "payment_method_id", ["pm_card_authenticationRequired", "pm_card_threeDSecure2Required"]
)
async def test_authentication_required_then_confirm_succeeds(
    provider: MockProvider, ledger: Path, payment_method_id: str
) -> None:
    first = await provider.create_payment(request(payment_method_id), "key-1")
    assert first.status is ProviderStatus.REQUIRES_ACTION
    assert ledger_lines(ledger) == []
    confirmed = await provider.confirm_payment(first.provider_payment_id, "", "key-2")
    assert confirmed.status is ProviderStatus.SUCCEEDED
    assert confirmed.amount_received == 2000
    assert [line["kind"] for line in ledger_lines(ledger)] == ["charge"]


async def test_authentication_required_manual_confirm_authorizes(provider: MockProvider) -> None:
    first = await provider.create_payment(
        request("pm_card_authenticationRequired", capture_method=CaptureMethod.MANUAL), "key-1"
    )
    confirmed = await provider.confirm_payment(first.provider_payment_id, "", "key-2")
    assert confirmed.status is ProviderStatus.REQUIRES_CAPTURE


async def test_create_without_confirm_then_confirm(provider: MockProvider, ledger: Path) -> None:
    created = await provider.create_payment(request(confirm=False), "key-1")
    assert created.status is ProviderStatus.REQUIRES_CONFIRMATION
    assert ledger_lines(ledger) == []
    confirmed = await provider.confirm_payment(created.provider_payment_id, "", "key-2")
    assert confirmed.status is ProviderStatus.SUCCEEDED


async def test_create_without_method_then_confirm_with_one(provider: MockProvider) -> None:
    created = await provider.create_payment(request("", confirm=False), "key-1")
    assert created.status is ProviderStatus.REQUIRES_PAYMENT_METHOD
    confirmed = await provider.confirm_payment(
        created.provider_payment_id, "pm_card_chargeDeclined", "key-2"
    )
    assert confirmed.status is ProviderStatus.FAILED


@pytest.mark.parametrize("confirm", [True, False])
async def test_unknown_method_is_rejected(
    provider: MockProvider, ledger: Path, confirm: bool
) -> None:
    with pytest.raises(ProviderRejected) as caught:
        await provider.create_payment(request("pm_card_nope", confirm=confirm), "key-1")
    assert caught.value.field == "payment_method_id"
    assert caught.value.code == "resource_missing"
    assert ledger_lines(ledger) == []


async def test_unknown_method_on_confirm_is_rejected(provider: MockProvider) -> None:
    created = await provider.create_payment(request(confirm=False), "key-1")
    with pytest.raises(ProviderRejected) as caught:
        await provider.confirm_payment(created.provider_payment_id, "pm_bogus", "key-2")
    assert caught.value.field == "payment_method_id"


async def test_confirm_without_any_method_is_rejected(provider: MockProvider) -> None:
    with pytest.raises(ProviderRejected):
        await provider.create_payment(request("", confirm=True), "key-1")


async def test_unknown_payment_is_rejected(provider: MockProvider) -> None:
    with pytest.raises(ProviderRejected):
        await provider.retrieve_payment("mock_pi_missing")
    with pytest.raises(ProviderRejected):
        await provider.confirm_payment("mock_pi_missing", "", "key-1")


async def test_same_idempotency_key_replays_without_a_second_charge(
    provider: MockProvider, ledger: Path
) -> None:
    first = await provider.create_payment(request(), "key-1")
    second = await provider.create_payment(request(), "key-1")
    assert second == first
    assert len(ledger_lines(ledger)) == 1
    third = await provider.create_payment(request(), "key-2")
    assert third.provider_payment_id != first.provider_payment_id
    assert len(ledger_lines(ledger)) == 2


async def test_same_capture_key_captures_once(provider: MockProvider, ledger: Path) -> None:
    authorized = await provider.create_payment(
        request(capture_method=CaptureMethod.MANUAL), "key-1"
    )
    pid = authorized.provider_payment_id
    first = await provider.capture_payment(pid, 700, "cap-1")
    second = await provider.capture_payment(pid, 700, "cap-1")
    assert first == second
    assert [line["kind"] for line in ledger_lines(ledger)] == ["authorize", "capture"]


async def test_provider_payment_id_depends_only_on_the_key() -> None:
    one = await MockProvider().create_payment(request(), "key-1")
    other = await MockProvider().create_payment(request(amount=99), "key-1")
    assert one.provider_payment_id == other.provider_payment_id


async def test_timeout_raises_but_has_charged(provider: MockProvider, ledger: Path) -> None:
    with pytest.raises(ProviderUnavailable):
        await provider.create_payment(request("pm_mock_timeout"), "key-1")
    lines = ledger_lines(ledger)
    assert [line["kind"] for line in lines] == ["charge"]
    retrieved = await provider.retrieve_payment(lines[0]["provider_payment_id"])
    assert retrieved.status is ProviderStatus.SUCCEEDED
    with pytest.raises(ProviderUnavailable):
        await provider.create_payment(request("pm_mock_timeout"), "key-1")
    assert len(ledger_lines(ledger)) == 1


@pytest.mark.parametrize(
    ("succeeded", "capture_method", "status", "kinds"),
    [
        (True, CaptureMethod.AUTOMATIC, ProviderStatus.SUCCEEDED, ["charge"]),
        (True, CaptureMethod.MANUAL, ProviderStatus.REQUIRES_CAPTURE, ["authorize"]),
        (False, CaptureMethod.AUTOMATIC, ProviderStatus.FAILED, []),
    ],
)
async def test_settle_decides_a_processing_payment(
    provider: MockProvider,
    ledger: Path,
    succeeded: bool,
    capture_method: CaptureMethod,
    status: ProviderStatus,
    kinds: list[str],
) -> None:
    pending = await provider.create_payment(
        request("pm_mock_processing", capture_method=capture_method), "key-1"
    )
    assert pending.status is ProviderStatus.PROCESSING
    assert ledger_lines(ledger) == []
    settled = provider.settle(pending.provider_payment_id, succeeded=succeeded)
    assert settled.status is status
    assert [line["kind"] for line in ledger_lines(ledger)] == kinds
    assert await provider.retrieve_payment(pending.provider_payment_id) == settled
    if not succeeded:
        assert settled.failure == Failure("card_declined", "Your card was declined.")


async def test_cancel(provider: MockProvider) -> None:
    authorized = await provider.create_payment(
        request(capture_method=CaptureMethod.MANUAL), "key-1"
    )
    canceled = await provider.cancel_payment(authorized.provider_payment_id, "key-2")
    assert canceled.status is ProviderStatus.CANCELED


@pytest.mark.parametrize("payment_method_id", ["pm_card_visa", "pm_mock_processing"])
async def test_cancel_of_a_succeeded_or_processing_payment_is_rejected(
    provider: MockProvider, payment_method_id: str
) -> None:
    result = await provider.create_payment(request(payment_method_id), "key-1")
    with pytest.raises(ProviderRejected):
        await provider.cancel_payment(result.provider_payment_id, "key-2")


@pytest.mark.parametrize("cancel_first", [True, False], ids=["canceled", "succeeded"])
async def test_a_canceled_or_succeeded_payment_is_not_charged_by_confirm(
    provider: MockProvider, ledger: Path, cancel_first: bool
) -> None:
    created = await provider.create_payment(request(confirm=not cancel_first), "key-1")
    if cancel_first:
        await provider.cancel_payment(created.provider_payment_id, "key-2")
    before = await provider.retrieve_payment(created.provider_payment_id)
    charges = len(ledger_lines(ledger))
    with contextlib.suppress(ProviderRejected):
        await provider.confirm_payment(created.provider_payment_id, "", "key-3")
    assert await provider.retrieve_payment(created.provider_payment_id) == before
    assert len(ledger_lines(ledger)) == charges


async def test_latency_delays_every_call() -> None:
    provider = MockProvider(latency_s=0.02)
    started = time.monotonic()
    result = await provider.create_payment(request(), "key-1")
    await provider.retrieve_payment(result.provider_payment_id)
    # asyncio may wake a timer up to its clock resolution early
    assert time.monotonic() - started >= 0.039


async def test_no_latency_by_default() -> None:
    provider = MockProvider()
    started = time.monotonic()
    for n in range(20):
        await provider.create_payment(request(), f"key-{n}")
    assert time.monotonic() - started < 0.2


async def test_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PAYMENTS_MOCK_LATENCY_MS", "20")
    monkeypatch.setenv("PAYMENTS_MOCK_LEDGER", str(tmp_path / "env-ledger.jsonl"))
    provider = MockProvider.from_env()
    started = time.monotonic()
    result = await provider.create_payment(request(), "key-1")
    assert time.monotonic() - started >= 0.019
    assert ledger_lines(tmp_path / "env-ledger.jsonl") == [
        {"kind": "charge", "provider_payment_id": result.provider_payment_id}
    ]
