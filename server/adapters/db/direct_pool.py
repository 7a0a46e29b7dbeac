"""A small pool of asyncpg connections per engine, for the hot paths that skip SQLAlchemy.

The payment pipeline's statements, the payment reads and the payment webhooks run
prepared statements straight on asyncpg: through the engine's pool a checkout and
check-in cost 36-88 us of CPU and SQLAlchemy's execution machinery far more.
asyncpg's own pool still cost about 40 us a statement (a shielded task, a timeout
and a reset coroutine on every release, a timer per idle connection), as much as
the statement itself; this one hands a connection over with a list's pop and append.

Connections open on demand, up to `size`, and are kept, as the engine's pool keeps
its own; the pool closes them when the engine is disposed. Nothing is reset on
release: every statement here commits on its own or ends its transaction, and a
connection left inside a transaction, closed, or cut off mid-operation is terminated,
not put back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from types import TracebackType
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_

from server.adapters.db.outages import refused_value, translate
from server.domain.errors import DatabaseUnavailable

# As many connections as the engine's pool keeps (create_engine's pool_size).
POOL_SIZE = 20
# A connection this old is closed when it comes back, as the engine's pool_recycle does.
RECYCLE_SECONDS = 1800.0
_AWAY = "the database is not reachable right now; retry"
# A caller waiting for a connection gets one, or None: a slot, to open one of its own.
_Waiter = asyncio.Future[asyncpg.Connection | None]


class DirectPool:
    def __init__(self, engine: AsyncEngine, *, size: int = POOL_SIZE) -> None:
        url = engine.url.set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._size = size
        self._idle: list[asyncpg.Connection] = []
        # Every connection open or being opened counts, in use or idle.
        self._count = 0
        # Open, in use or idle, each with the time.monotonic() at which it is recycled.
        self._mine: dict[asyncpg.Connection, float] = {}
        # In use when the engine was disposed: closed when they come back.
        self._retired: set[asyncpg.Connection] = set()
        self._waiting: deque[_Waiter] = deque()
        self._closing: set[asyncio.Future[None]] = set()  # recycled, saying goodbye
        event.listen(engine.sync_engine, "engine_disposed", self._disposed)

    def connection(self) -> _Lease:
        """A connection, as `async with`; an outage is DatabaseUnavailable, as in a unit
        of work."""
        return _Lease(self)

    async def acquire(self) -> asyncpg.Connection:
        try:
            return await self._acquire()
        except Exception as error:
            # Refused, shutting down, not accepting connections: all "away".
            raise DatabaseUnavailable(_AWAY) from error

    async def _acquire(self) -> asyncpg.Connection:
        while self._idle:
            connection = self._idle.pop()  # the most recent: its statements are prepared
            if not connection.is_closed():
                return connection
            self._forget(connection)
        if self._count < self._size:
            self._count += 1
            return await self._open()
        waiter: _Waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            given = await waiter
        except asyncio.CancelledError:
            # Handed a connection or a slot just as the caller was cancelled: pass it on.
            if waiter.done() and not waiter.cancelled():
                if (handed := waiter.result()) is not None:
                    self.release(handed)
                else:
                    self._count -= 1
                    self._hand_slot()
            raise
        return given if given is not None else await self._open()

    async def _open(self) -> asyncpg.Connection:
        """A new connection, in a slot already counted; the slot is given back on failure."""
        connection = None
        try:
            connection = await asyncpg.connect(self._dsn)
            await _json_as_python(connection)
        except BaseException:
            if connection is not None:
                _terminate(connection)
            self._count -= 1
            self._hand_slot()
            raise
        self._mine[connection] = time.monotonic() + RECYCLE_SECONDS
        return connection

    def release(self, connection: asyncpg.Connection, *, broken: bool = False) -> None:
        """Back to the pool; closed when it may not be in a clean state, or is due for
        recycling."""
        recycle_at = self._mine.get(connection)
        if recycle_at is None:  # forgotten (terminated) already
            _terminate(connection)
            return
        if (
            broken
            or connection in self._retired
            or connection.is_closed()
            or connection.is_in_transaction()
        ):
            _terminate(connection)
            self._forget(connection)
            return
        if recycle_at < time.monotonic():
            self._forget(connection)
            self._closing = {task for task in self._closing if not task.done()}
            self._closing.add(asyncio.ensure_future(_close(connection)))
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def _forget(self, connection: asyncpg.Connection) -> None:
        self._mine.pop(connection, None)
        self._retired.discard(connection)
        self._count -= 1
        self._hand_slot()

    def _hand_slot(self) -> None:
        """A slot is free: the first caller still waiting opens a connection in it."""
        while self._waiting and self._count < self._size:
            waiter = self._waiting.popleft()
            if not waiter.done():
                self._count += 1
                waiter.set_result(None)

    def _disposed(self, _engine: object) -> None:
        """With the engine's pool: Engine.dispose runs this in its greenlet. Idle
        connections close now, those in use when they come back."""
        idle, self._idle = self._idle, []
        self._retired = set(self._mine).difference(idle)
        for connection in idle:
            self._forget(connection)
            with contextlib.suppress(Exception):
                await_(connection.close(timeout=5))


class _Lease:
    """`async with pool.connection() as raw`: a class, not a generator, for the hot path."""

    __slots__ = ("_connection", "_pool")

    def __init__(self, pool: DirectPool) -> None:
        self._pool = pool
        self._connection: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        self._connection = await self._pool.acquire()
        return self._connection

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # The server answered an error: the connection is as good as before. Cut off
            # mid-operation (the database went away, the call was cancelled): its protocol
            # state is unknown.
            broken = error is not None and not isinstance(error, asyncpg.PostgresError)
            self._pool.release(connection, broken=broken)


async def _close(connection: asyncpg.Connection) -> None:
    with contextlib.suppress(Exception):
        await connection.close(timeout=5)


def _terminate(connection: asyncpg.Connection) -> None:
    with contextlib.suppress(Exception):  # a connection already gone needs nothing more
        connection.terminate()


def driver_error(error: Exception) -> Exception:
    """The domain error an asyncpg error stands for, as the unit of work translates it;
    the error itself when it stands for none (a bug: INTERNAL)."""
    found: Exception | None = translate(error) or refused_value(error)
    if found is None and isinstance(
        error, asyncpg.InterfaceError | asyncpg.InternalClientError | OSError | TimeoutError
    ):
        found = DatabaseUnavailable(_AWAY)  # the connection broke mid-statement
    return found or error


def _json_value(text: str) -> Any:
    # Most payments carry no metadata: a page of them would parse "{}" once a row.
    return {} if text == "{}" else json.loads(text)


async def _json_as_python(connection: asyncpg.Connection) -> None:
    """json columns in and out as Python values, as SQLAlchemy has them."""
    await connection.set_type_codec(
        "json", encoder=json.dumps, decoder=_json_value, schema="pg_catalog"
    )
