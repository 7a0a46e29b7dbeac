"""Refresh the gauges of payments that are not settled: how many per state, how old."""

from __future__ import annotations

from server.adapters.clock import Clock
from server.domain.reconciliation import UNSETTLED_STATES
from server.observability.metrics import gauges
from server.service.unit_of_work import UnitOfWorkFactory


async def measure_waiting_payments(uow: UnitOfWorkFactory, clock: Clock) -> None:
    async with uow() as work:
        rows = await work.payments.waiting()
    now = clock.now()
    # Every state is reported, 0 when none wait, so an alert sees it come back down.
    waiting = {state.value: (0, 0.0) for state in UNSETTLED_STATES}
    for state, count, oldest in rows:
        waiting[state] = (count, max(0.0, (now - oldest).total_seconds()))
    gauges.waiting = waiting
