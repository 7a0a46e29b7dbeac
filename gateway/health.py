"""GET /healthz (the process answers) and GET /readyz (and the database does too)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

_log = logging.getLogger(__name__)
READY_TIMEOUT_SECONDS = 2.0


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


class Readiness:
    def __init__(self, database_ready: Callable[[], Awaitable[None]]) -> None:
        self._database_ready = database_ready

    async def readyz(self, _request: Request) -> Response:
        try:
            await asyncio.wait_for(self._database_ready(), READY_TIMEOUT_SECONDS)
        except Exception as error:
            _log.warning("not ready: database check failed (%s)", type(error).__name__)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})
