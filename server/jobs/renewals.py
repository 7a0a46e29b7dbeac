"""The renewal and dunning pass: bill every subscription whose due_time has come."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from server.service.dependencies import Dependencies
from server.service.subscriptions.billing import Billed, bill_subscription

BATCH = 100


@dataclass(frozen=True, slots=True)
class RenewalReport:
    paid: int = 0
    failed: int = 0
    pending: int = 0
    ended: int = 0
    skipped: int = 0


async def renew_due_subscriptions(deps: Dependencies, *, batch: int = BATCH) -> RenewalReport:
    """Bill due subscriptions until none is left, or a whole batch made no progress.

    A subscription several periods behind (the job was down) catches up one
    period per step, in order.
    """
    counts: Counter[Billed] = Counter()
    while True:
        async with deps.uow(read_only=True) as uow:
            due = await uow.subscriptions.due(deps.clock.now(), batch)
        results = [await bill_subscription(deps, subscription_id) for subscription_id in due]
        counts.update(results)
        if not due or all(result is Billed.SKIPPED for result in results):
            break
    return RenewalReport(
        paid=counts[Billed.PAID],
        failed=counts[Billed.FAILED],
        pending=counts[Billed.PENDING],
        ended=counts[Billed.ENDED],
        skipped=counts[Billed.SKIPPED],
    )
