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
    envelopes = [envelope_of(event) for event in events]
    await append_rows(connection, event_rows(aggregate_id, events, envelopes, context))


async def append_rows(connection: AsyncConnection, rows: Sequence[Mapping[str, object]]) -> None:
    await connection.execute(_INSERT, rows[0] if len(rows) == 1 else list(rows))


def event_rows(
    aggregate_id: str,
    events: Sequence[Event],
    envelopes: Sequence[events_pb2.EventEnvelope],
    context: Mapping[str, str | None] | None = None,
) -> list[dict[str, object]]:
    """The outbox rows of `events`, whose envelopes are `envelopes`, in the same order."""
    return [
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
        for event, envelope in zip(events, envelopes, strict=True)
    ]
