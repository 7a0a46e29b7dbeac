"""The aggregates behind payment analytics, summed in the database where it can.

Stats read ix_payments_create_time_covering (an index-only scan of the range on
PostgreSQL). A revenue series reads the hour sums (payment_revenue_hours plus the
changes not rolled up yet) for every whole UTC hour that lies inside one bucket, and
the payments themselves only for the rest (partial hours at the ends, hours a bucket
boundary cuts in zones half an hour off UTC). Buckets are the boundaries the domain
computed in the time zone, so both databases bucket exactly alike: PostgreSQL with
width_bucket, SQLite in Python.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.db.tables import payment_revenue_changes, payment_revenue_hours, payments
from server.domain.analytics import (
    MONEY_TAKEN_STATES,
    RevenueCell,
    StatsCell,
    split_by_hours,
)
from server.domain.payment_states import PaymentState

# More row pieces than this (say hourly buckets half an hour off UTC): read every row.
MAX_ROW_PIECES = 400

_TIMES = postgresql.ARRAY(sa.DateTime(timezone=True))
_TOOK_MONEY = payments.c.state.in_(sorted(s.value for s in MONEY_TAKEN_STATES))

_STATS = (
    sa.select(
        payments.c.currency_code,
        payments.c.provider,
        payments.c.state,
        sa.func.count(),
        sa.func.sum(payments.c.amount_captured),
        sa.func.sum(payments.c.amount_refunded),
    )
    .where(
        payments.c.create_time >= sa.bindparam("b_start"),
        payments.c.create_time < sa.bindparam("b_end"),
    )
    .group_by(payments.c.currency_code, payments.c.provider, payments.c.state)
)


def _in(
    column: sa.ColumnElement[datetime], pieces: Sequence[tuple[datetime, datetime]]
) -> sa.ColumnElement[bool]:
    return sa.or_(*(sa.and_(column >= start, column < end) for start, end in pieces))


class SqlAnalyticsRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def stats_cells(
        self, start: datetime, end: datetime, currency_code: str | None
    ) -> list[StatsCell]:
        statement = _STATS
        if currency_code is not None:
            statement = statement.where(payments.c.currency_code == currency_code)
        rows = await self._connection.execute(statement, {"b_start": start, "b_end": end})
        # PostgreSQL sums bigints as numeric (Decimal): back to int, exactly.
        return [
            StatsCell(code, provider, PaymentState(state), count, int(captured), int(refunded))
            for code, provider, state, count, captured, refunded in rows
        ]

    async def revenue_cells(
        self, boundaries: list[datetime], currency_code: str | None
    ) -> list[RevenueCell]:
        split = split_by_hours(boundaries)
        if len(split.pieces) > MAX_ROW_PIECES:
            whole = [(boundaries[0], boundaries[-1])]
            return await self._sum(_payment_rows(whole, currency_code), boundaries)
        cells = []
        if split.pieces:
            cells += await self._sum(_payment_rows(split.pieces, currency_code), boundaries)
        if split.first_hour < split.end_hour:
            hours = sa.union_all(
                *(
                    _hour_rows(table, split.first_hour, split.end_hour, split.split, currency_code)
                    for table in (payment_revenue_hours, payment_revenue_changes)
                )
            )
            cells += await self._sum(hours, boundaries)
        # An hour whose payments all left the states that took money sums to nothing.
        return [cell for cell in cells if cell.payment_count]

    async def roll_up(self, limit: int) -> int:
        """Sum up to `limit` of the oldest revenue changes into their hours; how many."""
        if self._connection.dialect.name == "postgresql":
            moved = await self._connection.scalar(_ROLL_UP_POSTGRES, {"b_limit": limit})
            return int(moved or 0)
        last = await self._connection.scalar(_LAST_OF_BATCH, {"b_limit": limit})
        if last is None:
            return 0
        await self._connection.execute(_ROLL_UP_SQLITE, {"b_last": last})
        deleted = await self._connection.execute(_FORGET_SQLITE, {"b_last": last})
        return deleted.rowcount

    async def _sum(
        self, source: sa.Select[Any] | sa.CompoundSelect[Any], boundaries: list[datetime]
    ) -> list[RevenueCell]:
        """Sum `source` (time, currency, count, captured, refunded) per bucket and currency."""
        starts = boundaries[:-1]
        if self._connection.dialect.name == "postgresql":
            columns = list(source.subquery().c)
            time, code, count, captured, refunded = (columns[i] for i in range(5))
            # width_bucket(t, starts) is i when starts[i] <= t < starts[i + 1] (1-based).
            bucket = (
                sa.func.width_bucket(time, sa.bindparam("b_starts", starts, type_=_TIMES)) - 1
            ).label("bucket")
            grouped = sa.select(
                bucket, code, *(_sum_bigint(column) for column in (count, captured, refunded))
            ).group_by(bucket, code)
            return [RevenueCell(*row) for row in await self._connection.execute(grouped)]
        sums: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        for time_, code_, n, cap, ref in await self._connection.execute(source):
            cell = sums[(bisect_right(starts, time_) - 1, code_)]
            cell[0] += n
            cell[1] += cap
            cell[2] += ref
        return [RevenueCell(b, c, *figures) for (b, c), figures in sums.items()]


def _sum_bigint(column: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    # sum(bigint) is numeric (Decimal in Python); the sums fit in bigint, and ints are cheaper.
    return sa.cast(sa.func.sum(column), sa.BigInteger)


def _payment_rows(
    pieces: Sequence[tuple[datetime, datetime]], currency_code: str | None
) -> sa.Select[Any]:
    statement = sa.select(
        payments.c.create_time,
        payments.c.currency_code,
        sa.literal(1, sa.BigInteger),
        payments.c.amount_captured,
        payments.c.amount_refunded,
    ).where(_TOOK_MONEY, _in(payments.c.create_time, pieces))
    if currency_code is not None:
        statement = statement.where(payments.c.currency_code == currency_code)
    return statement


def _hour_rows(
    table: sa.Table,
    first_hour: datetime,
    end_hour: datetime,
    split: frozenset[datetime],
    currency_code: str | None,
) -> sa.Select[Any]:
    statement = sa.select(
        table.c.hour,
        table.c.currency_code,
        table.c.payment_count,
        table.c.amount_captured,
        table.c.amount_refunded,
    ).where(table.c.hour >= first_hour, table.c.hour < end_hour)
    if split:
        statement = statement.where(table.c.hour.not_in(sorted(split)))
    if currency_code is not None:
        statement = statement.where(table.c.currency_code == currency_code)
    return statement


_SUM_INTO_HOURS = """
INSERT INTO payment_revenue_hours
    (hour, currency_code, payment_count, amount_captured, amount_refunded)
SELECT hour, currency_code, sum(payment_count), sum(amount_captured), sum(amount_refunded)
FROM {source} GROUP BY hour, currency_code ORDER BY hour, currency_code
ON CONFLICT (hour, currency_code) DO UPDATE SET
    payment_count = payment_revenue_hours.payment_count + excluded.payment_count,
    amount_captured = payment_revenue_hours.amount_captured + excluded.amount_captured,
    amount_refunded = payment_revenue_hours.amount_refunded + excluded.amount_refunded
"""
# One statement: the rows summed are exactly the rows deleted, even when two roll-ups
# run at once (the second skips rows the first deleted). ORDER BY: hour rows are
# locked in one order, so two roll-ups cannot deadlock.
_ROLL_UP_POSTGRES = sa.text(
    "WITH moved AS (DELETE FROM payment_revenue_changes WHERE id IN"  # noqa: S608 - constants
    " (SELECT id FROM payment_revenue_changes ORDER BY id LIMIT :b_limit)"
    " RETURNING hour, currency_code, payment_count, amount_captured, amount_refunded),"
    " summed AS (" + _SUM_INTO_HOURS.format(source="moved") + ")"
    " SELECT count(*) FROM moved"
)
# SQLite has one writer at a time: sum then delete up to the same id, in one transaction.
_LAST_OF_BATCH = sa.text(
    "SELECT max(id) FROM (SELECT id FROM payment_revenue_changes ORDER BY id LIMIT :b_limit)"
)
_ROLL_UP_SQLITE = sa.text(
    _SUM_INTO_HOURS.format(source="payment_revenue_changes WHERE id <= :b_last")
)
_FORGET_SQLITE = sa.text("DELETE FROM payment_revenue_changes WHERE id <= :b_last")
