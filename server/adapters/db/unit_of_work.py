"""One database transaction with the repositories bound to it."""

from __future__ import annotations

from contextvars import Token
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.adapters.db.analytics_repository import SqlAnalyticsRepository
from server.adapters.db.audit_repository import SqlAuditRepository, append_audit_records
from server.adapters.db.customer_repository import SqlCustomerRepository
from server.adapters.db.idempotency_key_repository import SqlIdempotencyKeyRepository
from server.adapters.db.payment_method_repository import SqlPaymentMethodRepository
from server.adapters.db.payment_repository import SqlPaymentRepository
from server.adapters.db.plan_repository import SqlPlanRepository
from server.adapters.db.receipt_repository import SqlReceiptRepository
from server.adapters.db.refund_repository import SqlRefundRepository
from server.adapters.db.subscription_repository import SqlSubscriptionRepository
from server.adapters.db.webhook_event_repository import SqlWebhookEventRepository
from server.service.audit.context import close_effects, current_call, open_effects, take_effects
from server.service.audit.records import effect_records


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
    audit: SqlAuditRepository

    def __init__(self, engine: AsyncEngine, *, read_only: bool = False) -> None:
        self._engine = engine
        self._read_only = read_only
        self._connection: AsyncConnection | None = None
        self._effects: Token[Any] | None = None

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
        self.audit = SqlAuditRepository(self._connection)
        if not self._read_only:
            self._effects = open_effects()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._connection is not None
        if self._effects is not None:
            close_effects(self._effects)
            self._effects = None
        try:
            if self._connection.in_transaction():
                await self._connection.rollback()
        finally:
            await self._connection.close()
            self._connection = None

    async def commit(self) -> None:
        assert self._connection is not None
        if not self._read_only:
            await self._audit_effects()
            await self._connection.commit()

    async def _audit_effects(self) -> None:
        """The audit records of what this transaction wrote, committed with it."""
        assert self._connection is not None
        call, effects = current_call(), take_effects()
        if call is not None and effects:
            records = effect_records(call, effects, datetime.now(UTC))
            await append_audit_records(self._connection, records)
