"""The provider port: what the service layer asks of Stripe, the mock, or any other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from server.domain.money import Money
from server.domain.payment import CaptureMethod, Failure
from server.domain.payment_method import BillingDetails


class ProviderStatus(StrEnum):
    """A provider payment's status, in Stripe's PaymentIntent vocabulary."""

    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"
    # Stripe puts a declined intent back to requires_payment_method with a
    # last_payment_error; adapters report that as FAILED with the failure.
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ProviderPayment:
    """The provider's view of one payment after a call."""

    provider_payment_id: str
    status: ProviderStatus
    amount_received: int = 0
    failure: Failure | None = None
    client_secret: str = field(default="", repr=False)


class ProviderRefundStatus(StrEnum):
    """A provider refund's status, in Stripe's Refund vocabulary."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    """The provider's view of one refund after a call."""

    provider_refund_id: str
    status: ProviderRefundStatus
    failure: Failure | None = None


@dataclass(frozen=True, slots=True)
class CreateAtProvider:
    """A payment to register at the provider; with `confirm`, charged in the same call."""

    payment_id: str
    order_id: str
    amount: Money
    capture_method: CaptureMethod
    payment_method_id: str
    description: str = ""
    # The provider's customer a saved payment method is attached to; "" for a one-off method.
    customer_id: str = ""
    # Charge it at once (Stripe's `confirm=true`): one call instead of create, then confirm.
    confirm: bool = False


@dataclass(frozen=True, slots=True)
class ProviderPaymentMethod:
    """A payment method as the provider describes it once attached: no number, no CVC."""

    provider_payment_method_id: str
    type: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


class ProviderRejected(Exception):
    """The provider refused the request as invalid (not a decline); nothing was charged."""

    def __init__(self, message: str, *, field: str = "", code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class PaymentMethodDeclined(Exception):
    """The card was declined when the provider checked it on attaching; nothing was saved."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.code)
        self.failure = failure


class PaymentProvider(Protocol):
    """Every write takes an idempotency key, so a retry can never charge twice.

    Raises ProviderRejected for invalid requests and
    server.domain.errors.ProviderUnavailable when the outcome is unknown.
    """

    name: str
    # Whether payments carry a client secret for the browser (Stripe.js) worth returning.
    issues_client_secrets: bool

    def ensure_available(self) -> None:
        """Raise ProviderUnavailable at once when calls are known to fail (breaker open)."""

    async def create_payment(
        self, request: CreateAtProvider, idempotency_key: str
    ) -> ProviderPayment: ...

    async def confirm_payment(
        self, provider_payment_id: str, payment_method_id: str, idempotency_key: str
    ) -> ProviderPayment: ...

    async def capture_payment(
        self, provider_payment_id: str, amount: int, idempotency_key: str
    ) -> ProviderPayment: ...

    async def cancel_payment(
        self, provider_payment_id: str, idempotency_key: str
    ) -> ProviderPayment: ...

    async def retrieve_payment(self, provider_payment_id: str) -> ProviderPayment: ...

    async def find_payment(self, payment_id: str) -> ProviderPayment | None:
        """The provider payment created for our `payment_id` (by the metadata or key we
        sent), or None when the provider has none: for rows that lost the provider's id."""

    async def refund_payment(
        self, provider_payment_id: str, amount: int, idempotency_key: str
    ) -> ProviderRefund:
        """Give `amount` of a charged payment back; a refused refund comes back FAILED."""

    async def retrieve_refund(self, provider_refund_id: str) -> ProviderRefund:
        """The provider's current view of one refund (ProviderRejected if it has none)."""

    async def ensure_customer(self, user_id: str, idempotency_key: str) -> str:
        """Create the provider's customer for one of our users; returns its id."""

    async def attach_payment_method(
        self, provider_payment_method_id: str, customer_id: str, idempotency_key: str
    ) -> ProviderPaymentMethod:
        """Attach a method to a customer; PaymentMethodDeclined if the card check fails.

        The returned id may differ from the one sent: Stripe turns a test token
        such as pm_card_visa into a new payment method.
        """

    async def update_payment_method_billing(
        self, provider_payment_method_id: str, billing: BillingDetails, idempotency_key: str
    ) -> None:
        """Replace the method's billing details (empty fields clear them)."""

    async def detach_payment_method(
        self, provider_payment_method_id: str, idempotency_key: str
    ) -> None:
        """Detach the method from its customer; a method already detached is fine."""


@dataclass(frozen=True, slots=True)
class ProviderSubscription:
    """A subscription the provider bills itself, in Stripe's vocabulary (status "active", ...)."""

    provider_subscription_id: str
    status: str
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool


class SubscriptionBilling(Protocol):
    """A provider that bills subscriptions itself (Stripe Billing); its webhooks report back."""

    async def ensure_plan(
        self, plan_id: str, name: str, price: Money, interval: str, interval_count: int
    ) -> str:
        """The provider's plan for ours (created once, with our id); returns its id."""

    async def create_subscription(
        self,
        *,
        subscription_id: str,
        customer_id: str,
        provider_plan_id: str,
        provider_payment_method_id: str,
        trial_days: int,
        idempotency_key: str,
    ) -> ProviderSubscription: ...

    async def set_payment_method(
        self, customer_id: str, provider_payment_method_id: str, idempotency_key: str
    ) -> None:
        """Make the method the one the customer's subscription invoices charge."""

    async def set_cancel_at_period_end(
        self, provider_subscription_id: str, cancel: bool, idempotency_key: str
    ) -> ProviderSubscription: ...

    async def cancel_subscription(
        self, provider_subscription_id: str, idempotency_key: str
    ) -> ProviderSubscription: ...


class MalformedWebhookEvent(Exception):
    """A verified body that is not one of the provider's events (not JSON, or no id or type)."""


@dataclass(frozen=True, slots=True)
class PaymentReport:
    """The provider reports where one of its payments is."""

    provider_payment_id: str
    # Ours, from the metadata we sent; "" when the provider did not echo it.
    payment_id: str
    reported: ProviderPayment


@dataclass(frozen=True, slots=True)
class RefundReport:
    """The provider reports where one of its refunds is."""

    provider_refund_id: str
    reported: ProviderRefund
    # Ours, from the key our refund call sent; "" for a refund made at the provider itself.
    refund_id: str = ""
    # What a refund made at the provider needs to be recorded: its payment and amount.
    provider_payment_id: str = ""
    amount: int | None = None


@dataclass(frozen=True, slots=True)
class DisputeReport:
    """The provider reports a closed dispute; a lost one gave `amount` back to the customer."""

    provider_dispute_id: str
    provider_payment_id: str
    amount: int | None
    lost: bool


class SubscriptionNews(StrEnum):
    PERIOD_PAID = "period_paid"
    PAYMENT_FAILED = "payment_failed"
    CHANGED = "changed"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class SubscriptionReport:
    """The provider reports on a subscription it bills."""

    news: SubscriptionNews
    provider_subscription_id: str
    # Ours, from the metadata we sent; "" when the event does not carry it (invoices).
    subscription_id: str = ""
    # PERIOD_PAID: the period paid (None if unknown) and how much was paid.
    period: tuple[datetime, datetime] | None = None
    amount_paid: int | None = None
    # CHANGED and DELETED: the provider's status and cancel_at_period_end.
    status: str = ""
    cancel_at_period_end: bool = False


Report = PaymentReport | RefundReport | DisputeReport | SubscriptionReport | None


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One webhook event; `read_report` says what it reports, in neutral terms (None:
    nothing of ours). Read while the event is applied, so that an object the adapter
    cannot read (a string where a number belongs) stores the event as rejected."""

    provider: str
    id: str
    # The provider's name for it, kept and logged as is.
    type: str
    # The body exactly as received and signed, stored for replays.
    payload: str
    read_report: Callable[[], Report]
    # Why its content can never be applied, in words safe to store; None if it can.
    problem: str | None = None


class ProviderEvents(Protocol):
    """Turns the provider's webhook bodies into ProviderEvents."""

    def parse(self, body: bytes | str) -> ProviderEvent:
        """The event in a verified body; MalformedWebhookEvent if it is not one."""
        ...
