"""An aggregate's new events into the outbox, in the transaction that changed it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from payments.v1 import events_pb2
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.codec import Event
from server.adapters.db.tables import outbox
from server.observability.correlation import current_correlation_id
from server.observability.tracing import current_trace_headers

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
    rows = event_rows(aggregate_id, events, envelope_of, context)
    await connection.execute(_INSERT, rows[0] if len(rows) == 1 else rows)


def event_rows(
    aggregate_id: str,
    events: Sequence[E],
    envelope_of: Callable[[E], events_pb2.EventEnvelope],
    context: Mapping[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """The outbox rows of `events`, for a statement that writes them its own way."""
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
    return rows


def call_context() -> dict[str, str | None]:
    """The current call's trace context and correlation id, as outbox columns."""
    trace_headers = current_trace_headers()
    return {
        "traceparent": trace_headers.get("traceparent"),
        "tracestate": trace_headers.get("tracestate"),
        "correlation_id": current_correlation_id(),
    }
