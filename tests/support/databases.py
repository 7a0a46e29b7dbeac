"""Real databases for tests: a migrated SQLite file per test, one PostgreSQL database per run."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from server.adapters.db.migrations import upgrade

T = TypeVar("T")
POSTGRES_URL = os.environ.get(
    "PAYMENTS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
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


def create_postgres_database(prefix: str = "payments_test", *, migrate: bool = True) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    run_in_thread(lambda: _admin(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    if migrate:
        upgrade(url)
    return url


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    run_in_thread(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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
