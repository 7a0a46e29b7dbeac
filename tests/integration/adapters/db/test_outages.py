"""Driver failures leave the unit of work as domain errors: outages UNAVAILABLE, conflicts ABORTED.

On a PostgreSQL database of the test's own, which it cuts off, whose sessions it
ends, or in which it raises the SQLSTATEs PostgreSQL uses for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from server.adapters.db.engine import create_engine
from server.adapters.db.unit_of_work import SqlUnitOfWork
from server.domain.errors import DatabaseUnavailable, TransactionConflict
from server.service.unit_of_work import ValueRefused
from tests.support.databases import (
    create_postgres_database,
    drop_postgres_database,
    set_postgres_database_reachable,
)


@pytest.fixture(scope="module")
def migrated_database() -> Iterator[str]:
    url = create_postgres_database("payments_outages")
    yield url
    drop_postgres_database(url)


@pytest.fixture
def own_database(migrated_database: str) -> Iterator[str]:
    yield migrated_database
    set_postgres_database_reachable(migrated_database, True)


@pytest.fixture
async def own_engine(own_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(own_database)
    yield engine
    await engine.dispose()


def _raising(sqlstate: str) -> sa.TextClause:
    return sa.text(f"DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '{sqlstate}'; END $$")


async def test_a_database_that_refuses_connections_is_unavailable(
    own_database: str, own_engine: AsyncEngine
) -> None:
    set_postgres_database_reachable(own_database, False)
    with pytest.raises(DatabaseUnavailable):
        async with SqlUnitOfWork(own_engine):
            pass


async def test_nothing_listening_is_unavailable() -> None:
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:9/none")
    try:
        with pytest.raises(DatabaseUnavailable):
            async with SqlUnitOfWork(engine, read_only=True):
                pass
    finally:
        await engine.dispose()


async def test_a_session_ended_by_the_server_is_unavailable(
    own_database: str, own_engine: AsyncEngine
) -> None:
    # The error leaves the unit of work translated, so the block is the statement under test.
    with pytest.raises(DatabaseUnavailable) as raised:  # noqa: PT012
        async with SqlUnitOfWork(own_engine) as uow:
            await uow.idempotency_keys.get("caller", "request")  # the session is up
            set_postgres_database_reachable(own_database, False)  # ends it: admin_shutdown
            await uow.idempotency_keys.get("caller", "request")
    assert raised.value.reason == "DATABASE_UNAVAILABLE"
    set_postgres_database_reachable(own_database, True)
    async with SqlUnitOfWork(own_engine) as uow:  # the pool recovers on its own
        assert await uow.idempotency_keys.get("caller", "request") is None


@pytest.mark.parametrize(
    ("sqlstate", "error"),
    [
        ("40001", TransactionConflict),  # serialization_failure
        ("40P01", TransactionConflict),  # deadlock_detected
        ("57P01", DatabaseUnavailable),  # admin_shutdown
        ("08006", DatabaseUnavailable),  # connection_failure
        ("53300", DatabaseUnavailable),  # too_many_connections
    ],
)
async def test_sqlstates_of_outages_and_conflicts(
    own_engine: AsyncEngine, sqlstate: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        async with SqlUnitOfWork(own_engine) as uow:
            await uow._connection.execute(_raising(sqlstate))  # type: ignore[union-attr]


async def test_a_bug_stays_a_bug(own_engine: AsyncEngine) -> None:
    """A syntax error or a violated constraint is not an outage: it is not translated."""
    with pytest.raises(sa.exc.DBAPIError) as raised:
        async with SqlUnitOfWork(own_engine) as uow:
            await uow._connection.execute(_raising("42601"))  # type: ignore[union-attr]
    assert not isinstance(raised.value, DatabaseUnavailable | TransactionConflict)


async def test_a_value_the_database_refuses_is_value_refused_not_an_outage(
    own_engine: AsyncEngine,
) -> None:
    """Too long for its column, or a NUL byte: the data's doing, the same on every try."""
    with pytest.raises(ValueRefused) as raised:
        async with SqlUnitOfWork(own_engine) as uow:
            await uow._connection.execute(_raising("22001"))  # type: ignore[union-attr]
    assert isinstance(raised.value.__cause__, sa.exc.DBAPIError)
    with pytest.raises(ValueRefused):
        async with SqlUnitOfWork(own_engine) as uow:
            await uow._connection.execute(sa.text("SELECT CAST(:v AS text)"), {"v": "a\x00"})  # type: ignore[union-attr]


async def test_an_exhausted_pool_is_unavailable(own_database: str) -> None:
    engine = create_async_engine(own_database, pool_size=1, max_overflow=0, pool_timeout=0.2)
    held = asyncio.Event()
    done = asyncio.Event()

    async def hold() -> None:
        async with SqlUnitOfWork(engine):
            held.set()
            await done.wait()

    holder = asyncio.create_task(hold())
    try:
        await held.wait()
        with pytest.raises(DatabaseUnavailable):
            async with SqlUnitOfWork(engine):
                pass
    finally:
        done.set()
        await holder
        await engine.dispose()
