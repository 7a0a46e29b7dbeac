"""The readiness probe reports changes only, and a hanging dependency counts as down."""

from __future__ import annotations

import asyncio

from server.jobs.reachability_probe import ReachabilityProbe
from server.observability.metrics import gauges


async def test_reports_each_change_once() -> None:
    answers = [True, True, False, False, True]
    reports: list[bool] = []

    async def ping() -> None:
        if not answers.pop(0):
            raise ConnectionRefusedError

    probe = ReachabilityProbe("database", ping, reports.append)
    results = [await probe.check() for _ in range(5)]
    assert results == [True, True, False, False, True]
    assert reports == [True, False, True]
    assert gauges.up["database"] == 1


async def test_a_ping_that_hangs_is_a_failure() -> None:
    reports: list[bool] = []

    async def hang() -> None:
        await asyncio.Event().wait()

    assert not await ReachabilityProbe("redis", hang, reports.append, timeout_s=0.01).check()
    assert reports == [False]
    assert gauges.up["redis"] == 0
