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

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from server.adapters.db.audit_repository import audit_row
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

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_LIVE_ORDER_INDEX = "uq_payments_live_user_id_order_id"
# The table's columns by name, in a fixed order: a statement's parameters follow it.
_COLUMNS = [column.name for column in payments.c]
# Every column but the key: an unchanged create_time is written as it was, so that each
# parameter of the statement is used.
_CHANGING = [column for column in _COLUMNS if column != "id"]

# $1..$22: the payment's columns, in _COLUMNS order.
_PAYMENT_PARAMETERS = ", ".join(f"${n}" for n in range(1, len(_COLUMNS) + 1))

# What follows the payment's own write, from $23 on: its events (as JSON, with their
# payloads beside them as one bytea array), receipts and audit records, then the call's
# trace and correlation, then the idempotency key. A JSON text costs the driver a few
# microseconds to send, where a binary array costs it several per column (22 arrays were
# a tenth of the call); times go as microseconds since the epoch, since formatting them
# as text cost more than the rest of their rows.
_FOLLOWERS = """
events AS (
    INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, sequence, payload,
                        occurred_at, traceparent, tracestate, correlation_id)
    SELECT e.event_id, e.event_type, 'payment', written.id, e.sequence, e.payload,
           timestamptz 'epoch' + e.occurred_at * interval '1 microsecond', $27, $28, $29
    FROM written, ROWS FROM (
        json_to_recordset($23::json) AS (event_id text, event_type text, sequence bigint,
                                         occurred_at bigint),
        unnest($24::bytea[])
    ) AS e(event_id, event_type, sequence, occurred_at, payload)
),
receipts AS (
    INSERT INTO receipts (id, kind, payment_id, user_id, order_id, description, currency_code,
                          amount, issue_time)
    SELECT r.id, r.kind, written.id, $3, $2, $15, r.currency_code, r.amount,
           timestamptz 'epoch' + r.issue_time * interval '1 microsecond'
    FROM written, json_to_recordset($25::json) AS r(id text, kind text, currency_code text,
                                                    amount bigint, issue_time bigint)
    ON CONFLICT DO NOTHING
),
audit AS (
    INSERT INTO audit_events (id, occur_time, channel, action, subject, issuer, roles,
                              calling_service, resource_type, resource_id, request_id, outcome,
                              reason, trace_id, details)
    SELECT a.id, timestamptz 'epoch' + a.occur_time * interval '1 microsecond', a.channel,
           a.action, a.subject, a.issuer, a.roles, a.calling_service, 'payment', written.id,
           a.request_id, 'OK', a.reason, a.trace_id, a.details
    FROM written, json_to_recordset($26::json) AS a(id text, occur_time bigint, channel text,
                                                    action text, subject text, issuer text,
                                                    roles text, calling_service text,
                                                    request_id text, reason text,
                                                    trace_id text, details json)
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
    VALUES ($30, $31, $32, $33, $1, $34, $35, $36)
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

# Moves the payment if it is still at the expected sequence ($33), and with it, when
# $30 is not null, stores the response ($32) its request_id ($30, $31) replays.
_SAVE = f"""
WITH written AS (
    UPDATE payments SET {", ".join(f"{c} = ${_COLUMNS.index(c) + 1}" for c in _CHANGING)}
    WHERE id = $1 AND event_sequence = $33
    RETURNING id
),
{_FOLLOWERS},
completed AS (
    UPDATE idempotency_keys SET resource_id = $1, response = $32, locked_until = NULL
    FROM written
    WHERE $30::text IS NOT NULL AND caller = $30 AND request_id = $31
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
    event_rows = [
        {
            "event_id": row["event_id"],
            "event_type": row["event_type"],
            "sequence": row["sequence"],
            "occurred_at": _microseconds(row["occurred_at"]),
        }
        for row in rows
    ]
    receipts = [
        {
            "id": row["id"],
            "kind": row["kind"],
            "currency_code": row["currency_code"],
            "amount": row["amount"],
            "issue_time": _microseconds(row["issue_time"]),
        }
        for row in receipt_rows(payment, events)
    ]
    audit = [_audit_row(record) for record in _audit_records(payment)]
    arguments += [
        event_rows,  # the pool's json codec sends each as one JSON text
        [row["payload"] for row in rows],
        receipts,
        audit,
        first.get("traceparent"),
        first.get("tracestate"),
        first.get("correlation_id"),
    ]
    arguments += list(extra)
    return arguments


def _microseconds(moment: datetime) -> int:
    """Microseconds since the epoch: what the statements turn back into a timestamptz."""
    return (moment - _EPOCH) // _MICROSECOND


def _audit_records(payment: Payment) -> list[AuditRecord]:
    """What the unit of work would append for this write: one record, if a call is audited."""
    call = current_call()
    if call is None:
        return []
    effect = Effect("payment", payment.id, payment.state.value)
    return effect_records(call, [effect], datetime.now(UTC))


def _audit_row(record: AuditRecord) -> dict[str, Any]:
    # The statement takes the columns it needs from the row and ignores the rest.
    return {**audit_row(record), "occur_time": _microseconds(record.occur_time)}
