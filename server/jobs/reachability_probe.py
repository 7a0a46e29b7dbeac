"""Readiness follows what the service depends on: a cheap ping every few seconds.

The database (`SELECT 1`) and, when configured, Redis (`PING`). Only changes
are reported (and logged), so a healthy probe is silent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from server.observability.metrics import gauges

_log = logging.getLogger(__name__)


class ReachabilityProbe:
    def __init__(
        self,
        what: str,
        ping: Callable[[], Awaitable[object]],
        report: Callable[[bool], None],
        timeout_s: float = 2.0,
    ) -> None:
        self.what = what
        self._ping = ping
        self._report = report
        self._timeout_s = timeout_s
        self._reachable: bool | None = None

    async def check(self) -> bool:
        """Ping once; report the verdict if it changed; whether `what` answered."""
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._ping()
            reachable, why = True, ""
        except Exception as error:
            reachable, why = False, type(error).__name__
        gauges.up[self.what] = int(reachable)
        if reachable != self._reachable:
            if reachable:
                _log.info("%s reachable: ready", self.what)
            else:
                _log.warning("%s unreachable (%s): NOT_SERVING", self.what, why)
            self._reachable = reachable
            self._report(reachable)
        return reachable
