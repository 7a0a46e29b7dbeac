"""Relays outbox rows to the broker: claim a batch, publish, wait for confirms, mark.

A row is marked published only after the broker confirmed it, so a crash between
publish and mark sends it again (at-least-once; consumers dedupe on message_id).
Which rows a relay may take, and in what order, is the store's business (see
server/adapters/db/outbox_store.py). A broker outage is logged and retried with
backoff; the rows wait in the outbox meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from server.adapters.clock import Clock
from server.observability.metrics import events_published, gauges
from server.service.outbox import BrokerError, EventPublisher, OutboxStore

_log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        store: OutboxStore,
        publisher: EventPublisher,
        clock: Clock,
        *,
        batch_size: int = 200,
        poll_s: float = 0.5,
        max_backoff_s: float = 30.0,
        concurrency: int = 1,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._batch_size = batch_size
        self._poll_s = poll_s
        self._max_backoff_s = max_backoff_s
        # Batches in flight at once, where the store's claims never share a row: while
        # one waits for the broker's confirms, the next is claimed and sent.
        self._concurrency = concurrency if store.parallel_claims else 1
        self._on_health: Callable[[bool], None] | None = None
        self._healthy: bool | None = None

    def on_health(self, callback: Callable[[bool], None]) -> None:
        """Call `callback(False)` when the broker fails, `callback(True)` when it works again."""
        self._on_health = callback

    async def relay_batch(self) -> int:
        """Publish one batch; how many rows were sent. BrokerError leaves them unsent."""
        sent, _full = await self._relay_batch()
        return sent

    async def _relay_batch(self) -> tuple[int, bool]:
        """How many rows were sent, and whether more may be waiting."""
        # Connect before claiming: no rows stay locked while a dead broker times out.
        await self._publisher.connect()
        async with self._store.claim(self._batch_size) as batch:
            if not batch.records:
                return 0, batch.full
            await self._publisher.publish(batch.records)
            await batch.mark_published([r.id for r in batch.records], self._clock.now())
            events_published.add(len(batch.records))
            return len(batch.records), batch.full

    async def run(self) -> None:
        """Relay until cancelled."""
        try:
            await asyncio.gather(*(self._relay_on() for _ in range(self._concurrency)))
        finally:
            await self._publisher.close()

    async def _relay_on(self) -> None:
        failures = 0
        while True:
            try:
                _sent, full = await self._relay_batch()
            except BrokerError as error:
                failures += 1
                delay = min(self._max_backoff_s, self._poll_s * 2**failures)
                delay *= random.uniform(0.5, 1.0)
                _log.warning("broker unavailable (%s); retrying in %.1f s", error, delay)
                self._set_health(False)
                await asyncio.sleep(delay)
                continue
            except Exception:
                _log.exception("outbox relay pass failed")
                await asyncio.sleep(self._poll_s)
                continue
            if failures:
                _log.info("broker reachable again")
            failures = 0
            self._set_health(True)
            if not full:
                await asyncio.sleep(self._poll_s)

    def _set_health(self, healthy: bool) -> None:
        if healthy != self._healthy:
            self._healthy = healthy
            if self._on_health is not None:
                self._on_health(healthy)


async def prune_outbox(
    store: OutboxStore, clock: Clock, retention: timedelta, batch: int = 1000
) -> int:
    """Delete rows published longer than `retention` ago, in small batches."""
    before, total = clock.now() - retention, 0
    while True:
        deleted = await store.prune_published(before, batch)
        total += deleted
        if deleted < batch:
            break
    if total:
        _log.info("pruned %d published outbox rows", total)
    return total


class OutboxBacklog(Protocol):
    async def backlog(self) -> tuple[int, datetime | None]: ...


async def measure_outbox(store: OutboxBacklog, clock: Clock) -> None:
    """Refresh the backlog gauges: how many rows wait, and how old the oldest is."""
    count, oldest = await store.backlog()
    gauges.outbox_backlog = count
    gauges.outbox_oldest_age_s = (
        max(0.0, (clock.now() - oldest).total_seconds()) if oldest is not None else 0.0
    )
