"""The aggregates behind payment analytics, summed in the database where it can.

Both queries read only ix_payments_create_time_covering on PostgreSQL (an index-only
scan of the range). Bucketing uses the boundaries the domain computed in the time
zone, so both databases bucket exactly alike, across daylight saving changes too:
PostgreSQL with width_bucket over them, SQLite in Python with bisect.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.db.tables import payments
from server.domain.analytics import MONEY_TAKEN_STATES, RevenueCell, StatsCell
from server.domain.payment_states import PaymentState

_IN_RANGE = sa.and_(
    payments.c.create_time >= sa.bindparam("b_start"),
    payments.c.create_time < sa.bindparam("b_end"),
)
_TOOK_MONEY = payments.c.state.in_(sorted(s.value for s in MONEY_TAKEN_STATES))
_OF_CURRENCY = payments.c.currency_code == sa.bindparam("b_currency")

_STATS = (
    sa.select(
        payments.c.currency_code,
        payments.c.provider,
        payments.c.state,
        sa.func.count(),
        sa.func.sum(payments.c.amount_captured),
        sa.func.sum(payments.c.amount_refunded),
    )
    .where(_IN_RANGE)
    .group_by(payments.c.currency_code, payments.c.provider, payments.c.state)
)

# width_bucket(t, starts) is i when starts[i] <= t < starts[i + 1] (1-based).
_BUCKET = (
    sa.func.width_bucket(
        payments.c.create_time,
        sa.bindparam("b_starts", type_=postgresql.ARRAY(sa.DateTime(timezone=True))),
    )
    - 1
).label("bucket")
_REVENUE_POSTGRES = (
    sa.select(
        _BUCKET,
        payments.c.currency_code,
        sa.func.count(),
        sa.func.sum(payments.c.amount_captured),
        sa.func.sum(payments.c.amount_refunded),
    )
    .where(_IN_RANGE, _TOOK_MONEY)
    .group_by(_BUCKET, payments.c.currency_code)
)
_REVENUE_ROWS = sa.select(
    payments.c.create_time,
    payments.c.currency_code,
    payments.c.amount_captured,
    payments.c.amount_refunded,
).where(_IN_RANGE, _TOOK_MONEY)


class SqlAnalyticsRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def stats_cells(
        self, start: datetime, end: datetime, currency_code: str | None
    ) -> list[StatsCell]:
        statement = _STATS if currency_code is None else _STATS.where(_OF_CURRENCY)
        rows = await self._connection.execute(
            statement, {"b_start": start, "b_end": end, "b_currency": currency_code}
        )
        # PostgreSQL sums bigints as numeric (Decimal): back to int, exactly.
        return [
            StatsCell(code, provider, PaymentState(state), count, int(captured), int(refunded))
            for code, provider, state, count, captured, refunded in rows
        ]

    async def revenue_cells(
        self, boundaries: list[datetime], currency_code: str | None
    ) -> list[RevenueCell]:
        params: dict[str, object] = {
            "b_start": boundaries[0],
            "b_end": boundaries[-1],
            "b_currency": currency_code,
        }
        if self._connection.dialect.name == "postgresql":
            statement = (
                _REVENUE_POSTGRES
                if currency_code is None
                else _REVENUE_POSTGRES.where(_OF_CURRENCY)
            )
            params["b_starts"] = boundaries[:-1]
            rows = await self._connection.execute(statement, params)
            return [
                RevenueCell(bucket, code, count, int(captured), int(refunded))
                for bucket, code, count, captured, refunded in rows
            ]
        statement = _REVENUE_ROWS if currency_code is None else _REVENUE_ROWS.where(_OF_CURRENCY)
        starts = boundaries[:-1]
        sums: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        for create_time, code, captured, refunded in await self._connection.execute(
            statement, params
        ):
            cell = sums[(bisect_right(starts, create_time) - 1, code)]
            cell[0] += 1
            cell[1] += captured
            cell[2] += refunded
        return [RevenueCell(b, code, *figures) for (b, code), figures in sums.items()]
