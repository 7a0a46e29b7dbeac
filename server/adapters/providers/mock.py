"""A deterministic in-process provider that follows Stripe's test payment methods.

`pm_card_visa` succeeds, `pm_card_chargeDeclined` is declined, and so on (see
OUTCOMES). Two extra methods exist for tests of unknown outcomes:
`pm_mock_processing` leaves the payment PROCESSING at the provider, and
`pm_mock_timeout` raises ProviderUnavailable after the provider has charged.
Results are remembered per idempotency key, as Stripe does: a replayed key
gets the first answer. Intents, refunds and replies live in a MockStore (a
SQLite file with PAYMENTS_MOCK_STORE, so they survive SIGKILL and are shared
by server and worker; memory otherwise), which also keeps a ledger of every
movement of money. A FaultPlan (PAYMENTS_MOCK_FAULTS) makes a chosen call
fail, time out or answer "unknown". With a ledger path each charge is also
appended to that file.

Saved methods: attaching one of CARDS returns its fixed card details under
the same id (so the mock stays stateless across restarts); a method that
Stripe declines on its attach-time card check (every declining test method
but pm_card_chargeCustomerFail) raises PaymentMethodDeclined, as Stripe and
localstripe do.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from server.adapters.providers.mock_faults import Fault, FaultPlan
from server.adapters.providers.mock_store import MockStore
from server.config import MockSettings
from server.domain.errors import ProviderUnavailable
from server.domain.payment import CaptureMethod, Failure
from server.domain.payment_method import BillingDetails
from server.service.provider import (
    CreateAtProvider,
    PaymentMethodDeclined,
    ProviderPayment,
    ProviderPaymentMethod,
    ProviderRefund,
    ProviderRefundStatus,
    ProviderRejected,
    ProviderStatus,
)

_DECLINED = "Your card was declined."
_T = TypeVar("_T", ProviderPayment, ProviderRefund)
PENDING = ProviderRefundStatus.PENDING


def _token(text: str) -> str:
    """A stable id part; base32, since a hex digest can hold a run of digits like a card number."""
    digest = hashlib.sha256(text.encode()).digest()
    return base64.b32encode(digest).decode().lower()[:24]


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
    # Charges fine; every refund of the payment then fails with "refund_failed".
    "pm_card_refundFail": _SUCCESS,
}
REFUND_FAILS = frozenset({"pm_card_refundFail"})
_REFUND_FAILURE = Failure("refund_failed", "The refund could not be completed.")


# Brand and last four digits of the test cards that can be attached (all expire 12/2030,
# as localstripe's do); Stripe's test card numbers end in these digits.
CARDS: dict[str, tuple[str, str]] = {
    "pm_card_visa": ("visa", "4242"),
    "pm_card_visa_debit": ("visa", "5556"),
    "pm_card_mastercard": ("mastercard", "4444"),
    "pm_card_amex": ("amex", "8431"),
    "pm_card_discover": ("discover", "1117"),
    # Attaches fine, then every charge is declined.
    "pm_card_chargeCustomerFail": ("visa", "0341"),
    "pm_card_authenticationRequired": ("visa", "3184"),
    "pm_card_threeDSecure2Required": ("visa", "3220"),
    "pm_mock_processing": ("visa", "4242"),
    "pm_mock_timeout": ("visa", "4242"),
    # Stripe's refund-failure test card (4000 0000 0000 5126).
    "pm_card_refundFail": ("visa", "5126"),
}
CARD_EXPIRY = (12, 2030)


_CONFIRMABLE = (
    ProviderStatus.REQUIRES_PAYMENT_METHOD,
    ProviderStatus.REQUIRES_CONFIRMATION,
    ProviderStatus.REQUIRES_ACTION,
)
# What an "unknown" answer says instead of the outcome.
_UNKNOWN_PAYMENT = ProviderStatus.PROCESSING


@dataclass(slots=True)
class _Intent:
    provider_payment_id: str
    payment_id: str
    amount: int
    capture_method: CaptureMethod
    payment_method_id: str
    status: ProviderStatus
    amount_received: int = 0
    failure: Failure | None = None
    authenticated: bool = False
    amount_refunded: int = 0

    def view(self) -> ProviderPayment:
        return ProviderPayment(
            self.provider_payment_id, self.status, self.amount_received, self.failure
        )

    def body(self) -> dict[str, Any]:
        return record_body(self)

    @classmethod
    def of(cls, body: dict[str, Any]) -> _Intent:
        failure = body.pop("failure")
        return cls(
            **{
                **body,
                "capture_method": CaptureMethod(body["capture_method"]),
                "status": ProviderStatus(body["status"]),
                "failure": Failure(**failure) if failure else None,
            }
        )


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def record_body(record: Any) -> dict[str, Any]:
    """`asdict(record)` for the mock's flat records, without its deep copy of every value:
    theirs are strings, numbers, enums and at most one Failure. A charge stores three."""
    kind = type(record)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(record))
    body = {name: getattr(record, name) for name in names}
    failure = body.get("failure")
    if failure is not None:
        body["failure"] = asdict(failure)
    return body


def _payment_body(reply: ProviderPayment) -> dict[str, Any]:
    return {"kind": "payment", **record_body(reply)}


def _refund_body(reply: ProviderRefund) -> dict[str, Any]:
    return {"kind": "refund", **record_body(reply)}


def _payment_of(body: dict[str, Any]) -> ProviderPayment:
    failure = body["failure"]
    return ProviderPayment(
        body["provider_payment_id"],
        ProviderStatus(body["status"]),
        body["amount_received"],
        Failure(**failure) if failure else None,
    )


def _refund_of(body: dict[str, Any]) -> ProviderRefund:
    failure = body["failure"]
    return ProviderRefund(
        body["provider_refund_id"],
        ProviderRefundStatus(body["status"]),
        Failure(**failure) if failure else None,
    )


class MockProvider:
    name = "mock"
    issues_client_secrets = False

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        ledger: Path | None = None,
        store: MockStore | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        self._latency_s = latency_s
        self._ledger = ledger
        self.store = store or MockStore()
        self._faults = faults or FaultPlan()

    @classmethod
    def configured(cls, settings: MockSettings) -> MockProvider:
        """The mock as PAYMENTS_MOCK_* (read by Settings) describe it."""
        return cls(
            latency_s=settings.latency_s,
            ledger=settings.ledger,
            store=MockStore(settings.store) if settings.store else None,
            faults=FaultPlan(settings.faults),
        )

    def ensure_available(self) -> None:
        """The mock is always there."""

    async def create_payment(
        self, request: CreateAtProvider, idempotency_key: str
    ) -> ProviderPayment:
        def create() -> ProviderPayment:
            self._check_method(request.payment_method_id, required=request.confirm)
            intent = _Intent(
                provider_payment_id=f"mock_pi_{_token(idempotency_key)}",
                payment_id=request.payment_id,
                amount=request.amount.minor_units,
                capture_method=request.capture_method,
                payment_method_id=request.payment_method_id,
                status=ProviderStatus.REQUIRES_CONFIRMATION
                if request.payment_method_id
                else ProviderStatus.REQUIRES_PAYMENT_METHOD,
            )
            if request.confirm:
                self._confirm(intent, idempotency_key)
            else:
                self._save(intent)
            return intent.view()

        if request.confirm:  # the charge: faults and pm_mock_timeout are a confirm's
            method = request.payment_method_id
            return await self._idempotent("confirm", idempotency_key, create, method)
        return await self._idempotent("create", idempotency_key, create, "")

    async def confirm_payment(
        self, provider_payment_id: str, payment_method_id: str, idempotency_key: str
    ) -> ProviderPayment:
        def confirm() -> ProviderPayment:
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
            self._confirm(intent, idempotency_key)
            return intent.view()

        found = self.store.intent(provider_payment_id)
        method = payment_method_id or (found["payment_method_id"] if found else "")
        return await self._idempotent("confirm", idempotency_key, confirm, method)

    async def capture_payment(
        self, provider_payment_id: str, amount: int, idempotency_key: str
    ) -> ProviderPayment:
        def capture() -> ProviderPayment:
            intent = self._intent(provider_payment_id)
            if intent.status is not ProviderStatus.REQUIRES_CAPTURE:
                raise ProviderRejected(f"payment is {intent.status.value}, not requires_capture")
            if not 0 < amount <= intent.amount:
                raise ProviderRejected("amount_to_capture exceeds the authorized amount")
            intent.status = ProviderStatus.SUCCEEDED
            intent.amount_received = amount
            self._save(intent)
            self._moved("capture", intent, amount, idempotency_key)
            return intent.view()

        return await self._idempotent("capture", idempotency_key, capture, "")

    async def cancel_payment(
        self, provider_payment_id: str, idempotency_key: str
    ) -> ProviderPayment:
        def cancel() -> ProviderPayment:
            intent = self._intent(provider_payment_id)
            if intent.status in (ProviderStatus.SUCCEEDED, ProviderStatus.PROCESSING):
                raise ProviderRejected(f"a {intent.status.value} payment cannot be canceled")
            intent.status = ProviderStatus.CANCELED
            self._save(intent)
            return intent.view()

        return await self._idempotent("cancel", idempotency_key, cancel, "")

    async def refund_payment(
        self, provider_payment_id: str, amount: int, idempotency_key: str
    ) -> ProviderRefund:
        await self._wait()
        fault = self._before("refund")
        with self.store.transaction():
            stored = self.store.reply(idempotency_key)
            reply = _refund_of(stored) if stored else None
            if reply is None:
                reply = self._refund(provider_payment_id, amount, idempotency_key)
                self.store.put_reply(idempotency_key, _refund_body(reply))
        return self._after(fault, reply, ProviderRefund(reply.provider_refund_id, PENDING))

    def _refund(self, provider_payment_id: str, amount: int, key: str) -> ProviderRefund:
        intent = self._intent(provider_payment_id)
        if intent.status is not ProviderStatus.SUCCEEDED:
            raise ProviderRejected(f"a {intent.status.value} payment cannot be refunded")
        if not 0 < amount <= intent.amount_received - intent.amount_refunded:
            raise ProviderRejected("amount exceeds what the payment can still refund")
        refund_id = f"mock_re_{_token(key)}"
        if intent.payment_method_id in REFUND_FAILS:
            reply = ProviderRefund(refund_id, ProviderRefundStatus.FAILED, _REFUND_FAILURE)
        else:
            intent.amount_refunded += amount
            self._save(intent)
            reply = ProviderRefund(refund_id, ProviderRefundStatus.SUCCEEDED)
            self._moved("refund", intent, amount, key)
        self.store.put_refund(refund_id, provider_payment_id, _refund_body(reply))
        return reply

    async def retrieve_refund(self, provider_refund_id: str) -> ProviderRefund:
        await self._wait()
        self._before("retrieve_refund")
        found = self.store.refund(provider_refund_id)
        if found is None:
            raise ProviderRejected(f"no such refund: {provider_refund_id}")
        return _refund_of(found)

    async def retrieve_payment(self, provider_payment_id: str) -> ProviderPayment:
        await self._wait()
        self._before("retrieve")
        return self._intent(provider_payment_id).view()

    async def find_payment(self, payment_id: str) -> ProviderPayment | None:
        await self._wait()
        self._before("find")
        found = self.store.intent_for_payment(payment_id)
        return _Intent.of(found).view() if found else None

    async def ensure_customer(self, user_id: str, idempotency_key: str) -> str:
        del idempotency_key  # derived from the user alone, so repeats are harmless
        await self._wait()
        return f"mock_cus_{_token(user_id)}"

    async def attach_payment_method(
        self, provider_payment_method_id: str, customer_id: str, idempotency_key: str
    ) -> ProviderPaymentMethod:
        del customer_id, idempotency_key  # attaching is deterministic per method
        await self._wait()
        outcome = OUTCOMES.get(provider_payment_method_id)
        if provider_payment_method_id not in CARDS and outcome and outcome.failure:
            raise PaymentMethodDeclined(outcome.failure)
        self._check_attachable(provider_payment_method_id)
        brand, last4 = CARDS[provider_payment_method_id]
        return ProviderPaymentMethod(provider_payment_method_id, "card", brand, last4, *CARD_EXPIRY)

    async def update_payment_method_billing(
        self, provider_payment_method_id: str, billing: BillingDetails, idempotency_key: str
    ) -> None:
        del billing, idempotency_key
        await self._wait()
        self._check_attachable(provider_payment_method_id)

    async def detach_payment_method(
        self, provider_payment_method_id: str, idempotency_key: str
    ) -> None:
        del idempotency_key
        await self._wait()
        self._check_attachable(provider_payment_method_id)

    def settle(self, provider_payment_id: str, succeeded: bool) -> ProviderPayment:
        """Decide a pending payment, as the real provider would later on its own."""
        with self.store.transaction():
            intent = self._intent(provider_payment_id)
            if succeeded:
                self._charge(intent, f"{provider_payment_id}:settle")
            else:
                intent.status = ProviderStatus.FAILED
                intent.failure = Failure("card_declined", _DECLINED)
                self._save(intent)
        return intent.view()

    def _confirm(self, intent: _Intent, key: str) -> None:
        outcome = OUTCOMES[intent.payment_method_id]
        if outcome.status is ProviderStatus.REQUIRES_ACTION and intent.authenticated:
            outcome = _SUCCESS
        if outcome.status is ProviderStatus.SUCCEEDED:
            self._charge(intent, key)
        else:
            intent.status = outcome.status
            intent.failure = outcome.failure
            self._save(intent)

    def _charge(self, intent: _Intent, key: str) -> None:
        if intent.capture_method is CaptureMethod.MANUAL:
            intent.status = ProviderStatus.REQUIRES_CAPTURE
            self._moved("authorize", intent, intent.amount, key)
        else:
            intent.status = ProviderStatus.SUCCEEDED
            intent.amount_received = intent.amount
            self._moved("charge", intent, intent.amount, key)
        self._save(intent)

    async def _idempotent(
        self, call: str, key: str, act: Callable[[], ProviderPayment], payment_method_id: str
    ) -> ProviderPayment:
        await self._wait()
        fault = self._before(call)
        with self.store.transaction():
            stored = self.store.reply(key)
            reply = _payment_of(stored) if stored else None
            if reply is None:
                reply = act()
                self.store.put_reply(key, _payment_body(reply))
        if payment_method_id == "pm_mock_timeout":
            raise ProviderUnavailable("the provider did not answer in time")
        unknown = ProviderPayment(reply.provider_payment_id, _UNKNOWN_PAYMENT)
        return self._after(fault, reply, unknown)

    def _before(self, call: str) -> Fault | None:
        """Apply an `unavailable` fault (nothing happens); return the fault for `_after`."""
        fault = self._faults.fault_for(call)
        if fault is Fault.UNAVAILABLE:
            raise ProviderUnavailable(f"mock fault: {call} unavailable")
        return fault

    @staticmethod
    def _after(fault: Fault | None, reply: _T, unknown: _T) -> _T:
        if fault is Fault.TIMEOUT:
            raise ProviderUnavailable("mock fault: the provider did not answer in time")
        return unknown if fault is Fault.UNKNOWN else reply

    async def _wait(self) -> None:
        if self._latency_s:
            await asyncio.sleep(self._latency_s)

    def _intent(self, provider_payment_id: str) -> _Intent:
        found = self.store.intent(provider_payment_id)
        if found is None:
            raise ProviderRejected(f"no such payment: {provider_payment_id}")
        return _Intent.of(found)

    def _save(self, intent: _Intent) -> None:
        self.store.put_intent(intent.provider_payment_id, intent.payment_id, intent.body())

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

    @staticmethod
    def _check_attachable(provider_payment_method_id: str) -> None:
        if provider_payment_method_id not in CARDS:
            raise ProviderRejected(
                f"no such payment method: {provider_payment_method_id!r}",
                field="payment_method_id",
                code="resource_missing",
            )

    def _moved(self, kind: str, intent: _Intent, amount: int, key: str) -> None:
        self.store.record_movement(kind, intent.provider_payment_id, amount, key)
        if self._ledger is None:
            return
        line = json.dumps({"kind": kind, "provider_payment_id": intent.provider_payment_id})
        # O_APPEND writes of one short line are atomic, so processes can share the file.
        with self._ledger.open("a", encoding="utf-8") as ledger:
            ledger.write(line + "\n")
