"""Sums the revenue changes the payment triggers append into their hours, in batches.

Figures are exact whether or not this runs (readers add the changes not rolled up
yet); it keeps the changes table short so that a revenue series stays fast.
"""

from __future__ import annotations

import logging

from server.jobs.batches import in_batches
from server.service.unit_of_work import UnitOfWorkFactory

_log = logging.getLogger(__name__)


async def roll_up_revenue(uow: UnitOfWorkFactory, batch: int = 10_000) -> int:
    total = await in_batches(uow, batch, lambda work, limit: work.analytics.roll_up(limit))
    if total:
        _log.debug("rolled up %d revenue changes", total)
    return total
