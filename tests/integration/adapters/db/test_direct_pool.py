"""The direct pool: connections kept and shared, never more than its size, never one in an
unknown state handed on, and none lost when a waiting caller is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db import direct_pool
from server.adapters.db.direct_pool import DirectPool
from server.adapters.db.engine import create_engine
from server.domain.errors import DatabaseUnavailable
from tests.support.databases import set_postgres_database_reachable


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    yield engine
    await engine.dispose()


async def backend(pool: DirectPool) -> int:
    """The server process behind the connection this call gets: which connection it is."""
    async with pool.connection() as connection:
        pid: int = await connection.fetchval("SELECT pg_backend_pid()")
        return pid


async def test_one_caller_after_another_shares_one_connection(engine: AsyncEngine) -> None:
    pool = DirectPool(engine)
    assert len({await backend(pool) for _ in range(5)}) == 1


async def test_never_more_connections_than_its_size(engine: AsyncEngine) -> None:
    pool = DirectPool(engine, size=2)
    release, two_in = asyncio.Event(), asyncio.Event()
    seen: list[int] = []

    async def holds() -> None:
        async with pool.connection() as connection:
            seen.append(await connection.fetchval("SELECT pg_backend_pid()"))
            if len(seen) == 2:
                two_in.set()
            await release.wait()

    holders = [asyncio.create_task(holds()) for _ in range(5)]
    await asyncio.wait_for(two_in.wait(), 10)
    release.set()
    await asyncio.gather(*holders)
    # Five callers held a connection each at once, three of them after waiting.
    assert len(seen) == 5
    assert len(set(seen)) == 2


@pytest.mark.parametrize("handed_first", [False, True], ids=["cancelled-first", "handed-first"])
async def test_a_cancelled_waiter_loses_no_connection(
    engine: AsyncEngine, handed_first: bool
) -> None:
    pool = DirectPool(engine, size=1)
    first = await backend(pool)
    held = await pool.acquire()
    waiting = asyncio.create_task(backend(pool))
    await asyncio.sleep(0.05)  # it waits for the one connection
    if handed_first:  # handed the connection, then cancelled before it could run
        pool.release(held)
        waiting.cancel()
    else:
        waiting.cancel()
        pool.release(held)
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await asyncio.wait_for(backend(pool), 10) == first


async def test_a_connection_left_in_a_transaction_is_not_handed_on(engine: AsyncEngine) -> None:
    pool = DirectPool(engine, size=1)
    async with pool.connection() as connection:
        left = await connection.fetchval("SELECT pg_backend_pid()")
        await connection.execute("BEGIN")
    assert await backend(pool) != left


async def test_a_connection_cut_off_mid_call_is_not_handed_on(engine: AsyncEngine) -> None:
    pool = DirectPool(engine, size=1)
    cut = await backend(pool)
    with pytest.raises(RuntimeError):
        async with pool.connection():
            raise RuntimeError("the call broke off, its protocol state unknown")
    assert await backend(pool) != cut


async def test_a_database_error_keeps_the_connection(engine: AsyncEngine) -> None:
    pool = DirectPool(engine, size=1)
    kept = await backend(pool)
    with pytest.raises(Exception, match="division by zero"):
        async with pool.connection() as connection:
            await connection.fetchval("SELECT 1 / 0")
    assert await backend(pool) == kept


async def test_disposing_the_engine_closes_the_connections(engine: AsyncEngine) -> None:
    pool = DirectPool(engine, size=2)
    idle = await backend(pool)
    in_use = await pool.acquire()
    busy = await in_use.fetchval("SELECT pg_backend_pid()")
    await engine.dispose()
    assert not in_use.is_closed()  # a call in flight finishes
    pool.release(in_use)
    assert in_use.is_closed()
    assert await backend(pool) not in (idle, busy)


async def test_an_unreachable_database_is_unavailable_and_frees_the_slot(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url)
    pool = DirectPool(engine, size=1)
    try:
        set_postgres_database_reachable(postgres_url, False)
        try:
            for _ in range(2):
                with pytest.raises(DatabaseUnavailable):
                    await backend(pool)
        finally:
            set_postgres_database_reachable(postgres_url, True)
        await asyncio.wait_for(backend(pool), 10)
    finally:
        await engine.dispose()


async def test_nothing_listens_at_the_address() -> None:
    nowhere = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    pool = DirectPool(nowhere, size=1)
    try:
        for _ in range(2):  # the failed attempt gave its slot back
            with pytest.raises(DatabaseUnavailable):
                await asyncio.wait_for(backend(pool), 10)
    finally:
        await nowhere.dispose()


async def test_a_connection_past_its_age_is_closed_when_it_comes_back(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct_pool, "RECYCLE_SECONDS", -1.0)
    pool = DirectPool(engine, size=1)
    held = await pool.acquire()
    old = await held.fetchval("SELECT pg_backend_pid()")
    pool.release(held)
    assert await asyncio.wait_for(backend(pool), 10) != old
    for _ in range(100):  # closing says goodbye to the server first
        if held.is_closed():
            break
        await asyncio.sleep(0.01)
    assert held.is_closed()
