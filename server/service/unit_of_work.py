"""The ports the service layer writes through: repositories inside one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from server.domain.analytics import RevenueCell, StatsCell
from server.domain.payment import Payment
from server.domain.payment_method import PaymentMethod
from server.domain.plan import Plan
from server.domain.refund import Refund
from server.domain.subscription import Subscription
from server.domain.webhook_events import WebhookEvent
from server.service.audit.ports import AuditRepository
from server.service.paging import TimePage, UserPage
from server.service.payments.pages import PaymentPage, PaymentQuery
from server.service.receipts.ports import ReceiptRepository
from server.service.refunds.pages import RefundQuery
from server.service.subscriptions.pages import PlanQuery


class LiveOrderConflict(Exception):
    """The order already has a live payment (the partial unique index said so)."""


class StaleWrite(Exception):
    """Someone else changed the payment since it was read."""


class DuplicateWebhookEvent(Exception):
    """The provider event is stored already (the unique index said so)."""


class ValueRefused(Exception):
    """The database refused a value itself (too long, a byte it cannot store).

    Not a domain error: for a client's request it is a bug in our checks (INTERNAL);
    for a provider's event it means the content can never be stored (rejected).
    """


class PaymentRepository(Protocol):
    async def add(self, payment: Payment) -> None:
        """Insert the payment and its pending events; LiveOrderConflict on a live order."""

    async def get(
        self, payment_id: str, *, for_update: bool = False, skip_locked: bool = False
    ) -> Payment | None:
        """With `skip_locked`, None also when another transaction holds the row."""

    async def due_for_reconciliation(self, now: datetime | None, limit: int) -> list[str]: ...

    async def waiting(self) -> list[tuple[str, int, datetime]]:
        """Per state that is not settled: how many payments, and the oldest create_time."""

    async def save(self, payment: Payment, expected_sequence: int) -> None:
        """Write changes and pending events if the row is still at `expected_sequence`.

        StaleWrite otherwise.
        """

    async def find_live_by_order(self, user_id: str, order_id: str) -> Payment | None: ...

    async def find_by_provider_id(
        self, provider: str, provider_payment_id: str, *, for_update: bool = False
    ) -> Payment | None:
        """The payment the provider knows by `provider_payment_id`, if any."""

    async def list(self, query: PaymentQuery) -> PaymentPage: ...


class RefundRepository(Protocol):
    async def add(self, refund: Refund) -> None: ...

    async def get(self, refund_id: str, *, for_update: bool = False) -> Refund | None: ...

    async def save(self, refund: Refund) -> None:
        """Write state, provider id, failure and update time (events go through the payment)."""

    async def reserved_amount(self, payment_id: str) -> int:
        """The sum of the payment's PENDING and SUCCEEDED refunds."""

    async def list(self, query: RefundQuery) -> TimePage[Refund]: ...

    async def find_by_provider_refund_id(
        self, provider: str, provider_refund_id: str
    ) -> Refund | None: ...

    async def pending_before(self, before: datetime, limit: int) -> Sequence[tuple[str, str]]:
        """(refund id, payment id) of PENDING refunds last touched before `before`, oldest first."""


class PlanRepository(Protocol):
    async def add(self, plan: Plan) -> None: ...

    async def get(self, plan_id: str) -> Plan | None: ...

    async def save(self, plan: Plan) -> None:
        """Write state and archive time (nothing else of a plan ever changes)."""

    async def list(self, query: PlanQuery) -> TimePage[Plan]: ...


class SubscriptionRepository(Protocol):
    async def add(self, subscription: Subscription) -> None:
        """Insert the subscription and its pending events."""

    async def get(
        self, subscription_id: str, *, for_update: bool = False, skip_locked: bool = False
    ) -> Subscription | None:
        """With `skip_locked`, None also when another transaction holds the row."""

    async def save(self, subscription: Subscription) -> None:
        """Write every change and the pending events; the caller holds the row lock."""

    async def find_by_provider_id(
        self, provider: str, provider_subscription_id: str, *, for_update: bool = False
    ) -> Subscription | None: ...

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Ids of subscriptions whose due_time has come, the most overdue first."""

    async def live_paid_with(self, user_id: str, payment_method_id: str) -> list[str]:
        """Ids of the user's subscriptions, not ended, that charge this saved method."""

    async def list(self, query: UserPage) -> TimePage[Subscription]:
        """Oldest first."""


class PaymentMethodRepository(Protocol):
    async def add(self, method: PaymentMethod) -> None: ...

    async def get(self, method_id: str, *, for_update: bool = False) -> PaymentMethod | None: ...

    async def save(self, method: PaymentMethod) -> None: ...

    async def clear_default(self, user_id: str, now: datetime) -> None:
        """Unset the user's default attached method, if there is one."""

    async def list_attached(self, query: UserPage) -> TimePage[PaymentMethod]:
        """Newest first."""


class CustomerRepository(Protocol):
    """The provider customer of each user, one per provider."""

    async def get(self, user_id: str, provider: str, *, for_update: bool = False) -> str | None:
        """With `for_update`, also serialises the user's default changes (a per-user lock)."""

    async def add_if_absent(
        self, user_id: str, provider: str, provider_customer_id: str, now: datetime
    ) -> str:
        """Record the customer unless one is recorded already; returns the recorded one."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    caller: str
    request_id: str
    method: str
    fingerprint: str
    resource_id: str | None
    # The first outcome as serialized for the caller, replayed byte for byte.
    response: bytes | None
    locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class Completion:
    """A request_id's stored response, set with the write that finishes its command."""

    caller: str
    request_id: str
    response: bytes


class PaymentStatements(Protocol):
    """The payment pipeline's two writes, each one statement, and GetPayment's read
    (PostgreSQL only)."""

    async def start(
        self, key: KeyRecord, now: datetime, expire_time: datetime, payment: Payment
    ) -> bool:
        """Claim `key` and insert the payment with its events; False: the key is taken.

        LiveOrderConflict when the order has a live payment (nothing is written).
        """

    async def save(
        self, payment: Payment, expected_sequence: int, completion: Completion | None = None
    ) -> bool:
        """Write the payment's changes, its events and `completion`; False: it moved meanwhile."""

    async def get(self, payment_id: str) -> Payment | None:
        """The payment as committed, read outside any transaction."""

    async def page(self, query: PaymentQuery) -> PaymentPage | None:
        """One user's payments newest first, outside any transaction; None for any other
        query."""


class IdempotencyKeyRepository(Protocol):
    async def insert_if_absent(
        self, record: KeyRecord, now: datetime, expire_time: datetime
    ) -> bool: ...

    async def get(self, caller: str, request_id: str) -> KeyRecord | None: ...

    async def take_over(self, record: KeyRecord, locked_until: datetime) -> bool:
        """Compare-and-set the lease of a key whose first caller is gone."""

    async def complete(
        self, caller: str, request_id: str, resource_id: str, response: bytes
    ) -> None: ...

    async def release(self, caller: str, request_id: str) -> None: ...

    async def delete(self, caller: str, request_id: str) -> None: ...

    async def delete_expired(self, now: datetime, limit: int) -> int: ...


class WebhookEventRepository(Protocol):
    async def get(self, event_id: str, *, for_update: bool = False) -> WebhookEvent | None: ...

    async def add(self, event: WebhookEvent) -> None:
        """Insert the event; DuplicateWebhookEvent when its id is stored already."""

    async def save(self, event: WebhookEvent) -> None:
        """Write status, error, attempts, payment and applied time of a stored event."""

    async def failed(self, limit: int) -> list[WebhookEvent]:
        """Stored events whose application failed, oldest first."""


class PaymentWebhookTransaction(Protocol):
    """One payment event's transaction: one statement to read, one to write and commit."""

    async def load(
        self, event_id: str, provider: str, payment_id: str, provider_payment_id: str
    ) -> tuple[WebhookEvent | None, Payment | None]:
        """The stored event and the payment named, each locked until the transaction ends.

        The payment is `payment_id` if it is the provider's and carries `provider_payment_id`
        (or none yet); else the newest of the provider's with `provider_payment_id`.
        """

    async def finish(
        self, event: WebhookEvent, *, stored: bool, payment: Payment | None, expected_sequence: int
    ) -> None:
        """Write `event` (the stored row's update when `stored`) and `payment`'s changes with
        its events, outbox rows and receipts, as the repositories would; then commit.

        DuplicateWebhookEvent when another delivery stored the event first, StaleWrite when
        the payment is no longer at `expected_sequence`: nothing is written either way.
        """


class PaymentWebhookWrites(Protocol):
    """Payment events applied in few round trips; a unit of work without the repositories.

    Writes no audit records: a webhook is no audited call.
    """

    def transaction(self) -> AbstractAsyncContextManager[PaymentWebhookTransaction]: ...


class AnalyticsRepository(Protocol):
    async def stats_cells(
        self, start: datetime, end: datetime, currency_code: str | None
    ) -> list[StatsCell]:
        """Payments created in [start, end) grouped by currency, provider and state."""

    async def revenue_cells(
        self, boundaries: list[datetime], currency_code: str | None
    ) -> list[RevenueCell]:
        """Payments that took money, grouped by currency and bucket [boundaries[i], [i+1])."""

    async def roll_up(self, limit: int) -> int:
        """Sum up to `limit` of the oldest revenue changes into their hours; how many."""


class UnitOfWork(Protocol):
    @property
    def payments(self) -> PaymentRepository: ...

    @property
    def refunds(self) -> RefundRepository: ...

    @property
    def plans(self) -> PlanRepository: ...

    @property
    def subscriptions(self) -> SubscriptionRepository: ...

    @property
    def idempotency_keys(self) -> IdempotencyKeyRepository: ...

    @property
    def payment_methods(self) -> PaymentMethodRepository: ...

    @property
    def customers(self) -> CustomerRepository: ...

    @property
    def webhook_events(self) -> WebhookEventRepository: ...

    @property
    def analytics(self) -> AnalyticsRepository: ...

    @property
    def receipts(self) -> ReceiptRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed."""

    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        """A new unit of work; `read_only` ones may skip the transaction (one consistent read)."""
        ...
