"""Run a job every so often until told to stop; a failing pass is logged, not fatal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from opentelemetry.context import Context

from server.observability.tracing import tracer, tracing_enabled

_log = logging.getLogger(__name__)


async def every(
    interval_s: float, job: Callable[[], Awaitable[object]], name: str, *, traced: bool = False
) -> None:
    """`traced`: each pass is a root span `job <name>` (when tracing is on)."""
    while True:
        try:
            if traced and tracing_enabled():
                with tracer().start_as_current_span(f"job {name}", context=Context()):
                    await job()
            else:
                await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("job %s failed; trying again in %.0f s", name, interval_s)
        await asyncio.sleep(interval_s)


async def stop(tasks: Iterable[asyncio.Future[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
