"""Readiness follows the database: a cheap `SELECT 1` every few seconds.

Only changes are reported (and logged), so a healthy probe is silent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from server.observability.metrics import gauges

_log = logging.getLogger(__name__)


class DatabaseProbe:
    def __init__(
        self,
        ping: Callable[[], Awaitable[None]],
        report: Callable[[bool], None],
        timeout_s: float = 2.0,
    ) -> None:
        self._ping = ping
        self._report = report
        self._timeout_s = timeout_s
        self._reachable: bool | None = None

    async def check(self) -> bool:
        """Ping once; report the verdict if it changed; whether the database answered."""
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._ping()
            reachable, why = True, ""
        except Exception as error:
            reachable, why = False, type(error).__name__
        gauges.database_up = int(reachable)
        if reachable != self._reachable:
            if reachable:
                _log.info("database reachable: ready")
            else:
                _log.warning("database unreachable (%s): NOT_SERVING", why)
            self._reachable = reachable
            self._report(reachable)
        return reachable
