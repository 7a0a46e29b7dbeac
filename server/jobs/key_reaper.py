"""Deletes idempotency keys past their retention, in small batches to keep locks short."""

from __future__ import annotations

import logging

from server.adapters.clock import Clock
from server.jobs.batches import in_batches
from server.service.unit_of_work import UnitOfWorkFactory

_log = logging.getLogger(__name__)


async def reap_expired_keys(uow: UnitOfWorkFactory, clock: Clock, batch: int = 500) -> int:
    total = await in_batches(
        uow, batch, lambda work, limit: work.idempotency_keys.delete_expired(clock.now(), limit)
    )
    if total:
        _log.info("reaped %d expired idempotency keys", total)
    return total
