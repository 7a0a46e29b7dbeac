"""The readiness probe reports changes only, and a hanging database counts as down."""

from __future__ import annotations

import asyncio

from server.jobs.database_probe import DatabaseProbe
from server.observability.metrics import gauges


async def test_reports_each_change_once() -> None:
    answers = [True, True, False, False, True]
    reports: list[bool] = []

    async def ping() -> None:
        if not answers.pop(0):
            raise ConnectionRefusedError

    probe = DatabaseProbe(ping, reports.append)
    results = [await probe.check() for _ in range(5)]
    assert results == [True, True, False, False, True]
    assert reports == [True, False, True]
    assert gauges.database_up == 1


async def test_a_ping_that_hangs_is_a_failure() -> None:
    reports: list[bool] = []

    async def hang() -> None:
        await asyncio.Event().wait()

    assert not await DatabaseProbe(hang, reports.append, timeout_s=0.01).check()
    assert reports == [False]
    assert gauges.database_up == 0
