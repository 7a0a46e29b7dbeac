"""One small asyncpg pool per engine, for the hot paths that skip SQLAlchemy.

The payment pipeline's statements and the payment webhooks run prepared
statements straight on asyncpg: through the engine's pool a checkout and check-in
cost 36-88 us of CPU and SQLAlchemy's execution machinery far more, against
24 us here. The pool opens on first use and closes when the engine is disposed.
It skips asyncpg's reset on release (a round trip each time): every statement
here commits on its own or ends its transaction, and a connection left inside a
transaction is terminated, not put back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_

from server.adapters.db.outages import refused_value, translate
from server.domain.errors import DatabaseUnavailable

# As many connections as the engine's pool keeps (create_engine's pool_size).
POOL_SIZE = 20
_AWAY = "the database is not reachable right now; retry"


class DirectPool:
    def __init__(self, engine: AsyncEngine, *, size: int = POOL_SIZE) -> None:
        url = engine.url.set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        event.listen(engine.sync_engine, "engine_disposed", self._disposed)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection; an outage is DatabaseUnavailable, as in a unit of work."""
        try:
            pool = self._pool or await self._opened()
            raw: asyncpg.Connection = await pool.acquire()
        except Exception as error:
            # Refused, shutting down, not accepting connections, pool closed: all "away".
            raise DatabaseUnavailable(_AWAY) from error
        try:
            yield raw
        except asyncpg.PostgresError:
            raise  # the server answered: the connection is as good as before
        except BaseException:
            # Cut off mid-operation (the database went away, the call was cancelled): its
            # protocol state is unknown, and the pool keeps no reset to find out. One the
            # pool already took back (its socket died) needs nothing more.
            with contextlib.suppress(asyncpg.InterfaceError):
                raw.terminate()
            raise
        finally:
            # A broken connection is closed (and may be detached already), not kept; one
            # whose rollback did not get through is terminated, not put back.
            with contextlib.suppress(Exception):
                if raw.is_in_transaction():
                    raw.terminate()
            with contextlib.suppress(Exception):
                await pool.release(raw)

    async def _opened(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=self._size,
                    init=_json_as_python,
                    reset=_left_clean,
                )
        return self._pool

    def _disposed(self, _engine: object) -> None:
        """With the engine's pool: Engine.dispose runs this in its greenlet."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await_(pool.close())


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


async def _left_clean(connection: asyncpg.Connection) -> None:
    del connection
