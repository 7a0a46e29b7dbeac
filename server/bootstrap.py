"""Wires settings into dependencies: the one place that picks adapters."""

from __future__ import annotations

from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.broker.rabbitmq import RabbitPublisher
from server.adapters.db.engine import create_engine
from server.adapters.db.outbox_store import SqlOutboxStore
from server.adapters.db.unit_of_work import SqlUnitOfWork
from server.adapters.providers.base import PaymentProvider
from server.adapters.providers.mock import MockProvider
from server.adapters.providers.resilience import CircuitBreaker, ResilientProvider
from server.adapters.providers.stripe_provider import StripeProvider
from server.config import Settings
from server.jobs.outbox_relay import OutboxRelay
from server.observability.tracing import instrument_engine
from server.service.dependencies import Dependencies
from server.service.idempotency import IdempotencyPolicy


def build_provider(settings: Settings) -> tuple[ResilientProvider, MockProvider | None]:
    """The configured provider behind timeouts, retries and a breaker; and the mock if it is."""
    policy = settings.provider_policy
    inner: PaymentProvider
    mock = None
    if settings.provider == "stripe":
        inner = StripeProvider(
            settings.stripe_api_key, settings.stripe_api_base, timeout_s=policy.call_timeout_s
        )
    else:
        inner = mock = MockProvider.from_env()
    breaker = CircuitBreaker(policy.breaker_threshold, policy.breaker_reset_s)
    return ResilientProvider(inner, policy, breaker), mock


def build_dependencies(settings: Settings) -> tuple[Dependencies, AsyncEngine]:
    engine = create_engine(settings.database_url)
    instrument_engine(engine)
    provider, mock = build_provider(settings)
    deps = Dependencies(
        uow=partial(SqlUnitOfWork, engine),
        provider=provider,
        simulator=mock,
        idempotency=IdempotencyPolicy(
            retention=settings.idempotency_retention, lease=settings.idempotency_lease
        ),
        simulation_enabled=settings.simulation_enabled,
    )
    return deps, engine


def build_outbox_relay(
    settings: Settings, deps: Dependencies, engine: AsyncEngine
) -> OutboxRelay | None:
    """The relay to the broker when PAYMENTS_BROKER_URL is set; None otherwise."""
    if settings.broker_url is None:
        return None
    return OutboxRelay(SqlOutboxStore(engine), RabbitPublisher(settings.broker_url), deps.clock)
