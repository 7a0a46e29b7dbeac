"""The outbox as the relay sees it: claim unpublished rows, mark them sent, prune them.

PostgreSQL (several relays): one short transaction per batch, of two statements.
The claim takes `... ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED`, so relays
never claim the same row. Per-payment order: a claimed row is published only if
no older unpublished row of its aggregate lies outside the batch (another relay
holds it, or it was skipped); such rows are left for a later pass. Both are one
statement (a CTE), and the mark is one `UPDATE ... WHERE id = ANY(array)`: one
plan for every batch, where a list of ids as separate parameters made a new
statement text (and plan) for each length, and cost PostgreSQL three times the
CPU per row (docs/benchmarks.md). An aggregate's rows get ids in sequence order
(its writes are serialised on the payment row), so "older" is "smaller id".

SQLite (one process, one relay): a plain select, then a separate short write to
mark, so the single connection is never held while the broker confirms.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.adapters.db.tables import outbox
from server.service.outbox import ClaimedBatch, OutboxRecord

_UNPUBLISHED = (
    sa.select(outbox)
    .where(outbox.c.published_at.is_(None))
    .order_by(outbox.c.id)
    .limit(sa.bindparam("b_limit"))
)
_claimed = _UNPUBLISHED.with_for_update(skip_locked=True).cte("claimed")
_aggregates = sa.select(_claimed.c.aggregate_type, _claimed.c.aggregate_id).distinct().subquery()
_older = outbox.alias("older")
# Per aggregate of the claim (ix on aggregate_type, aggregate_id, sequence finds its rows),
# its oldest unpublished row outside the claim: the claim's rows from there on must wait.
_blockers = (
    sa.select(
        _older.c.aggregate_type, _older.c.aggregate_id, sa.func.min(_older.c.id).label("first")
    )
    .join(
        _aggregates,
        sa.and_(
            _older.c.aggregate_type == _aggregates.c.aggregate_type,
            _older.c.aggregate_id == _aggregates.c.aggregate_id,
        ),
    )
    .where(_older.c.published_at.is_(None), _older.c.id.not_in(sa.select(_claimed.c.id)))
    .group_by(_older.c.aggregate_type, _older.c.aggregate_id)
    .cte("blockers")
)
_CLAIM_IN_ORDER = (
    sa.select(
        _claimed,
        sa.select(sa.func.count()).select_from(_claimed).scalar_subquery().label("claimed"),
    )
    .select_from(
        _claimed.outerjoin(
            _blockers,
            sa.and_(
                _blockers.c.aggregate_type == _claimed.c.aggregate_type,
                _blockers.c.aggregate_id == _claimed.c.aggregate_id,
            ),
        )
    )
    .where(sa.or_(_blockers.c.first.is_(None), _claimed.c.id < _blockers.c.first))
    .order_by(_claimed.c.id)
)
_NOW = sa.bindparam("b_now", type_=outbox.c.published_at.type)
_MARK = (
    outbox.update()
    .where(outbox.c.id.in_(sa.bindparam("b_ids", expanding=True)))
    .values(published_at=_NOW)
)
_MARK_ARRAY = (
    outbox.update()
    .where(outbox.c.id == sa.any_(sa.bindparam("b_ids", type_=postgresql.ARRAY(sa.BigInteger))))
    .values(published_at=_NOW)
)
_PRUNE = outbox.delete().where(
    outbox.c.id.in_(
        sa.select(outbox.c.id)
        .where(outbox.c.published_at < sa.bindparam("b_before", type_=outbox.c.published_at.type))
        .order_by(outbox.c.id)
        .limit(sa.bindparam("b_limit"))
        .scalar_subquery()
    )
)


def _record(row: sa.Row[Any]) -> OutboxRecord:
    return OutboxRecord(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        aggregate_type=row.aggregate_type,
        aggregate_id=row.aggregate_id,
        sequence=row.sequence,
        payload=row.payload,
        occurred_at=row.occurred_at,
        trace_headers={
            name: value
            for name, value in (("traceparent", row.traceparent), ("tracestate", row.tracestate))
            if value
        },
        correlation_id=row.correlation_id,
    )


@dataclass(slots=True)
class _Batch:
    engine: AsyncEngine
    connection: AsyncConnection | None
    records: Sequence[OutboxRecord] = field(default_factory=list)
    full: bool = False

    async def mark_published(self, ids: Sequence[int], now: datetime) -> None:
        parameters = {"b_ids": list(ids), "b_now": now}
        if self.connection is not None:
            if ids:
                await self.connection.execute(_MARK_ARRAY, parameters)
            await self.connection.commit()
        elif ids:
            async with self.engine.begin() as connection:
                await connection.execute(_MARK, parameters)


class SqlOutboxStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._locking = engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def claim(self, limit: int) -> AsyncIterator[ClaimedBatch]:
        if not self._locking:
            async with self._engine.connect() as connection:
                rows = (await connection.execute(_UNPUBLISHED, {"b_limit": limit})).all()
            yield _Batch(self._engine, None, [_record(row) for row in rows], len(rows) >= limit)
            return
        async with self._engine.connect() as connection:
            # Closing the connection rolls back an unmarked claim, releasing its rows.
            rows = (await connection.execute(_CLAIM_IN_ORDER, {"b_limit": limit})).all()
            full = bool(rows) and rows[0].claimed >= limit
            yield _Batch(self._engine, connection, [_record(row) for row in rows], full)

    @property
    def parallel_claims(self) -> bool:
        """On PostgreSQL (FOR UPDATE SKIP LOCKED); SQLite's claim is a plain read."""
        return self._locking

    async def prune_published(self, before: datetime, limit: int) -> int:
        async with self._engine.begin() as connection:
            result = await connection.execute(_PRUNE, {"b_before": before, "b_limit": limit})
        return int(result.rowcount)

    async def backlog(self) -> tuple[int, datetime | None]:
        """How many rows wait, and when the oldest of them happened."""
        statement = sa.select(sa.func.count(), sa.func.min(outbox.c.occurred_at)).where(
            outbox.c.published_at.is_(None)
        )
        async with self._engine.connect() as connection:
            count, oldest = (await connection.execute(statement)).one()
        return int(count), oldest

    async def unpublished_count(self) -> int:
        """The backlog, for operators and tests."""
        statement = sa.select(sa.func.count()).where(outbox.c.published_at.is_(None))
        async with self._engine.connect() as connection:
            return int((await connection.execute(statement)).scalar_one())
