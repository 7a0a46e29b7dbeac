"""One database transaction with the repositories bound to it."""

from __future__ import annotations

import contextlib
from contextvars import Token
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.adapters.db.analytics_repository import SqlAnalyticsRepository
from server.adapters.db.audit_repository import SqlAuditRepository, append_audit_records
from server.adapters.db.customer_repository import SqlCustomerRepository
from server.adapters.db.idempotency_key_repository import SqlIdempotencyKeyRepository
from server.adapters.db.outages import refused_value, translate
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
        try:
            await self._open()
        except Exception as error:
            await self._discard()
            _raise_translated(error, connecting=True)
            raise
        connection = self._connection
        assert connection is not None
        self.payments = SqlPaymentRepository(connection)
        self.refunds = SqlRefundRepository(connection)
        self.plans = SqlPlanRepository(connection)
        self.subscriptions = SqlSubscriptionRepository(connection)
        self.idempotency_keys = SqlIdempotencyKeyRepository(connection)
        self.payment_methods = SqlPaymentMethodRepository(connection)
        self.customers = SqlCustomerRepository(connection)
        self.webhook_events = SqlWebhookEventRepository(connection)
        self.analytics = SqlAnalyticsRepository(connection)
        self.receipts = SqlReceiptRepository(connection)
        self.audit = SqlAuditRepository(connection)
        if not self._read_only:
            self._effects = open_effects()
        return self

    async def _open(self) -> None:
        self._connection = await self._engine.connect()
        if self._read_only:
            # No BEGIN/ROLLBACK round trips around a single read.
            await self._connection.execution_options(isolation_level="AUTOCOMMIT")
        else:
            await self._connection.begin()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._effects is not None:
            close_effects(self._effects)
            self._effects = None
        if exc is None:
            await self._end()
            return
        await self._discard()
        if isinstance(exc, Exception):
            _raise_translated(exc)

    async def _end(self) -> None:
        connection, self._connection = self._connection, None
        assert connection is not None
        try:
            if connection.in_transaction():
                await connection.rollback()
            await connection.close()
        except Exception as error:
            _raise_translated(error)
            raise

    async def _discard(self) -> None:
        """Close the connection after a failure; a dead one may fail to close, which is moot."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if connection.in_transaction():
                await connection.rollback()
        except Exception:  # noqa: S110 - the failure that brought us here is the one to report
            pass
        finally:
            with contextlib.suppress(Exception):
                await connection.close()

    async def commit(self) -> None:
        """Commit; a failure reaches the caller translated, by way of __aexit__."""
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


def _raise_translated(error: Exception, *, connecting: bool = False) -> None:
    translated = translate(error, connecting=connecting) or refused_value(error)
    if translated is not None:
        raise translated from error
