"""Stored webhook events in SQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.db.tables import webhook_events
from server.domain.webhook_events import WebhookEvent, WebhookEventStatus
from server.service.unit_of_work import DuplicateWebhookEvent

_INSERT = webhook_events.insert()
_SELECT = webhook_events.select().where(webhook_events.c.event_id == sa.bindparam("b_event_id"))
_SELECT_FOR_UPDATE = _SELECT.with_for_update()
_SAVE = (
    webhook_events.update()
    .where(webhook_events.c.event_id == sa.bindparam("b_event_id"))
    .values(
        status=sa.bindparam("status"),
        error=sa.bindparam("error"),
        attempts=sa.bindparam("attempts"),
        payment_id=sa.bindparam("payment_id"),
        applied_time=sa.bindparam("applied_time", type_=webhook_events.c.applied_time.type),
    )
)
_FAILED = (
    webhook_events.select()
    .where(webhook_events.c.status == WebhookEventStatus.FAILED.value)
    .order_by(webhook_events.c.received_time, webhook_events.c.id)
    .limit(sa.bindparam("b_limit"))
)


def row_values(event: WebhookEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "type": event.type,
        "payload": event.payload,
        "status": event.status.value,
        "payment_id": event.payment_id,
        "error": event.error[:500],
        "attempts": event.attempts,
        "received_time": event.received_time,
        "applied_time": event.applied_time,
    }


def from_row(row: Any) -> WebhookEvent:
    """`row` has the table's columns as attributes: a SQLAlchemy row, or a namespace."""
    return WebhookEvent(
        event_id=row.event_id,
        type=row.type,
        payload=row.payload,
        received_time=row.received_time,
        status=WebhookEventStatus(row.status),
        error=row.error,
        applied_time=row.applied_time,
        attempts=row.attempts,
        payment_id=row.payment_id,
    )


class SqlWebhookEventRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, event_id: str, *, for_update: bool = False) -> WebhookEvent | None:
        statement = _SELECT_FOR_UPDATE if for_update else _SELECT
        row = (await self._connection.execute(statement, {"b_event_id": event_id})).first()
        return from_row(row) if row else None

    async def add(self, event: WebhookEvent) -> None:
        # No savepoint: a duplicate gives up the whole transaction, its effect included.
        try:
            await self._connection.execute(_INSERT, row_values(event))
        except IntegrityError as error:
            if "event_id" in str(error.orig):
                raise DuplicateWebhookEvent(event.event_id) from None
            raise

    async def save(self, event: WebhookEvent) -> None:
        values = row_values(event)
        await self._connection.execute(
            _SAVE,
            {
                "b_event_id": event.event_id,
                "status": values["status"],
                "error": values["error"],
                "attempts": values["attempts"],
                "payment_id": values["payment_id"],
                "applied_time": values["applied_time"],
            },
        )

    async def failed(self, limit: int) -> list[WebhookEvent]:
        rows = (await self._connection.execute(_FAILED, {"b_limit": limit})).all()
        return [from_row(row) for row in rows]
