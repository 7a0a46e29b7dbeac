"""Engine set-up for the embedded SQLite default and for PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    # hide_parameters: error messages (and so logs and tracebacks) never quote bound
    # values, which are request and webhook payloads.
    if not is_sqlite(url):
        # No pre-ping: it costs a round trip per checkout on the hot path; a dead
        # connection fails its statement instead, and the caller's retry is safe.
        return create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=10,
            pool_recycle=1800,
            hide_parameters=True,
        )
    # One connection: SQLite allows one writer anyway, and queueing in the pool
    # beats "database is locked" errors between connections of one process.
    engine = create_async_engine(
        url, pool_size=1, max_overflow=0, pool_timeout=60, hide_parameters=True
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


async def ping(engine: AsyncEngine) -> None:
    """`SELECT 1`: raises unless the database answers."""
    async with engine.connect() as connection:
        await connection.execute(sa.text("SELECT 1"))
