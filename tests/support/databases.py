"""Real databases for tests: a migrated SQLite file per test, one PostgreSQL database per run."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from server.adapters.db.migrations import upgrade
from tests.support.shared_services import current_slot

T = TypeVar("T")
POSTGRES_URL = os.environ.get(
    "PAYMENTS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
# Which databases `database_url` runs each integration test on. The mutation run
# judges the domain's mutants on SQLite only: pure code, the same on either database.
DATABASES_ENV = "PAYMENTS_TEST_DATABASES"
DATABASES = ("sqlite", "postgres")
TABLES = (
    "subscriptions",
    "plans",
    "refunds",
    "payments",
    "idempotency_keys",
    "outbox",
    "payment_methods",
    "provider_customers",
    "webhook_events",
    "payment_revenue_hours",
    "payment_revenue_changes",
    "receipts",
    "receipt_counters",
    "audit_events",
    "provider_exchanges",
)


def chosen_databases() -> list[str]:
    chosen = os.environ.get(DATABASES_ENV, ",".join(DATABASES)).split(",")
    unknown = set(chosen) - set(DATABASES)
    if unknown:
        raise ValueError(f"{DATABASES_ENV}: unknown databases {sorted(unknown)}")
    return chosen


def run_in_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion off the test loop (Alembic runs its own loop)."""

    async def main() -> T:
        return await make()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(sql: str) -> None:
    # A missing server must fail the run loudly, never skip: this raises.
    connection = await asyncpg.connect(_plain(POSTGRES_URL), timeout=10)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def create_postgres_database(
    prefix: str = "payments_test", *, migrate: bool = True, name: str | None = None
) -> str:
    if name is None:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    else:  # a fixed name: a process killed while making it may have left it half-made
        run_in_thread(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    run_in_thread(lambda: _admin(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    if migrate:
        upgrade(url)
    return url


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    run_in_thread(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def postgres_database(prefix: str = "payments_test") -> Iterator[str]:
    """A migrated database for this pytest process: its own, or its shared slot's."""
    slot = current_slot()
    if slot is not None:
        yield slot.database(prefix, lambda name: create_postgres_database(prefix, name=name))
        return
    url = create_postgres_database(prefix)
    try:
        yield url
    finally:
        drop_postgres_database(url)


def drop_postgres_databases_ending(suffix: str) -> None:
    """Drop every database whose name ends in `suffix` (a pool of shared slots' mark)."""

    async def drop() -> None:
        connection = await asyncpg.connect(_plain(POSTGRES_URL), timeout=10)
        try:
            names = await connection.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE '%' || $1", f"_{suffix}"
            )
            for row in names:
                await connection.execute(f'DROP DATABASE IF EXISTS "{row[0]}" WITH (FORCE)')
        finally:
            await connection.close()

    run_in_thread(drop)


def sqlite_template(folder: Path) -> Path:
    template = folder / "template.db"
    upgrade(f"sqlite+aiosqlite:///{template}")
    return template


def sqlite_copy(template: Path, folder: Path) -> str:
    target = folder / f"{uuid.uuid4().hex[:8]}.db"
    shutil.copy(template, target)
    return f"sqlite+aiosqlite:///{target}"


def set_postgres_database_reachable(url: str, reachable: bool) -> None:
    """Cut one test database off (refuse connections, end its sessions) or let it back in.

    Only that database: the shared server and everyone else's databases go on.
    """
    name = make_url(url).database
    run_in_thread(
        lambda: _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(reachable).lower()}')
    )
    if not reachable:
        run_in_thread(
            lambda: _admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
        )
