"""One database transaction with the repositories bound to it."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.adapters.db.analytics_repository import SqlAnalyticsRepository
from server.adapters.db.customer_repository import SqlCustomerRepository
from server.adapters.db.idempotency_key_repository import SqlIdempotencyKeyRepository
from server.adapters.db.payment_method_repository import SqlPaymentMethodRepository
from server.adapters.db.payment_repository import SqlPaymentRepository
from server.adapters.db.plan_repository import SqlPlanRepository
from server.adapters.db.receipt_repository import SqlReceiptRepository
from server.adapters.db.refund_repository import SqlRefundRepository
from server.adapters.db.subscription_repository import SqlSubscriptionRepository
from server.adapters.db.webhook_event_repository import SqlWebhookEventRepository


class SqlUnitOfWork:
    payments: SqlPaymentRepository
    refunds: SqlRefundRepository
    plans: SqlPlanRepository
    subscriptions: SqlSubscriptionRepository
    idempotency_keys: SqlIdempotencyKeyRepository
    payment_methods: SqlPaymentMethodRepository
    customers: SqlCustomerRepository
    webhook_events: SqlWebhookEventRepository
    analytics: SqlAnalyticsRepository
    receipts: SqlReceiptRepository

    def __init__(self, engine: AsyncEngine, *, read_only: bool = False) -> None:
        self._engine = engine
        self._read_only = read_only
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        self._connection = await self._engine.connect()
        if self._read_only:
            # No BEGIN/ROLLBACK round trips around a single read.
            await self._connection.execution_options(isolation_level="AUTOCOMMIT")
        else:
            await self._connection.begin()
        self.payments = SqlPaymentRepository(self._connection)
        self.refunds = SqlRefundRepository(self._connection)
        self.plans = SqlPlanRepository(self._connection)
        self.subscriptions = SqlSubscriptionRepository(self._connection)
        self.idempotency_keys = SqlIdempotencyKeyRepository(self._connection)
        self.payment_methods = SqlPaymentMethodRepository(self._connection)
        self.customers = SqlCustomerRepository(self._connection)
        self.webhook_events = SqlWebhookEventRepository(self._connection)
        self.analytics = SqlAnalyticsRepository(self._connection)
        self.receipts = SqlReceiptRepository(self._connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._connection is not None
        try:
            if self._connection.in_transaction():
                await self._connection.rollback()
        finally:
            await self._connection.close()
            self._connection = None

    async def commit(self) -> None:
        assert self._connection is not None
        if not self._read_only:
            await self._connection.commit()
