"""A deterministic in-process provider that follows Stripe's test payment methods.

`pm_card_visa` succeeds, `pm_card_chargeDeclined` is declined, and so on (see
OUTCOMES). Two extra methods exist for tests of unknown outcomes:
`pm_mock_processing` leaves the payment PROCESSING at the provider, and
`pm_mock_timeout` raises ProviderUnavailable after the provider has charged.
Results are remembered per idempotency key, as Stripe does. With a ledger path
each charge is appended to that file, so tests can count charges across
processes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from server.adapters.providers.base import (
    CreateAtProvider,
    ProviderPayment,
    ProviderRejected,
    ProviderStatus,
)
from server.domain.errors import ProviderUnavailable
from server.domain.payment import CaptureMethod, Failure

_DECLINED = "Your card was declined."
_Call = Callable[[], Awaitable["ProviderPayment"]]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: ProviderStatus
    failure: Failure | None = None


_SUCCESS = Outcome(ProviderStatus.SUCCEEDED)
OUTCOMES: dict[str, Outcome] = {
    "pm_card_visa": _SUCCESS,
    "pm_card_visa_debit": _SUCCESS,
    "pm_card_mastercard": _SUCCESS,
    "pm_card_amex": _SUCCESS,
    "pm_card_discover": _SUCCESS,
    "pm_card_chargeDeclined": Outcome(ProviderStatus.FAILED, Failure("card_declined", _DECLINED)),
    "pm_card_visa_chargeDeclined": Outcome(
        ProviderStatus.FAILED, Failure("card_declined", _DECLINED)
    ),
    "pm_card_chargeCustomerFail": Outcome(
        ProviderStatus.FAILED, Failure("card_declined", _DECLINED)
    ),
    "pm_card_insufficientFunds": Outcome(
        ProviderStatus.FAILED, Failure("insufficient_funds", "Your card has insufficient funds.")
    ),
    "pm_card_visa_chargeDeclinedInsufficientFunds": Outcome(
        ProviderStatus.FAILED, Failure("insufficient_funds", "Your card has insufficient funds.")
    ),
    "pm_card_chargeDeclinedExpiredCard": Outcome(
        ProviderStatus.FAILED, Failure("expired_card", "Your card has expired.")
    ),
    "pm_card_chargeDeclinedIncorrectCvc": Outcome(
        ProviderStatus.FAILED, Failure("incorrect_cvc", "Your card's security code is incorrect.")
    ),
    "pm_card_chargeDeclinedProcessingError": Outcome(
        ProviderStatus.FAILED,
        Failure("processing_error", "An error occurred while processing your card."),
    ),
    "pm_card_authenticationRequired": Outcome(ProviderStatus.REQUIRES_ACTION),
    "pm_card_threeDSecure2Required": Outcome(ProviderStatus.REQUIRES_ACTION),
    "pm_mock_processing": Outcome(ProviderStatus.PROCESSING),
    "pm_mock_timeout": _SUCCESS,
}


_CONFIRMABLE = (
    ProviderStatus.REQUIRES_PAYMENT_METHOD,
    ProviderStatus.REQUIRES_CONFIRMATION,
    ProviderStatus.REQUIRES_ACTION,
)


@dataclass(slots=True)
class _Intent:
    provider_payment_id: str
    amount: int
    capture_method: CaptureMethod
    payment_method_id: str
    status: ProviderStatus
    amount_received: int = 0
    failure: Failure | None = None
    authenticated: bool = False

    def view(self) -> ProviderPayment:
        return ProviderPayment(
            self.provider_payment_id, self.status, self.amount_received, self.failure
        )


class MockProvider:
    name = "mock"
    issues_client_secrets = False

    def __init__(self, *, latency_s: float = 0.0, ledger: Path | None = None) -> None:
        self._latency_s = latency_s
        self._ledger = ledger
        self._intents: dict[str, _Intent] = {}
        self._replies: dict[str, ProviderPayment] = {}

    @classmethod
    def from_env(cls) -> MockProvider:
        latency_ms = float(os.environ.get("PAYMENTS_MOCK_LATENCY_MS", "0"))
        ledger = os.environ.get("PAYMENTS_MOCK_LEDGER")
        return cls(latency_s=latency_ms / 1000, ledger=Path(ledger) if ledger else None)

    def ensure_available(self) -> None:
        """The mock is always there."""

    async def create_payment(
        self, request: CreateAtProvider, idempotency_key: str
    ) -> ProviderPayment:
        async def create() -> ProviderPayment:
            self._check_method(request.payment_method_id, required=False)
            digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
            intent = _Intent(
                provider_payment_id=f"mock_pi_{digest}",
                amount=request.amount.minor_units,
                capture_method=request.capture_method,
                payment_method_id=request.payment_method_id,
                status=ProviderStatus.REQUIRES_CONFIRMATION
                if request.payment_method_id
                else ProviderStatus.REQUIRES_PAYMENT_METHOD,
            )
            self._intents[intent.provider_payment_id] = intent
            return intent.view()

        # A timeout is simulated on the charge (confirm), where it hurts.
        return await self._idempotent(idempotency_key, create, "")

    async def confirm_payment(
        self, provider_payment_id: str, payment_method_id: str, idempotency_key: str
    ) -> ProviderPayment:
        async def confirm() -> ProviderPayment:
            intent = self._intent(provider_payment_id)
            if intent.status not in _CONFIRMABLE:
                raise ProviderRejected(
                    f"a {intent.status.value} payment cannot be confirmed",
                    code="payment_intent_unexpected_state",
                )
            self._check_method(payment_method_id or intent.payment_method_id, required=True)
            if payment_method_id:
                intent.payment_method_id = payment_method_id
            if intent.status is ProviderStatus.REQUIRES_ACTION:
                # Confirming again after the customer's challenge, as Stripe.js would.
                intent.authenticated = True
            self._confirm(intent)
            return intent.view()

        intent = self._intents.get(provider_payment_id)
        method = payment_method_id or (intent.payment_method_id if intent else "")
        return await self._idempotent(idempotency_key, confirm, method)

    async def capture_payment(
        self, provider_payment_id: str, amount: int, idempotency_key: str
    ) -> ProviderPayment:
        async def capture() -> ProviderPayment:
            intent = self._intent(provider_payment_id)
            if intent.status is not ProviderStatus.REQUIRES_CAPTURE:
                raise ProviderRejected(f"payment is {intent.status.value}, not requires_capture")
            if not 0 < amount <= intent.amount:
                raise ProviderRejected("amount_to_capture exceeds the authorized amount")
            intent.status = ProviderStatus.SUCCEEDED
            intent.amount_received = amount
            self._write_ledger("capture", intent)
            return intent.view()

        return await self._idempotent(idempotency_key, capture, "")

    async def cancel_payment(
        self, provider_payment_id: str, idempotency_key: str
    ) -> ProviderPayment:
        async def cancel() -> ProviderPayment:
            intent = self._intent(provider_payment_id)
            if intent.status in (ProviderStatus.SUCCEEDED, ProviderStatus.PROCESSING):
                raise ProviderRejected(f"a {intent.status.value} payment cannot be canceled")
            intent.status = ProviderStatus.CANCELED
            return intent.view()

        return await self._idempotent(idempotency_key, cancel, "")

    async def retrieve_payment(self, provider_payment_id: str) -> ProviderPayment:
        await self._wait()
        return self._intent(provider_payment_id).view()

    def settle(self, provider_payment_id: str, succeeded: bool) -> ProviderPayment:
        """Decide a pending payment, as the real provider would later on its own."""
        intent = self._intent(provider_payment_id)
        if succeeded:
            self._charge(intent)
        else:
            intent.status = ProviderStatus.FAILED
            intent.failure = Failure("card_declined", _DECLINED)
        return intent.view()

    def _confirm(self, intent: _Intent) -> None:
        outcome = OUTCOMES[intent.payment_method_id]
        if outcome.status is ProviderStatus.REQUIRES_ACTION and intent.authenticated:
            outcome = _SUCCESS
        if outcome.status is ProviderStatus.SUCCEEDED:
            self._charge(intent)
        else:
            intent.status = outcome.status
            intent.failure = outcome.failure

    def _charge(self, intent: _Intent) -> None:
        if intent.capture_method is CaptureMethod.MANUAL:
            intent.status = ProviderStatus.REQUIRES_CAPTURE
            self._write_ledger("authorize", intent)
        else:
            intent.status = ProviderStatus.SUCCEEDED
            intent.amount_received = intent.amount
            self._write_ledger("charge", intent)

    async def _idempotent(self, key: str, call: _Call, payment_method_id: str) -> ProviderPayment:
        await self._wait()
        reply = self._replies.get(key)
        if reply is None:
            reply = await call()
            self._replies[key] = reply
        if payment_method_id == "pm_mock_timeout":
            raise ProviderUnavailable("the provider did not answer in time")
        return reply

    async def _wait(self) -> None:
        if self._latency_s:
            await asyncio.sleep(self._latency_s)

    def _intent(self, provider_payment_id: str) -> _Intent:
        intent = self._intents.get(provider_payment_id)
        if intent is None:
            raise ProviderRejected(f"no such payment: {provider_payment_id}")
        return intent

    @staticmethod
    def _check_method(payment_method_id: str, *, required: bool) -> None:
        if not payment_method_id and not required:
            return
        if payment_method_id not in OUTCOMES:
            raise ProviderRejected(
                f"no such payment method: {payment_method_id!r}",
                field="payment_method_id",
                code="resource_missing",
            )

    def _write_ledger(self, kind: str, intent: _Intent) -> None:
        if self._ledger is None:
            return
        line = json.dumps({"kind": kind, "provider_payment_id": intent.provider_payment_id})
        # O_APPEND writes of one short line are atomic, so processes can share the file.
        with self._ledger.open("a", encoding="utf-8") as ledger:
            ledger.write(line + "\n")
