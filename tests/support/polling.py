"""Waiting for something outside the test (a process, a database, a broker) to happen."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def until(check: Callable[[], Awaitable[bool]], within: float, every: float = 0.2) -> None:
    """Poll `check` until it is true; TimeoutError after `within` seconds."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - the thing awaited is outside this process
            await asyncio.sleep(every)
