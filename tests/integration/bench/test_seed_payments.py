"""bench/seed_payments.py fills a migrated PostgreSQL database: the gRPC and analytics
benchmarks stand on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.seed_payments import seed
from tests.support.databases import create_postgres_database, drop_postgres_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def database() -> Iterator[str]:
    url = create_postgres_database("payments_bench_seed")
    yield url
    drop_postgres_database(url)


async def _count(url: str, table: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
    finally:
        await engine.dispose()


async def test_seeds_a_migrated_database_again_and_again(database: str) -> None:
    # Receipts reference payments: a TRUNCATE of payments alone was refused.
    await seed(make_url(database), 200)
    await seed(make_url(database), 300)

    assert await _count(database, "payments") == 300
    assert await _count(database, "refunds") > 0
