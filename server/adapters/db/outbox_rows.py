"""An aggregate's new events into the outbox, in the transaction that changed it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from payments.v1 import events_pb2
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.codec import Event
from server.adapters.db.tables import outbox

E = TypeVar("E", bound=Event)
_INSERT = outbox.insert()


async def append_events(
    connection: AsyncConnection,
    aggregate_id: str,
    events: Sequence[E],
    envelope_of: Callable[[E], events_pb2.EventEnvelope],
    context: Mapping[str, str | None] | None = None,
) -> None:
    """One outbox row per event; `context` (the call's trace and correlation id) on each."""
    rows = []
    for event in events:
        envelope = envelope_of(event)
        rows.append(
            {
                "event_id": envelope.event_id,
                "event_type": event.type,
                "aggregate_type": envelope.aggregate_type,
                "aggregate_id": aggregate_id,
                "sequence": event.sequence,
                "payload": envelope.SerializeToString(deterministic=True),
                "occurred_at": event.occurred_at,
                **(context or {}),
            }
        )
    await connection.execute(_INSERT, rows[0] if len(rows) == 1 else rows)
