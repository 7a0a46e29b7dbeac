"""Plans in SQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.db.keyset import time_page
from server.adapters.db.tables import plans
from server.domain.billing_period import Interval
from server.domain.money import Money
from server.domain.plan import Plan, PlanState
from server.service.paging import TimePage
from server.service.subscriptions.pages import PlanQuery

_INSERT = plans.insert()
_SELECT = plans.select().where(plans.c.id == sa.bindparam("b_id"))
_SAVE = (
    plans.update()
    .where(plans.c.id == sa.bindparam("b_id"))
    .values(
        state=sa.bindparam("state"),
        archive_time=sa.bindparam("archive_time", type_=plans.c.archive_time.type),
    )
)


def _from_row(row: sa.Row[Any]) -> Plan:
    return Plan(
        id=row.id,
        name=row.name,
        price=Money(row.currency_code, row.price),
        interval=Interval(row.interval),
        interval_count=row.interval_count,
        trial_days=row.trial_days,
        state=PlanState(row.state),
        create_time=row.create_time,
        archive_time=row.archive_time,
    )


class SqlPlanRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, plan: Plan) -> None:
        await self._connection.execute(
            _INSERT,
            {
                "id": plan.id,
                "name": plan.name,
                "currency_code": plan.price.currency_code,
                "price": plan.price.minor_units,
                "interval": plan.interval.value,
                "interval_count": plan.interval_count,
                "trial_days": plan.trial_days,
                "state": plan.state.value,
                "create_time": plan.create_time,
                "archive_time": plan.archive_time,
            },
        )

    async def get(self, plan_id: str) -> Plan | None:
        row = (await self._connection.execute(_SELECT, {"b_id": plan_id})).first()
        return _from_row(row) if row else None

    async def save(self, plan: Plan) -> None:
        await self._connection.execute(
            _SAVE, {"b_id": plan.id, "state": plan.state.value, "archive_time": plan.archive_time}
        )

    async def list(self, query: PlanQuery) -> TimePage[Plan]:
        statement = plans.select()
        if not query.show_archived:
            statement = statement.where(plans.c.state == PlanState.ACTIVE.value)
        return await time_page(self._connection, statement, query, _from_row)
