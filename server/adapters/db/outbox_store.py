"""The outbox as the relay sees it: claim unpublished rows, mark them sent, prune them.

PostgreSQL (several relays): one short transaction per batch. The batch is
claimed with `SELECT ... ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED`, so relays
never claim the same row. Per-payment order: a claimed row is published only if
no older unpublished row of its aggregate lies outside the batch (another relay
holds it, or it was skipped); such rows are left for a later pass. An
aggregate's rows get ids in sequence order (its writes are serialised on the
payment row), so "older" is "smaller id".

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
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.adapters.db.tables import outbox
from server.service.outbox import ClaimedBatch, OutboxRecord

_UNPUBLISHED = (
    sa.select(outbox)
    .where(outbox.c.published_at.is_(None))
    .order_by(outbox.c.id)
    .limit(sa.bindparam("b_limit"))
)
_CLAIM = _UNPUBLISHED.with_for_update(skip_locked=True)
_MARK = (
    outbox.update()
    .where(outbox.c.id.in_(sa.bindparam("b_ids", expanding=True)))
    .values(published_at=sa.bindparam("b_now", type_=outbox.c.published_at.type))
)
# Oldest unpublished row of each aggregate that is not in the batch.
_BLOCKERS = (
    sa.select(outbox.c.aggregate_type, outbox.c.aggregate_id, sa.func.min(outbox.c.id))
    .where(
        outbox.c.published_at.is_(None),
        outbox.c.aggregate_id.in_(sa.bindparam("b_aggregates", expanding=True)),
        outbox.c.id.not_in(sa.bindparam("b_ids", expanding=True)),
    )
    .group_by(outbox.c.aggregate_type, outbox.c.aggregate_id)
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


async def _in_order(connection: AsyncConnection, records: list[OutboxRecord]) -> list[OutboxRecord]:
    """The records no older unpublished row outside the batch must precede."""
    if not records:
        return records
    parameters = {
        "b_aggregates": sorted({r.aggregate_id for r in records}),
        "b_ids": [r.id for r in records],
    }
    blockers = {
        (kind, aggregate): first
        for kind, aggregate, first in (await connection.execute(_BLOCKERS, parameters)).all()
    }
    return [r for r in records if r.id < blockers.get((r.aggregate_type, r.aggregate_id), r.id + 1)]


@dataclass(slots=True)
class _Batch:
    engine: AsyncEngine
    connection: AsyncConnection | None
    records: Sequence[OutboxRecord] = field(default_factory=list)

    async def mark_published(self, ids: Sequence[int], now: datetime) -> None:
        parameters = {"b_ids": list(ids), "b_now": now}
        if self.connection is not None:
            if ids:
                await self.connection.execute(_MARK, parameters)
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
            yield _Batch(self._engine, None, [_record(row) for row in rows])
            return
        async with self._engine.connect() as connection:
            # Closing the connection rolls back an unmarked claim, releasing its rows.
            rows = (await connection.execute(_CLAIM, {"b_limit": limit})).all()
            records = await _in_order(connection, [_record(row) for row in rows])
            yield _Batch(self._engine, connection, records)

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
