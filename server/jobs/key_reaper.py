"""Deletes idempotency keys past their retention, in small batches to keep locks short."""

from __future__ import annotations

import logging

from server.adapters.clock import Clock
from server.service.unit_of_work import UnitOfWorkFactory

_log = logging.getLogger(__name__)


async def reap_expired_keys(uow: UnitOfWorkFactory, clock: Clock, batch: int = 500) -> int:
    total = 0
    while True:
        async with uow() as work:
            deleted = await work.idempotency_keys.delete_expired(clock.now(), batch)
            await work.commit()
        total += deleted
        if deleted < batch:
            break
    if total:
        _log.info("reaped %d expired idempotency keys", total)
    return total
