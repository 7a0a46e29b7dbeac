"""Wires settings into dependencies: the one place that picks adapters."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db.engine import create_engine
from server.adapters.db.unit_of_work import SqlUnitOfWork
from server.adapters.providers.base import PaymentProvider
from server.adapters.providers.mock import MockProvider
from server.config import Settings
from server.service.dependencies import Dependencies
from server.service.idempotency import IdempotencyPolicy


def build_provider(settings: Settings) -> PaymentProvider:
    del settings  # only the mock exists so far; Settings refuses the rest
    return MockProvider.from_env()


def build_dependencies(settings: Settings) -> tuple[Dependencies, AsyncEngine]:
    engine = create_engine(settings.database_url)
    deps = Dependencies(
        uow=lambda: SqlUnitOfWork(engine),
        provider=build_provider(settings),
        idempotency=IdempotencyPolicy(
            retention=settings.idempotency_retention, lease=settings.idempotency_lease
        ),
        simulation_enabled=settings.simulation_enabled,
    )
    return deps, engine
