"""What every use case needs, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from server.adapters.clock import Clock, SystemClock
from server.adapters.providers.mock import MockProvider
from server.domain.refund_window import DEFAULT_REFUND_WINDOW
from server.domain.subscription import DEFAULT_DUNNING
from server.service.audit.exchange_log import ExchangeLog
from server.service.pipeline.idempotency import IdempotencyPolicy
from server.service.pipeline.recorder import Recorder
from server.service.provider import PaymentProvider, SubscriptionBilling
from server.service.unit_of_work import (
    PaymentStatements,
    PaymentWebhookWrites,
    UnitOfWorkFactory,
)


@dataclass(frozen=True, slots=True)
class Dependencies:
    uow: UnitOfWorkFactory
    provider: PaymentProvider
    clock: Clock = field(default_factory=SystemClock)
    idempotency: IdempotencyPolicy = field(default_factory=IdempotencyPolicy)
    # SimulatePayment exists only in development and test environments, with the mock.
    simulation_enabled: bool = False
    simulator: MockProvider | None = None
    # When a failed renewal charge is tried again, counted from the period start.
    dunning: tuple[timedelta, ...] = DEFAULT_DUNNING
    # Set when the provider bills subscriptions itself (Stripe); None: the renewal job bills.
    billing: SubscriptionBilling | None = None
    # Owns the settle tasks and the writes kept through a database outage.
    recorder: Recorder = field(default_factory=Recorder)
    # How long after the capture a payment may be refunded (admins may override).
    refund_window: timedelta = DEFAULT_REFUND_WINDOW
    # The seller named on receipts.
    merchant_name: str = "Payments"
    # Payment webhooks in one transaction of two statements, where the database offers it.
    payment_webhooks: PaymentWebhookWrites | None = None
    # Keeps the provider's requests and answers, sealed; None: not kept.
    exchange_log: ExchangeLog | None = None
    # Units of work on a read replica, when one is configured (PAYMENTS_DATABASE_REPLICA_URL).
    replica: UnitOfWorkFactory | None = None
    # The payment pipeline's writes as single statements, where the database offers them.
    payment_statements: PaymentStatements | None = None

    @property
    def lagging_reads(self) -> UnitOfWorkFactory:
        """For reads that may miss the latest writes: lists and analytics.

        The replica when there is one, else the primary. Gets, ownership checks and every
        step of a command read the primary: a caller must see what it just wrote.
        """
        return self.replica or self.uow
