"""Tests for the deterministic mock provider."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from server.adapters.providers.mock import OUTCOMES, MockProvider
from server.config import Settings
from server.domain.errors import ProviderUnavailable
from server.domain.money import Money
from server.domain.payment import CaptureMethod, Failure
from server.service.provider import (
    CreateAtProvider,
    PaymentProvider,
    ProviderPayment,
    ProviderRejected,
    ProviderStatus,
)


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
    amount: int = 2000,
) -> CreateAtProvider:
    return CreateAtProvider(
        payment_id="pay_01JD0000000000000000000000",
        order_id="order-1",
        amount=Money("USD", amount),
        capture_method=capture_method,
        payment_method_id=payment_method_id,
    )


async def charge(
    provider: MockProvider, create: CreateAtProvider, key: str = "key-1"
) -> ProviderPayment:
    """Register the payment, then confirm it with the method it was created with."""
    created = await provider.create_payment(create, key)
    return await provider.confirm_payment(created.provider_payment_id, "", f"{key}:confirm")


def ledger_lines(ledger: Path) -> list[dict[str, str]]:
    if not ledger.exists():
        return []
    return [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines()]


def test_mock_is_a_payment_provider() -> None:
    provider: PaymentProvider = MockProvider()
    assert provider.name == "mock"


async def test_visa_automatic_succeeds(provider: MockProvider, ledger: Path) -> None:
    result = await charge(provider, request())
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
    authorized = await charge(provider, request(capture_method=CaptureMethod.MANUAL))
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
    authorized = await charge(provider, request(capture_method=CaptureMethod.MANUAL))
    with pytest.raises(ProviderRejected):
        await provider.capture_payment(authorized.provider_payment_id, amount, "key-2")
    retrieved = await provider.retrieve_payment(authorized.provider_payment_id)
    assert retrieved.status is ProviderStatus.REQUIRES_CAPTURE


async def test_capture_of_a_succeeded_payment_is_rejected(provider: MockProvider) -> None:
    result = await charge(provider, request())
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
    result = await charge(provider, request(payment_method_id))
    assert result.status is ProviderStatus.FAILED
    assert result.failure is not None
    assert result.failure.code == code
    assert result.failure.message
    assert result.amount_received == 0
    assert ledger_lines(ledger) == []


async def test_declined_messages(provider: MockProvider) -> None:
    declined = await charge(provider, request("pm_card_chargeDeclined"), "key-1")
    poor = await charge(provider, request("pm_card_insufficientFunds"), "key-2")
    assert declined.failure == Failure("card_declined", "Your card was declined.")
    assert poor.failure == Failure("insufficient_funds", "Your card has insufficient funds.")


@pytest.mark.parametrize(
    "payment_method_id", ["pm_card_authenticationRequired", "pm_card_threeDSecure2Required"]
)
async def test_authentication_required_then_confirm_succeeds(
    provider: MockProvider, ledger: Path, payment_method_id: str
) -> None:
    first = await charge(provider, request(payment_method_id))
    assert first.status is ProviderStatus.REQUIRES_ACTION
    assert ledger_lines(ledger) == []
    confirmed = await provider.confirm_payment(first.provider_payment_id, "", "key-2")
    assert confirmed.status is ProviderStatus.SUCCEEDED
    assert confirmed.amount_received == 2000
    assert [line["kind"] for line in ledger_lines(ledger)] == ["charge"]


async def test_authentication_required_manual_confirm_authorizes(provider: MockProvider) -> None:
    first = await charge(
        provider, request("pm_card_authenticationRequired", capture_method=CaptureMethod.MANUAL)
    )
    assert first.status is ProviderStatus.REQUIRES_ACTION
    confirmed = await provider.confirm_payment(first.provider_payment_id, "", "key-2")
    assert confirmed.status is ProviderStatus.REQUIRES_CAPTURE


async def test_create_registers_then_confirm_charges(provider: MockProvider, ledger: Path) -> None:
    created = await provider.create_payment(request(), "key-1")
    assert created.status is ProviderStatus.REQUIRES_CONFIRMATION
    assert ledger_lines(ledger) == []
    confirmed = await provider.confirm_payment(created.provider_payment_id, "", "key-2")
    assert confirmed.status is ProviderStatus.SUCCEEDED
    assert confirmed.provider_payment_id == created.provider_payment_id
    assert ledger_lines(ledger) == [
        {"kind": "charge", "provider_payment_id": created.provider_payment_id}
    ]


@pytest.mark.parametrize("capture_method", list(CaptureMethod))
@pytest.mark.parametrize("payment_method_id", sorted(OUTCOMES))
async def test_create_never_charges(
    provider: MockProvider,
    ledger: Path,
    payment_method_id: str,
    capture_method: CaptureMethod,
) -> None:
    created = await provider.create_payment(
        request(payment_method_id, capture_method=capture_method), "key-1"
    )
    assert created.status is ProviderStatus.REQUIRES_CONFIRMATION
    assert created.amount_received == 0
    assert created.failure is None
    assert ledger_lines(ledger) == []
    assert await provider.retrieve_payment(created.provider_payment_id) == created


async def test_create_of_visa_records_no_ledger_line(provider: MockProvider, ledger: Path) -> None:
    created = await provider.create_payment(request("pm_card_visa"), "key-1")
    replayed = await provider.create_payment(request("pm_card_visa"), "key-1")
    assert replayed == created
    assert created.status is ProviderStatus.REQUIRES_CONFIRMATION
    assert ledger_lines(ledger) == []


async def test_create_without_method_then_confirm_with_one(
    provider: MockProvider, ledger: Path
) -> None:
    created = await provider.create_payment(request(""), "key-1")
    assert created.status is ProviderStatus.REQUIRES_PAYMENT_METHOD
    assert created.amount_received == 0
    assert ledger_lines(ledger) == []
    confirmed = await provider.confirm_payment(
        created.provider_payment_id, "pm_card_chargeDeclined", "key-2"
    )
    assert confirmed.status is ProviderStatus.FAILED
    assert confirmed.failure == Failure("card_declined", "Your card was declined.")


async def test_confirm_with_another_method_uses_that_method(
    provider: MockProvider, ledger: Path
) -> None:
    created = await provider.create_payment(request("pm_card_chargeDeclined"), "key-1")
    confirmed = await provider.confirm_payment(created.provider_payment_id, "pm_card_visa", "key-2")
    assert confirmed.status is ProviderStatus.SUCCEEDED
    assert [line["kind"] for line in ledger_lines(ledger)] == ["charge"]


@pytest.mark.parametrize("capture_method", list(CaptureMethod))
async def test_unknown_method_is_rejected(
    provider: MockProvider, ledger: Path, capture_method: CaptureMethod
) -> None:
    with pytest.raises(ProviderRejected) as caught:
        await provider.create_payment(
            request("pm_card_nope", capture_method=capture_method), "key-1"
        )
    assert caught.value.field == "payment_method_id"
    assert caught.value.code == "resource_missing"
    assert ledger_lines(ledger) == []


@pytest.mark.parametrize("created_with", ["pm_card_visa", ""])
async def test_unknown_method_on_confirm_is_rejected(
    provider: MockProvider, ledger: Path, created_with: str
) -> None:
    created = await provider.create_payment(request(created_with), "key-1")
    with pytest.raises(ProviderRejected) as caught:
        await provider.confirm_payment(created.provider_payment_id, "pm_bogus", "key-2")
    assert caught.value.field == "payment_method_id"
    assert caught.value.code == "resource_missing"
    assert await provider.retrieve_payment(created.provider_payment_id) == created
    assert ledger_lines(ledger) == []


async def test_confirm_without_any_method_is_rejected(provider: MockProvider, ledger: Path) -> None:
    created = await provider.create_payment(request(""), "key-1")
    with pytest.raises(ProviderRejected):
        await provider.confirm_payment(created.provider_payment_id, "", "key-2")
    assert await provider.retrieve_payment(created.provider_payment_id) == created
    assert ledger_lines(ledger) == []


async def test_unknown_payment_is_rejected(provider: MockProvider) -> None:
    with pytest.raises(ProviderRejected):
        await provider.retrieve_payment("mock_pi_missing")
    with pytest.raises(ProviderRejected):
        await provider.confirm_payment("mock_pi_missing", "", "key-1")


async def test_same_idempotency_key_replays_without_a_second_charge(
    provider: MockProvider, ledger: Path
) -> None:
    created = await provider.create_payment(request(), "key-1")
    assert await provider.create_payment(request(), "key-1") == created
    pid = created.provider_payment_id
    first = await provider.confirm_payment(pid, "", "confirm-1")
    second = await provider.confirm_payment(pid, "", "confirm-1")
    assert second == first
    assert first.status is ProviderStatus.SUCCEEDED
    assert len(ledger_lines(ledger)) == 1
    third = await charge(provider, request(), "key-2")
    assert third.provider_payment_id != first.provider_payment_id
    assert len(ledger_lines(ledger)) == 2


async def test_same_capture_key_captures_once(provider: MockProvider, ledger: Path) -> None:
    authorized = await charge(provider, request(capture_method=CaptureMethod.MANUAL))
    pid = authorized.provider_payment_id
    first = await provider.capture_payment(pid, 700, "cap-1")
    second = await provider.capture_payment(pid, 700, "cap-1")
    assert first == second
    assert [line["kind"] for line in ledger_lines(ledger)] == ["authorize", "capture"]


async def test_provider_payment_id_depends_only_on_the_key() -> None:
    one = await MockProvider().create_payment(request(), "key-1")
    other = await MockProvider().create_payment(request(amount=99), "key-1")
    assert one.provider_payment_id == other.provider_payment_id


@pytest.mark.parametrize(
    ("capture_method", "status", "kind"),
    [
        (CaptureMethod.AUTOMATIC, ProviderStatus.SUCCEEDED, "charge"),
        (CaptureMethod.MANUAL, ProviderStatus.REQUIRES_CAPTURE, "authorize"),
    ],
)
@pytest.mark.parametrize("method_on_confirm", [False, True], ids=["at-create", "at-confirm"])
async def test_timeout_create_succeeds_then_confirm_raises_but_has_charged(
    provider: MockProvider,
    ledger: Path,
    capture_method: CaptureMethod,
    status: ProviderStatus,
    kind: str,
    method_on_confirm: bool,
) -> None:
    created_with, confirmed_with = (
        ("", "pm_mock_timeout") if method_on_confirm else ("pm_mock_timeout", "")
    )
    created = await provider.create_payment(
        request(created_with, capture_method=capture_method), "key-1"
    )
    assert created.status in (
        ProviderStatus.REQUIRES_CONFIRMATION,
        ProviderStatus.REQUIRES_PAYMENT_METHOD,
    )
    assert ledger_lines(ledger) == []
    pid = created.provider_payment_id
    with pytest.raises(ProviderUnavailable):
        await provider.confirm_payment(pid, confirmed_with, "key-2")
    assert ledger_lines(ledger) == [{"kind": kind, "provider_payment_id": pid}]
    assert (await provider.retrieve_payment(pid)).status is status
    # A retry with the same key still times out, and does not charge again.
    with pytest.raises(ProviderUnavailable):
        await provider.confirm_payment(pid, confirmed_with, "key-2")
    assert len(ledger_lines(ledger)) == 1
    # Creating it again with the same key is a plain replay.
    again = await provider.create_payment(
        request(created_with, capture_method=capture_method), "key-1"
    )
    assert again == created
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
    pending = await charge(provider, request("pm_mock_processing", capture_method=capture_method))
    assert pending.status is ProviderStatus.PROCESSING
    assert ledger_lines(ledger) == []
    settled = provider.settle(pending.provider_payment_id, succeeded=succeeded)
    assert settled.status is status
    assert [line["kind"] for line in ledger_lines(ledger)] == kinds
    assert await provider.retrieve_payment(pending.provider_payment_id) == settled
    if not succeeded:
        assert settled.failure == Failure("card_declined", "Your card was declined.")


@pytest.mark.parametrize("confirm_first", [True, False], ids=["authorized", "created"])
async def test_cancel(provider: MockProvider, ledger: Path, confirm_first: bool) -> None:
    create = request(capture_method=CaptureMethod.MANUAL)
    if confirm_first:
        before = await charge(provider, create)
        assert before.status is ProviderStatus.REQUIRES_CAPTURE
    else:
        before = await provider.create_payment(create, "key-1")
        assert before.status is ProviderStatus.REQUIRES_CONFIRMATION
    canceled = await provider.cancel_payment(before.provider_payment_id, "key-2")
    assert canceled.status is ProviderStatus.CANCELED
    assert await provider.retrieve_payment(before.provider_payment_id) == canceled
    assert len(ledger_lines(ledger)) == (1 if confirm_first else 0)


@pytest.mark.parametrize("payment_method_id", ["pm_card_visa", "pm_mock_processing"])
async def test_cancel_of_a_succeeded_or_processing_payment_is_rejected(
    provider: MockProvider, payment_method_id: str
) -> None:
    result = await charge(provider, request(payment_method_id))
    with pytest.raises(ProviderRejected):
        await provider.cancel_payment(result.provider_payment_id, "key-2")


@pytest.mark.parametrize("cancel_first", [True, False], ids=["canceled", "succeeded"])
async def test_a_canceled_or_succeeded_payment_is_not_charged_by_confirm(
    provider: MockProvider, ledger: Path, cancel_first: bool
) -> None:
    if cancel_first:
        created = await provider.create_payment(request(), "key-1")
        await provider.cancel_payment(created.provider_payment_id, "key-2")
    else:
        created = await charge(provider, request())
    before = await provider.retrieve_payment(created.provider_payment_id)
    charges = len(ledger_lines(ledger))
    with contextlib.suppress(ProviderRejected):
        await provider.confirm_payment(created.provider_payment_id, "", "key-3")
    assert await provider.retrieve_payment(created.provider_payment_id) == before
    assert len(ledger_lines(ledger)) == charges


def finishes_without_waiting(call: Coroutine[Any, Any, object]) -> bool:
    """Whether the call completes on its first step, without ever handing the loop back."""
    try:
        call.send(None)
    except StopIteration:
        return True
    call.close()
    return False


async def test_latency_makes_every_call_wait() -> None:
    # How long the wait lasts is measured by bench/mock_provider_latency.py, not asserted.
    slow = MockProvider(latency_s=0.02)
    assert not finishes_without_waiting(slow.create_payment(request(), "key-1"))
    assert not finishes_without_waiting(slow.retrieve_payment("mock_pi_x"))
    assert not finishes_without_waiting(slow.refund_payment("mock_pi_x", 1, "key-2"))


async def test_no_latency_by_default() -> None:
    provider = MockProvider()
    assert finishes_without_waiting(provider.create_payment(request(), "key-1"))


async def test_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PAYMENTS_MOCK_LATENCY_MS", "20")
    monkeypatch.setenv("PAYMENTS_MOCK_LEDGER", str(tmp_path / "env-ledger.jsonl"))
    provider = MockProvider.configured(Settings.from_env().mock)
    assert not finishes_without_waiting(provider.create_payment(request(), "key-0"))
    created = await provider.create_payment(request(), "key-1")
    assert ledger_lines(tmp_path / "env-ledger.jsonl") == []
    result = await provider.confirm_payment(created.provider_payment_id, "", "key-2")
    assert ledger_lines(tmp_path / "env-ledger.jsonl") == [
        {"kind": "charge", "provider_payment_id": result.provider_payment_id}
    ]
