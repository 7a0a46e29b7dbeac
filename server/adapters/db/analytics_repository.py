"""The aggregates behind payment analytics, summed in the database where it can.

Stats read ix_payments_create_time_covering (an index-only scan of the range on
PostgreSQL). A revenue series reads the pre-summed payment_revenue_hours for every
whole UTC hour that lies inside one bucket, and the payments themselves only for the
rest (partial hours at the ends, hours a bucket boundary cuts in zones half an hour
off UTC). Buckets are the boundaries the domain computed in the time zone, so both
databases bucket exactly alike: PostgreSQL with width_bucket, SQLite in Python.
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

from server.adapters.db.tables import payment_revenue_hours, payments
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
            return await self._sum(
                _payment_rows([(boundaries[0], boundaries[-1])]), boundaries, currency_code
            )
        cells = []
        if split.pieces:
            cells += await self._sum(_payment_rows(split.pieces), boundaries, currency_code)
        if split.first_hour < split.end_hour:
            hours = payment_revenue_hours.c.hour
            # Hours whose payments all left the states that took money keep a zero row.
            where = [
                hours >= split.first_hour,
                hours < split.end_hour,
                payment_revenue_hours.c.payment_count > 0,
            ]
            if split.split:
                where.append(hours.not_in(sorted(split.split)))
            cells += await self._sum(_hour_rows(where), boundaries, currency_code)
        return cells

    async def _sum(
        self,
        source: sa.Select[Any],
        boundaries: list[datetime],
        currency_code: str | None,
    ) -> list[RevenueCell]:
        """Sum `source` (time, currency, count, captured, refunded) per bucket and currency."""
        source = (
            source
            if currency_code is None
            else source.where(source.selected_columns[1] == currency_code)
        )
        starts = boundaries[:-1]
        if self._connection.dialect.name == "postgresql":
            inner = source.subquery()
            columns = list(inner.c)
            time, code, count, captured, refunded = (columns[i] for i in range(5))
            # width_bucket(t, starts) is i when starts[i] <= t < starts[i + 1] (1-based).
            bucket = (
                sa.func.width_bucket(time, sa.bindparam("b_starts", starts, type_=_TIMES)) - 1
            ).label("bucket")
            grouped = sa.select(
                bucket, code, sa.func.sum(count), sa.func.sum(captured), sa.func.sum(refunded)
            ).group_by(bucket, code)
            return [
                RevenueCell(b, c, int(n), int(cap), int(ref))
                for b, c, n, cap, ref in await self._connection.execute(grouped)
            ]
        sums: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        for time_, code_, n, cap, ref in await self._connection.execute(source):
            cell = sums[(bisect_right(starts, time_) - 1, code_)]
            cell[0] += n
            cell[1] += cap
            cell[2] += ref
        return [RevenueCell(b, c, *figures) for (b, c), figures in sums.items()]


def _payment_rows(
    pieces: Sequence[tuple[datetime, datetime]],
) -> sa.Select[Any]:
    return sa.select(
        payments.c.create_time,
        payments.c.currency_code,
        sa.literal(1, sa.BigInteger),
        payments.c.amount_captured,
        payments.c.amount_refunded,
    ).where(_TOOK_MONEY, _in(payments.c.create_time, pieces))


def _hour_rows(
    where: list[sa.ColumnElement[bool]],
) -> sa.Select[Any]:
    return sa.select(
        payment_revenue_hours.c.hour,
        payment_revenue_hours.c.currency_code,
        payment_revenue_hours.c.payment_count,
        payment_revenue_hours.c.amount_captured,
        payment_revenue_hours.c.amount_refunded,
    ).where(*where)
