"""The payment pipeline's writes on PostgreSQL, each transaction one prepared statement.

The unit of work spends a round trip on BEGIN and on COMMIT, one per write, and
SQLAlchemy's execution machinery on each; for the hottest path that is most of
the cost. Here each step is one statement (data-modifying CTEs chain the key,
the payment, its outbox rows, receipts and audit records), run outside an explicit
transaction, so PostgreSQL commits it on its own: one round trip, all or nothing.
asyncpg prepares each statement once per connection. Everything written is what
the repositories would write; the unit-of-work path stays for every other case.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from server.adapters.db.direct_pool import DirectPool, driver_error
from server.adapters.db.payment_repository import outbox_rows, payment_from, row_values
from server.adapters.db.receipt_repository import receipt_rows
from server.adapters.db.tables import payments
from server.domain.audit import AuditRecord
from server.domain.payment import Payment
from server.service.audit.context import Effect, current_call
from server.service.audit.records import effect_records
from server.service.payments.pages import (
    PaymentPage,
    PaymentQuery,
    is_users_newest_first,
    page_of,
)
from server.service.unit_of_work import Completion, KeyRecord, LiveOrderConflict

_LIVE_ORDER_INDEX = "uq_payments_live_user_id_order_id"
# The table's columns by name, in a fixed order: a statement's parameters follow it.
_COLUMNS = [column.name for column in payments.c]
# Every column but the key: an unchanged create_time is written as it was, so that each
# parameter of the statement is used.
_CHANGING = [column for column in _COLUMNS if column != "id"]

# $1..$22: the payment's columns, in _COLUMNS order.
_PAYMENT_PARAMETERS = ", ".join(f"${n}" for n in range(1, len(_COLUMNS) + 1))

# What follows the payment's own write, numbered from $23 on: its events, receipts and
# audit records as parallel arrays (one element per row), then the idempotency key.
_FOLLOWERS = """
events AS (
    INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, sequence, payload,
                        occurred_at, traceparent, tracestate, correlation_id)
    SELECT e.event_id, e.event_type, 'payment', written.id, e.sequence, e.payload,
           e.occurred_at, $28, $29, $30
    FROM written, unnest($23::text[], $24::text[], $25::bigint[], $26::bytea[],
                         $27::timestamptz[]) AS e(event_id, event_type, sequence, payload,
                                                  occurred_at)
),
receipts AS (
    INSERT INTO receipts (id, kind, payment_id, user_id, order_id, description, currency_code,
                          amount, issue_time)
    SELECT r.id, r.kind, written.id, $3, $2, $15, r.currency_code, r.amount, r.issue_time
    FROM written, unnest($31::text[], $32::text[], $33::text[], $34::bigint[],
                         $35::timestamptz[]) AS r(id, kind, currency_code, amount, issue_time)
    ON CONFLICT DO NOTHING
),
audit AS (
    INSERT INTO audit_events (id, occur_time, channel, action, subject, issuer, roles,
                              calling_service, resource_type, resource_id, request_id, outcome,
                              reason, trace_id, details)
    SELECT a.id, a.occur_time, a.channel, a.action, a.subject, a.issuer, a.roles,
           a.calling_service, 'payment', written.id, a.request_id, 'OK', a.reason, a.trace_id,
           a.details::json
    FROM written, unnest($36::text[], $37::timestamptz[], $38::text[], $39::text[],
                         $40::text[], $41::text[], $42::text[], $43::text[], $44::text[],
                         $45::text[], $46::text[], $47::text[]) AS a(id, occur_time, channel,
                         action, subject, issuer, roles, calling_service, request_id, reason,
                         trace_id, details)
)"""

_GET = f"SELECT {', '.join(_COLUMNS)} FROM payments WHERE id = $1"  # noqa: S608 - names

# One user's payments, newest first: the first page, and a page after a cursor.
_USERS_NEWEST = f"SELECT {', '.join(_COLUMNS)} FROM payments WHERE user_id = $1"  # noqa: S608
_ORDER = " ORDER BY create_time DESC, id DESC LIMIT $2"
_USERS_FIRST_PAGE = _USERS_NEWEST + _ORDER
_USERS_NEXT_PAGE = _USERS_NEWEST + " AND (create_time, id) < ($3, $4)" + _ORDER

# Claims the key and writes the attempt; nothing is written when the key is taken.
_START = f"""
WITH claim AS (
    INSERT INTO idempotency_keys (caller, request_id, method, fingerprint, resource_id,
                                  locked_until, create_time, expire_time)
    VALUES ($48, $49, $50, $51, $1, $52, $53, $54)
    ON CONFLICT DO NOTHING
    RETURNING 1
),
written AS (
    INSERT INTO payments ({", ".join(_COLUMNS)})
    SELECT {_PAYMENT_PARAMETERS} FROM claim
    RETURNING id
),
{_FOLLOWERS}
SELECT count(*) FROM written"""  # noqa: S608 - column names, never input

# Moves the payment if it is still at the expected sequence ($51), and with it, when
# $48 is not null, stores the response ($50) its request_id ($48, $49) replays.
_SAVE = f"""
WITH written AS (
    UPDATE payments SET {", ".join(f"{c} = ${_COLUMNS.index(c) + 1}" for c in _CHANGING)}
    WHERE id = $1 AND event_sequence = $51
    RETURNING id
),
{_FOLLOWERS},
completed AS (
    UPDATE idempotency_keys SET resource_id = $1, response = $50, locked_until = NULL
    FROM written
    WHERE $48::text IS NOT NULL AND caller = $48 AND request_id = $49
)
SELECT count(*) FROM written"""  # noqa: S608 - column names, never input


class PgPaymentStatements:
    """One-statement writes for the payment pipeline, and GetPayment's read."""

    def __init__(self, pool: DirectPool) -> None:
        self._pool = pool

    async def start(
        self, key: KeyRecord, now: datetime, expire_time: datetime, payment: Payment
    ) -> bool:
        """Claim `key` and insert the payment with its events; False: the key is taken."""
        key_values = (key.caller, key.request_id, key.method, key.fingerprint)
        extra = (*key_values, key.locked_until, now, expire_time)
        return await self._write(_START, payment, extra)

    async def save(
        self, payment: Payment, expected_sequence: int, completion: Completion | None = None
    ) -> bool:
        """Write the payment's changes and events; False: someone moved it meanwhile."""
        key: tuple[Any, ...] = (None, None, None)
        if completion is not None:
            key = (completion.caller, completion.request_id, completion.response)
        return await self._write(_SAVE, payment, (*key, expected_sequence))

    async def get(self, payment_id: str) -> Payment | None:
        """The payment, read on its own (no transaction): GetPayment's one round trip."""
        async with self._pool.connection() as connection:
            try:
                row = await connection.fetchrow(_GET, payment_id)
            except Exception as error:
                raise driver_error(error) from error
        return payment_from(row) if row is not None else None

    async def page(self, query: PaymentQuery) -> PaymentPage | None:
        """One user's page, newest first; None for any other query (the unit of work's)."""
        if not is_users_newest_first(query):
            return None
        arguments: list[Any] = [query.user_id, query.page_size + 1]
        statement = _USERS_FIRST_PAGE
        if query.after is not None:
            statement = _USERS_NEXT_PAGE
            arguments += [datetime.fromisoformat(str(query.after.value)), query.after.id]
        async with self._pool.connection() as connection:
            try:
                rows = await connection.fetch(statement, *arguments)
            except Exception as error:
                raise driver_error(error) from error
        return page_of([payment_from(row) for row in rows], query)

    async def _write(self, statement: str, payment: Payment, extra: Sequence[Any]) -> bool:
        arguments = _arguments(payment, extra)
        async with self._pool.connection() as connection:
            try:
                written = await connection.fetchval(statement, *arguments)
            except asyncpg.UniqueViolationError as error:
                if error.constraint_name == _LIVE_ORDER_INDEX:
                    raise LiveOrderConflict(payment.order_id) from None
                raise driver_error(error) from error
            except Exception as error:
                raise driver_error(error) from error
        return bool(written)


def _arguments(payment: Payment, extra: Sequence[Any]) -> list[Any]:
    """The statement's parameters: the payment's row, then its followers, then `extra`."""
    values = row_values(payment)
    arguments: list[Any] = [values[column] for column in _COLUMNS]
    events = payment.take_events()
    rows = outbox_rows(payment, events)
    first = rows[0] if rows else {}
    arguments += [
        [row["event_id"] for row in rows],
        [row["event_type"] for row in rows],
        [row["sequence"] for row in rows],
        [row["payload"] for row in rows],
        [row["occurred_at"] for row in rows],
        first.get("traceparent"),
        first.get("tracestate"),
        first.get("correlation_id"),
    ]
    receipts = receipt_rows(payment, events)
    arguments += [
        [row["id"] for row in receipts],
        [row["kind"] for row in receipts],
        [row["currency_code"] for row in receipts],
        [row["amount"] for row in receipts],
        [row["issue_time"] for row in receipts],
    ]
    arguments += _audit_columns(_audit_records(payment))
    arguments += list(extra)
    return arguments


def _audit_records(payment: Payment) -> list[AuditRecord]:
    """What the unit of work would append for this write: one record, if a call is audited."""
    call = current_call()
    if call is None:
        return []
    effect = Effect("payment", payment.id, payment.state.value)
    return effect_records(call, [effect], datetime.now(UTC))


def _audit_columns(records: Sequence[AuditRecord]) -> list[list[Any]]:
    return [
        [record.id for record in records],
        [record.occur_time for record in records],
        [record.channel for record in records],
        [record.action for record in records],
        [record.subject for record in records],
        [record.issuer for record in records],
        [",".join(record.roles) for record in records],
        [record.calling_service for record in records],
        [record.request_id for record in records],
        [record.reason[:64] for record in records],
        [record.trace_id for record in records],
        [json.dumps(record.details) for record in records],  # json[] has no codec: text
    ]
