"""Final writes that outlive the request: shielded settle tasks, and writes kept through an outage.

The provider has acted; what it said must reach the database even if the
caller hangs up (the shielded task) or the database is down right now (the
kept write, tried again with backoff until it lands). Both are referenced
here, so the event loop cannot garbage-collect them, and are awaited or
cancelled when the server stops. What is still kept then is not lost: the
request_id's lease runs out and the reconciler asks the provider.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from server.domain.errors import DatabaseUnavailable, TransactionConflict

T = TypeVar("T")
_log = logging.getLogger(__name__)


class Recorder:
    def __init__(
        self,
        *,
        limit: int = 1000,
        first_delay: float = 0.1,
        max_delay: float = 5.0,
        give_up_after: float = 600.0,
    ) -> None:
        self._limit = limit
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._give_up_after = give_up_after
        self._settling: set[asyncio.Task[Any]] = set()
        self._kept: set[asyncio.Task[None]] = set()

    @property
    def kept(self) -> int:
        """Writes waiting for the database."""
        return len(self._kept)

    def shielded(self, settle: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """Run `settle` to the end even if the awaiting caller is cancelled."""
        task = asyncio.ensure_future(settle)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        return asyncio.shield(task)

    def keep(self, write: Callable[[], Awaitable[object]]) -> None:
        """Try `write` again until the database takes it (bounded in number and time)."""
        if len(self._kept) >= self._limit:
            _log.error("recorder full (%d writes kept): leaving one to the reconciler", self._limit)
            return
        task = asyncio.ensure_future(self._retry(write))
        self._kept.add(task)
        task.add_done_callback(self._kept.discard)

    async def _retry(self, write: Callable[[], Awaitable[object]]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._give_up_after
        delay = self._first_delay
        while True:
            await asyncio.sleep(delay)
            try:
                await write()
            except (DatabaseUnavailable, TransactionConflict):
                if loop.time() >= deadline:
                    _log.error(
                        "gave up recording after %.0f s: the reconciler takes over",
                        self._give_up_after,
                    )
                    return
                delay = min(delay * 2, self._max_delay)
                continue
            except Exception:
                _log.exception("a kept write failed for good")
                return
            _log.info("recorded a kept write once the database was back")
            return

    async def drained(self) -> None:
        """Wait until nothing is kept or settling (for tests and a graceful stop)."""
        while self._settling or self._kept:
            await asyncio.gather(*self._settling, *self._kept, return_exceptions=True)
            await asyncio.sleep(0)  # lets the done-callbacks empty the sets

    async def close(self, grace: float = 5.0) -> None:
        """Let in-flight work finish for `grace` seconds, then cancel the rest."""
        pending = self._settling | self._kept
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
