"""Payment webhooks on PostgreSQL: one transaction, one statement to read and one to write.

Through the unit of work a payment event cost eight round trips (BEGIN, the event's
row, the payment, its update, its outbox rows, its receipt, the event's row, COMMIT),
each through SQLAlchemy's execution: most of 3 ms of CPU per webhook
(docs/benchmarks.md, "Webhook sidecar benchmark"). Here one statement reads and
locks the stored event and the payment, and one writes the payment, its outbox
rows, its receipts and the event's row (data-modifying CTEs); asyncpg prepares each
once per connection. The locks are the unit of work's, so deliveries and writers
of the same payment wait for each other exactly as before; what is written is what
the repositories write.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import asyncpg

from server.adapters.db.direct_pool import DirectPool, driver_error
from server.adapters.db.payment_repository import outbox_rows, payment_from, row_values
from server.adapters.db.receipt_repository import receipt_rows
from server.adapters.db.tables import payments, webhook_events
from server.adapters.db.webhook_event_repository import from_row as event_from_row
from server.adapters.db.webhook_event_repository import row_values as event_row_values
from server.domain.payment import Payment
from server.domain.webhook_events import WebhookEvent
from server.service.unit_of_work import DuplicateWebhookEvent, StaleWrite

_AWAY = "the database is not reachable right now; retry"
# As many connections as the engine's pool keeps (create_engine's pool_size).
POOL_SIZE = 20
_EVENT_ID_UNIQUE = "uq_webhook_events_event_id"
_PAYMENT = [column.name for column in payments.c]
_EVENT = [column.name for column in webhook_events.c if column.name != "id"]
# What a failed event's second try changes in its row, found by its id.
_EVENT_UPDATED = ("event_id", "status", "error", "attempts", "payment_id", "applied_time")
_STORED_PREFIX = "stored_"

_STORED = ", ".join(f"stored.{name} AS {_STORED_PREFIX}{name}" for name in _EVENT)
# $1 event id, $2 our payment id, $3 provider, $4 the provider's payment id.
_LOAD = f"""
WITH stored AS (
    SELECT {", ".join(_EVENT)} FROM webhook_events WHERE event_id = $1 FOR UPDATE
),
named AS (
    SELECT * FROM payments
    WHERE id = $2 AND provider = $3 AND provider_payment_id IN ('', $4)
    FOR UPDATE
)
SELECT {_STORED}, named.*
FROM (SELECT 1) AS one LEFT JOIN stored ON true LEFT JOIN named ON true"""  # noqa: S608
# The provider's payment id without (or with someone else's) metadata: the newest with it.
_LOAD_BY_PROVIDER_ID = """
SELECT * FROM payments WHERE provider = $1 AND provider_payment_id = $2
ORDER BY create_time DESC, id DESC LIMIT 1 FOR UPDATE"""


def _numbered(names: Sequence[str], first: int) -> dict[str, str]:
    return {name: f"${first + n}" for n, name in enumerate(names)}


# The payment's write: $1.. its columns (an unchanged create_time written as it was, so
# that the statement uses every parameter), then the expected sequence, its events and
# receipts as parallel arrays (one element per row), then the event's row.
_P = _numbered(_PAYMENT, 1)
_FOLLOWERS = [
    "expected",
    "event_ids",
    "event_types",
    "sequences",
    "payloads",
    "occurred_at",
    "traceparent",
    "tracestate",
    "correlation_id",
    "receipt_ids",
    "kinds",
    "currency_codes",
    "amounts",
    "issue_times",
]
_F = _numbered(_FOLLOWERS, len(_PAYMENT) + 1)
_WRITTEN = f"""
WITH written AS (
    UPDATE payments
    SET {", ".join(f"{c} = {_P[c]}" for c in _PAYMENT if c != "id")}
    WHERE id = {_P["id"]} AND event_sequence = {_F["expected"]}
    RETURNING id
),
events AS (
    INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, sequence, payload,
                        occurred_at, traceparent, tracestate, correlation_id)
    SELECT e.event_id, e.event_type, 'payment', written.id, e.sequence, e.payload,
           e.occurred_at, {_F["traceparent"]}::text, {_F["tracestate"]}::text,
           {_F["correlation_id"]}::text
    FROM written, unnest({_F["event_ids"]}::text[], {_F["event_types"]}::text[],
                         {_F["sequences"]}::bigint[], {_F["payloads"]}::bytea[],
                         {_F["occurred_at"]}::timestamptz[])
                  AS e(event_id, event_type, sequence, payload, occurred_at)
),
receipts AS (
    INSERT INTO receipts (id, kind, payment_id, user_id, order_id, description,
                          currency_code, amount, issue_time)
    SELECT r.id, r.kind, written.id, {_P["user_id"]}, {_P["order_id"]}, {_P["description"]},
           r.currency_code, r.amount, r.issue_time
    FROM written, unnest({_F["receipt_ids"]}::text[], {_F["kinds"]}::text[],
                         {_F["currency_codes"]}::text[], {_F["amounts"]}::bigint[],
                         {_F["issue_times"]}::timestamptz[])
                  AS r(id, kind, currency_code, amount, issue_time)
    ON CONFLICT DO NOTHING
)"""  # noqa: S608 - column names, never input


def _event_insert(first: int) -> str:
    columns = _numbered(_EVENT, first)
    return (
        f"INSERT INTO webhook_events ({', '.join(_EVENT)}) "  # noqa: S608 - column names
        f"VALUES ({', '.join(columns.values())})"
    )


def _event_update(first: int) -> str:
    columns = _numbered(_EVENT_UPDATED, first)
    assignments = ", ".join(f"{name} = {columns[name]}" for name in _EVENT_UPDATED[1:])
    return f"UPDATE webhook_events SET {assignments} WHERE event_id = {columns['event_id']}"  # noqa: S608


_EVENT_FIRST = len(_PAYMENT) + len(_FOLLOWERS) + 1
# (payment changed, event stored before): the statement.
_FINISH = {
    (False, False): _event_insert(1),
    (False, True): _event_update(1),
    (True, False): f"{_WRITTEN},\nstored AS ({_event_insert(_EVENT_FIRST)})\n"
    "SELECT count(*) FROM written",
    (True, True): f"{_WRITTEN},\nstored AS ({_event_update(_EVENT_FIRST)})\n"
    "SELECT count(*) FROM written",
}


def _payment_arguments(payment: Payment, expected_sequence: int) -> list[Any]:
    values = row_values(payment)
    events = payment.take_events()
    outbox = outbox_rows(payment, events)
    receipts = receipt_rows(payment, events)
    return [
        *(values[name] for name in _PAYMENT),
        expected_sequence,
        [row["event_id"] for row in outbox],
        [row["event_type"] for row in outbox],
        [row["sequence"] for row in outbox],
        [row["payload"] for row in outbox],
        [row["occurred_at"] for row in outbox],
        outbox[0]["traceparent"] if outbox else None,
        outbox[0]["tracestate"] if outbox else None,
        outbox[0]["correlation_id"] if outbox else None,
        [row["id"] for row in receipts],
        [row["kind"] for row in receipts],
        [row["currency_code"] for row in receipts],
        [row["amount"] for row in receipts],
        [row["issue_time"] for row in receipts],
    ]


def _translated(error: Exception) -> Exception:
    """The domain error a driver error stands for (the error itself if none)."""
    if isinstance(error, asyncpg.UniqueViolationError) and (
        error.constraint_name == _EVENT_ID_UNIQUE
    ):
        return DuplicateWebhookEvent(_EVENT_ID_UNIQUE)
    return driver_error(error)


class _Transaction:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self.committed = False

    async def load(
        self, event_id: str, provider: str, payment_id: str, provider_payment_id: str
    ) -> tuple[WebhookEvent | None, Payment | None]:
        try:
            row = await self._connection.fetchrow(
                _LOAD, event_id, payment_id, provider, provider_payment_id
            )
            found = dict(row) if row is not None else {}
            if found.get("id") is None and provider_payment_id:
                by_provider = await self._connection.fetchrow(
                    _LOAD_BY_PROVIDER_ID, provider, provider_payment_id
                )
                found.update(by_provider or {})
        except Exception as error:
            raise _translated(error) from error
        stored = {
            name.removeprefix(_STORED_PREFIX): value
            for name, value in found.items()
            if name.startswith(_STORED_PREFIX)
        }
        event = event_from_row(SimpleNamespace(**stored)) if stored["event_id"] else None
        payment = None
        if found.get("id") is not None:
            payment = payment_from(found)
        return event, payment

    async def finish(
        self, event: WebhookEvent, *, stored: bool, payment: Payment | None, expected_sequence: int
    ) -> None:
        values = event_row_values(event)
        arguments = [values[name] for name in (_EVENT_UPDATED if stored else _EVENT)]
        if payment is not None:
            arguments = _payment_arguments(payment, expected_sequence) + arguments
        statement = _FINISH[payment is not None, stored]
        try:
            written = await self._connection.fetchval(statement, *arguments)
            if payment is not None and written != 1:
                raise StaleWrite(payment.id)
            await self._connection.execute("COMMIT")
        except StaleWrite:
            raise
        except Exception as error:
            raise _translated(error) from error
        self.committed = True


class PgPaymentWebhooks:
    """Payment webhooks in two statements, on the engine's direct pool."""

    def __init__(self, pool: DirectPool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Transaction]:
        async with self._pool.connection() as raw:
            try:
                await raw.execute("BEGIN")
            except Exception as error:
                raise _translated(error) from error
            transaction = _Transaction(raw)
            try:
                yield transaction
            finally:
                if not transaction.committed:
                    with contextlib.suppress(Exception):  # a broken connection ends below
                        await raw.execute("ROLLBACK")
