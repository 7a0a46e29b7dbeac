"""Subscriptions in SQL; every write also puts the subscription's pending events in the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.db.by_id import ById
from server.adapters.db.keyset import time_page
from server.adapters.db.outbox_rows import append_events
from server.adapters.db.tables import subscriptions
from server.adapters.subscription_codec import subscription_event_envelope
from server.domain.subscription import ENDED_STATES, Subscription, SubscriptionState
from server.service.paging import TimePage, UserPage

_INSERT = subscriptions.insert()
_SAVE = (
    subscriptions.update()
    .where(subscriptions.c.id == sa.bindparam("b_id"))
    .values(
        {
            column.name: sa.bindparam(column.name, type_=column.type)
            for column in subscriptions.c
            if column.name not in ("id", "create_time")
        }
    )
)
_DUE = (
    sa.select(subscriptions.c.id)
    .where(subscriptions.c.due_time <= sa.bindparam("b_now", type_=subscriptions.c.due_time.type))
    .order_by(subscriptions.c.due_time)
    .limit(sa.bindparam("b_limit"))
)
# The user's index narrows it to one customer's few subscriptions.
_LIVE_PAID_WITH = (
    sa.select(subscriptions.c.id)
    .where(
        subscriptions.c.user_id == sa.bindparam("b_user_id"),
        subscriptions.c.payment_method_id == sa.bindparam("b_payment_method_id"),
        subscriptions.c.state.not_in([state.value for state in sorted(ENDED_STATES)]),
    )
    .order_by(subscriptions.c.create_time, subscriptions.c.id)
)
# Columns and entity fields share names; the state is converted.
_FIELDS = tuple(column.name for column in subscriptions.c if column.name != "state")


def _row_values(subscription: Subscription) -> dict[str, Any]:
    values = {name: getattr(subscription, name) for name in _FIELDS}
    values["state"] = subscription.state.value
    return values


def _from_row(row: sa.Row[Any]) -> Subscription:
    values = {name: getattr(row, name) for name in _FIELDS}
    return Subscription(state=SubscriptionState(row.state), **values)


_BY_ID = ById(subscriptions, _from_row)


class SqlSubscriptionRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, subscription: Subscription) -> None:
        await self._connection.execute(_INSERT, _row_values(subscription))
        await self._write_events(subscription)

    async def get(
        self, subscription_id: str, *, for_update: bool = False, skip_locked: bool = False
    ) -> Subscription | None:
        return await _BY_ID.get(self._connection, subscription_id, for_update, skip_locked)

    async def save(self, subscription: Subscription) -> None:
        """Callers hold the row lock (get with for_update), so no compare-and-set is needed."""
        values = _row_values(subscription)
        values["b_id"] = values.pop("id")
        del values["create_time"]
        await self._connection.execute(_SAVE, values)
        await self._write_events(subscription)

    async def find_by_provider_id(
        self, provider: str, provider_subscription_id: str, *, for_update: bool = False
    ) -> Subscription | None:
        if not provider_subscription_id:
            return None
        statement = subscriptions.select().where(
            subscriptions.c.provider == provider,
            subscriptions.c.provider_subscription_id == provider_subscription_id,
        )
        if for_update:
            statement = statement.with_for_update()
        row = (await self._connection.execute(statement)).first()
        return _from_row(row) if row else None

    async def due(self, now: datetime, limit: int) -> list[str]:
        result = await self._connection.execute(_DUE, {"b_now": now, "b_limit": limit})
        return list(result.scalars())

    async def live_paid_with(self, user_id: str, payment_method_id: str) -> list[str]:
        result = await self._connection.execute(
            _LIVE_PAID_WITH, {"b_user_id": user_id, "b_payment_method_id": payment_method_id}
        )
        return list(result.scalars())

    async def list(self, query: UserPage) -> TimePage[Subscription]:
        statement = subscriptions.select().where(subscriptions.c.user_id == query.user_id)
        return await time_page(self._connection, statement, query, _from_row)

    async def _write_events(self, subscription: Subscription) -> None:
        events = subscription.take_events()
        if not events:
            return
        await append_events(
            self._connection,
            subscription.id,
            events,
            lambda event: subscription_event_envelope(event, subscription),
        )
