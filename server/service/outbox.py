"""Ports of the outbox relay: where unpublished events are claimed, where they are sent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One stored event: `payload` is a serialized payments.v1.EventEnvelope."""

    id: int
    event_id: str
    event_type: str
    aggregate_type: str
    aggregate_id: str
    sequence: int
    payload: bytes
    occurred_at: datetime
    # W3C trace context of the request that wrote the event ({} when there was none).
    trace_headers: Mapping[str, str] = field(default_factory=dict)
    # The message id of the queued command that caused the event, if one did.
    correlation_id: str | None = None


class ClaimedBatch(Protocol):
    records: Sequence[OutboxRecord]
    # The claim took as many rows as it was allowed: more may be waiting. (Rows it took
    # may still be left out of `records`, to keep a payment's events in order.)
    full: bool

    async def mark_published(self, ids: Sequence[int], now: datetime) -> None:
        """Set published_at on `ids` and commit; the claim ends with it."""


class OutboxStore(Protocol):
    def claim(self, limit: int) -> AbstractAsyncContextManager[ClaimedBatch]:
        """Up to `limit` unpublished records, oldest first, safe to publish in that order.

        Leaving the context without `mark_published` releases them unpublished.
        """
        ...

    async def prune_published(self, before: datetime, limit: int) -> int:
        """Delete at most `limit` records published before `before`; how many went."""
        ...

    @property
    def parallel_claims(self) -> bool:
        """Whether claims open at the same time never share a record, so that several
        batches may be in flight at once."""
        ...


class BrokerError(Exception):
    """The broker could not be reached, or did not confirm every message."""


class EventPublisher(Protocol):
    async def connect(self) -> None:
        """Open the connection unless it is open; BrokerError when the broker is away."""

    async def publish(self, records: Sequence[OutboxRecord]) -> None:
        """Return once the broker confirmed every record; BrokerError otherwise."""

    async def close(self) -> None: ...
