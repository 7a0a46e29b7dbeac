"""Payments in SQL; every write also puts the payment's pending events in the outbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.codec import payment_event_envelopes
from server.adapters.db.by_id import ById
from server.adapters.db.outbox_rows import append_rows, event_rows
from server.adapters.db.receipt_repository import record_receipts
from server.adapters.db.tables import payments
from server.domain.events import PaymentEvent
from server.domain.money import Money
from server.domain.payment import CaptureMethod, Payment
from server.domain.payment_states import DEAD_STATES, PaymentState
from server.domain.reconciliation import UNSETTLED_STATES
from server.observability.correlation import current_correlation_id
from server.observability.tracing import current_trace_headers
from server.service.audit.context import note_effect
from server.service.payments.pages import PaymentPage, PaymentQuery, SortKey, page_of
from server.service.unit_of_work import LiveOrderConflict, StaleWrite

_TIME_OPS = {
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
}


# Built once: a statement made per call costs its cache key every time.
_INSERT = payments.insert()
# ix_payments_provider_payment_id; the newest first, should a provider id ever repeat.
_SELECT_BY_PROVIDER_ID = (
    payments.select()
    .where(
        payments.c.provider == sa.bindparam("b_provider"),
        payments.c.provider_payment_id == sa.bindparam("b_provider_payment_id"),
    )
    .order_by(payments.c.create_time.desc(), payments.c.id.desc())
    .limit(1)
)
_SELECT_BY_PROVIDER_ID_FOR_UPDATE = _SELECT_BY_PROVIDER_ID.with_for_update()
_SAVE = (
    payments.update()
    .where(
        payments.c.id == sa.bindparam("b_id"),
        payments.c.event_sequence == sa.bindparam("b_expected"),
    )
    .values(
        {
            column.name: sa.bindparam(column.name, type_=column.type)
            for column in payments.c
            if column.name not in ("id", "create_time")
        }
    )
)


def row_values(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.id,
        "order_id": payment.order_id,
        "user_id": payment.user_id,
        "currency_code": payment.amount.currency_code,
        "amount": payment.amount.minor_units,
        "state": payment.state.value,
        "provider": payment.provider,
        "provider_payment_id": payment.provider_payment_id,
        "payment_method_id": payment.payment_method_id,
        "capture_method": payment.capture_method.value,
        "amount_captured": payment.amount_captured,
        "amount_refunded": payment.amount_refunded,
        "failure_code": payment.failure_code,
        "failure_message": payment.failure_message,
        "description": payment.description,
        "metadata": payment.metadata,
        "event_sequence": payment.event_sequence,
        "reconcile_attempts": payment.reconcile_attempts,
        "next_reconcile_time": payment.next_reconcile_time,
        "capture_time": payment.capture_time,
        "create_time": payment.create_time,
        "update_time": payment.update_time,
    }


# A dict lookup, not the enum's call: a page of payments makes two per row.
_STATES = {state.value: state for state in PaymentState}
_CAPTURE_METHODS = {method.value: method for method in CaptureMethod}


def payment_from(row: Mapping[Any, Any]) -> Payment:
    """The payment in a row, from SQLAlchemy (its `_mapping`) or asyncpg."""
    return Payment(
        id=row["id"],
        order_id=row["order_id"],
        user_id=row["user_id"],
        amount=Money(row["currency_code"], row["amount"]),
        state=_STATES[row["state"]],
        provider=row["provider"],
        capture_method=_CAPTURE_METHODS[row["capture_method"]],
        create_time=row["create_time"],
        update_time=row["update_time"],
        provider_payment_id=row["provider_payment_id"],
        payment_method_id=row["payment_method_id"],
        amount_captured=row["amount_captured"],
        amount_refunded=row["amount_refunded"],
        failure_code=row["failure_code"],
        failure_message=row["failure_message"],
        description=row["description"],
        metadata=dict(row["metadata"]),
        event_sequence=row["event_sequence"],
        reconcile_attempts=row["reconcile_attempts"],
        next_reconcile_time=row["next_reconcile_time"],
        capture_time=row["capture_time"],
    )


def _from_row(row: sa.Row[Any]) -> Payment:
    return payment_from(row._mapping)


_BY_ID = ById(payments, _from_row)


class SqlPaymentRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, payment: Payment) -> None:
        # No savepoint: on a conflict the whole transaction is given up, and the
        # service looks up the live payment in a fresh one.
        try:
            await self._connection.execute(_INSERT, row_values(payment))
        except IntegrityError as error:
            if "order_id" in str(error.orig):
                raise LiveOrderConflict(payment.order_id) from None
            raise
        note_effect("payment", payment.id, payment.state.value)
        await self._write_events(payment)

    async def get(
        self, payment_id: str, *, for_update: bool = False, skip_locked: bool = False
    ) -> Payment | None:
        return await _BY_ID.get(self._connection, payment_id, for_update, skip_locked)

    async def save(self, payment: Payment, expected_sequence: int) -> None:
        values = row_values(payment)
        values["b_id"] = values.pop("id")
        values["b_expected"] = expected_sequence
        del values["create_time"]
        result = await self._connection.execute(_SAVE, values)
        if result.rowcount != 1:
            raise StaleWrite(payment.id)
        note_effect("payment", payment.id, payment.state.value)
        await self._write_events(payment)

    async def due_for_reconciliation(self, now: datetime | None, limit: int) -> list[str]:
        """Ids of waiting payments whose next check is due (all of them when `now` is None)."""
        statement = (
            sa.select(payments.c.id)
            .where(payments.c.next_reconcile_time.is_not(None))
            .order_by(payments.c.next_reconcile_time)
            .limit(limit)
        )
        if now is not None:
            statement = statement.where(payments.c.next_reconcile_time <= now)
        return list((await self._connection.execute(statement)).scalars())

    async def waiting(self) -> list[tuple[str, int, datetime]]:
        # ix_payments_state_create_time answers this from the index alone.
        statement = (
            sa.select(payments.c.state, sa.func.count(), sa.func.min(payments.c.create_time))
            .where(payments.c.state.in_([s.value for s in UNSETTLED_STATES]))
            .group_by(payments.c.state)
        )
        rows = (await self._connection.execute(statement)).all()
        return [(str(state), int(count), oldest) for state, count, oldest in rows]

    async def find_live_by_order(self, user_id: str, order_id: str) -> Payment | None:
        statement = payments.select().where(
            payments.c.user_id == user_id,
            payments.c.order_id == order_id,
            payments.c.state.not_in([s.value for s in DEAD_STATES]),
        )
        row = (await self._connection.execute(statement)).first()
        return _from_row(row) if row else None

    async def find_by_provider_id(
        self, provider: str, provider_payment_id: str, *, for_update: bool = False
    ) -> Payment | None:
        if not provider_payment_id:
            return None
        statement = _SELECT_BY_PROVIDER_ID_FOR_UPDATE if for_update else _SELECT_BY_PROVIDER_ID
        parameters = {"b_provider": provider, "b_provider_payment_id": provider_payment_id}
        row = (await self._connection.execute(statement, parameters)).first()
        return _from_row(row) if row else None

    async def list(self, query: PaymentQuery) -> PaymentPage:
        sort_column = payments.c.amount if query.sort is SortKey.AMOUNT else payments.c.create_time
        statement = payments.select()
        if query.user_id is not None:
            statement = statement.where(payments.c.user_id == query.user_id)
        if query.order_id is not None:
            statement = statement.where(payments.c.order_id == query.order_id)
        if query.states is not None:
            statement = statement.where(payments.c.state.in_([s.value for s in query.states]))
        if query.excluded_states:
            statement = statement.where(
                payments.c.state.not_in([s.value for s in query.excluded_states])
            )
        for bound in query.create_time:
            statement = statement.where(_TIME_OPS[bound.op](payments.c.create_time, bound.moment))
        if query.after is not None:
            value: Any = query.after.value
            if query.sort is SortKey.CREATE_TIME:
                value = datetime.fromisoformat(str(value))
            key = sa.tuple_(sort_column, payments.c.id)
            after = sa.tuple_(sa.literal(value, sort_column.type), sa.literal(query.after.id))
            statement = statement.where(key < after if query.descending else key > after)
        order = (
            (sort_column.desc(), payments.c.id.desc())
            if query.descending
            else (
                sort_column.asc(),
                payments.c.id.asc(),
            )
        )
        statement = statement.order_by(*order).limit(query.page_size + 1)
        rows = (await self._connection.execute(statement)).all()
        return page_of([_from_row(row) for row in rows], query)

    async def _write_events(self, payment: Payment) -> None:
        events = payment.take_events()
        if not events:
            return
        await append_rows(self._connection, outbox_rows(payment, events))
        await record_receipts(self._connection, payment, events)


def outbox_rows(payment: Payment, events: Sequence[PaymentEvent]) -> list[dict[str, Any]]:
    """The outbox rows of the payment's events, with the trace and correlation of the call."""
    trace_headers = current_trace_headers()
    context = {
        "traceparent": trace_headers.get("traceparent"),
        "tracestate": trace_headers.get("tracestate"),
        "correlation_id": current_correlation_id(),
    }
    return event_rows(payment.id, events, payment_event_envelopes(events, payment), context)
