"""Fixtures shared by integration and end-to-end tests: real SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db.direct_pool import DirectPool
from server.adapters.db.engine import create_engine
from server.adapters.db.payment_statements import PgPaymentStatements
from server.adapters.db.unit_of_work import SqlUnitOfWork
from server.adapters.providers.mock import MockProvider
from server.service.dependencies import Dependencies
from tests.support.databases import (
    TABLES,
    chosen_databases,
    postgres_database,
    sqlite_copy,
    sqlite_template,
)
from tests.support.localstripe import localstripe
from tests.support.shared_services import release_slot

# Hypothesis's 200 ms deadline per example and its "too slow" check are clocks in an
# assertion: on a loaded machine (or under coverage and mutmut) they fail right tests.
settings.register_profile("payments", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("payments")


def pytest_sessionfinish() -> None:
    release_slot()


def _cost(item: pytest.Item) -> tuple[bool, bool, bool]:
    """Cheap tests first: unit, then SQLite, then PostgreSQL and localstripe."""
    node = item.nodeid
    return (
        not node.startswith("tests/unit/"),
        "postgres" in node or "localstripe" in node,
        "stripe" in node,
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # mutmut names a mutant's tests as a set, so they come in any order, and it stops at
    # the first failure (-x): the cheap tests that kill most mutants should go first.
    if os.environ.get("MUTANT_UNDER_TEST"):
        items.sort(key=_cost)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One localstripe process for the run; if it cannot start, the tests using it fail."""
    with localstripe(tmp_path_factory.mktemp("localstripe")) as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_template(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(params=chosen_databases())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each integration test runs on both databases, the PostgreSQL one emptied first."""
    if request.param == "sqlite":
        return sqlite_copy(request.getfixturevalue("sqlite_template_path"), tmp_path)
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            await connection.execute(sa.text(f"TRUNCATE {', '.join(TABLES)}"))
    yield engine
    await engine.dispose()


@pytest.fixture
def provider(tmp_path: Path) -> MockProvider:
    return MockProvider(ledger=tmp_path / "ledger.jsonl")


@pytest.fixture
def deps(engine: AsyncEngine, provider: MockProvider) -> Dependencies:
    """As `payments serve` builds them: on PostgreSQL the payment pipeline's statements too."""
    statements = None
    if engine.dialect.name == "postgresql":
        statements = PgPaymentStatements(DirectPool(engine))  # closed with the engine
    return Dependencies(
        uow=partial(SqlUnitOfWork, engine),
        provider=provider,
        simulation_enabled=True,
        simulator=provider,
        payment_statements=statements,
    )
