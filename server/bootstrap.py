"""Wires settings into dependencies: the one place that picks adapters."""

from __future__ import annotations

import math
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine

from server import faults
from server.adapters.broker.rabbitmq import RabbitPublisher
from server.adapters.db.direct_pool import DirectPool
from server.adapters.db.engine import create_engine, is_sqlite
from server.adapters.db.outbox_store import SqlOutboxStore
from server.adapters.db.payment_statements import PgPaymentStatements
from server.adapters.db.payment_webhooks import PgPaymentWebhooks
from server.adapters.db.provider_exchange_log import SqlExchangeLog
from server.adapters.db.unit_of_work import SqlUnitOfWork
from server.adapters.providers.mock import MockProvider
from server.adapters.providers.recording_http import RecordingHTTPXClient
from server.adapters.providers.resilience import CircuitBreaker, ResilientProvider
from server.adapters.providers.stripe_billing import StripeBilling
from server.adapters.providers.stripe_provider import StripeProvider
from server.adapters.rate_limit import LocalTokenBucket, RateLimiter, RedisTokenBucket
from server.adapters.sealing import KeyRing
from server.config import Settings
from server.domain.reconciliation import use_policy
from server.grpc.auth.interceptor import AuthInterceptor
from server.grpc.auth.tokens import TokenVerifier
from server.jobs.outbox_relay import OutboxRelay
from server.observability.tracing import instrument_engine
from server.service import page_tokens
from server.service.audit.exchange_log import ExchangeLog
from server.service.dependencies import Dependencies
from server.service.pipeline.idempotency import IdempotencyPolicy
from server.service.provider import PaymentProvider
from server.service.unit_of_work import UnitOfWorkFactory


def build_provider(
    settings: Settings, exchange_log: ExchangeLog | None = None
) -> tuple[ResilientProvider, MockProvider | None]:
    """The configured provider behind timeouts, retries and a breaker; and the mock if it is."""
    policy = settings.provider_policy
    inner: PaymentProvider
    mock = None
    if settings.provider == "stripe":
        recording = (
            RecordingHTTPXClient(exchange_log.record, policy.call_timeout_s)
            if exchange_log is not None
            else None
        )
        inner = StripeProvider(
            settings.stripe_api_key,
            settings.stripe_api_base,
            timeout_s=policy.call_timeout_s,
            http_client=recording,
        )
    else:
        inner = mock = MockProvider.configured(settings.mock)
    breaker = CircuitBreaker(policy.breaker_threshold, policy.breaker_reset_s)
    return ResilientProvider(inner, policy, breaker), mock


def build_dependencies(settings: Settings) -> tuple[Dependencies, AsyncEngine]:
    faults.arm(settings.crash_at)
    page_tokens.use_keys(settings.page_token_keys)
    use_policy(settings.waiting)
    engine = create_engine(settings.database_url)
    instrument_engine(engine)
    keys = KeyRing.parse(settings.provider_log_keys)
    exchange_log = SqlExchangeLog(engine, keys) if keys is not None else None
    provider, mock = build_provider(settings, exchange_log)
    direct = None if is_sqlite(settings.database_url) else DirectPool(engine)
    billing = None
    if settings.provider == "stripe":
        billing = StripeBilling(
            settings.stripe_api_key,
            settings.stripe_api_base,
            provider,
            settings.provider_policy.call_timeout_s,
        )
    deps = Dependencies(
        uow=partial(SqlUnitOfWork, engine),
        provider=provider,
        simulator=mock,
        idempotency=IdempotencyPolicy(
            retention=settings.idempotency_retention, lease=settings.idempotency_lease
        ),
        simulation_enabled=settings.simulation_enabled,
        dunning=settings.dunning,
        billing=billing,
        refund_window=settings.refund_window,
        merchant_name=settings.merchant_name,
        exchange_log=exchange_log,
        replica=build_replica(settings),
        # PostgreSQL's hot paths skip SQLAlchemy: one small asyncpg pool serves both.
        payment_statements=PgPaymentStatements(direct) if direct else None,
        payment_webhooks=PgPaymentWebhooks(direct) if direct else None,
    )
    return deps, engine


def build_replica(settings: Settings) -> UnitOfWorkFactory | None:
    """Read-only units of work on PAYMENTS_DATABASE_REPLICA_URL, when it is set.

    The engine connects on first use only, so processes that never read lists (worker,
    gateway) open no connection to it; the process's exit closes the pool.
    """
    if settings.database_replica_url is None:
        return None
    engine = create_engine(settings.database_replica_url)
    instrument_engine(engine)
    return partial(SqlUnitOfWork, engine, read_only=True)


# One batch is claimed and sent while the one before waits for its confirms: the relay
# then uses more than one core (bench/relay_load.py; docs/benchmarks.md).
RELAY_BATCHES_IN_FLIGHT = 2


def build_outbox_relay(
    settings: Settings, deps: Dependencies, engine: AsyncEngine
) -> OutboxRelay | None:
    """The relay to the broker when PAYMENTS_BROKER_URL is set; None otherwise."""
    if settings.broker_url is None:
        return None
    return OutboxRelay(
        SqlOutboxStore(engine),
        RabbitPublisher(settings.broker_url),
        deps.clock,
        concurrency=RELAY_BATCHES_IN_FLIGHT,
    )


SIMULATE_PAYMENT = "/payments.v1.PaymentService/SimulatePayment"


def build_rate_limiter(settings: Settings) -> RateLimiter | None:
    """Per-principal token buckets; shared through Redis when PAYMENTS_REDIS_URL is set."""
    rate = settings.rate_limit_per_second
    if rate <= 0:
        return None
    burst = settings.rate_limit_burst or max(1, math.ceil(rate))
    if settings.redis_url:
        return RedisTokenBucket(settings.redis_url, rate, burst)
    return LocalTokenBucket(rate, burst)


def build_auth(settings: Settings) -> AuthInterceptor:
    """Token checks when auth is configured (else every caller is anonymous), rate limits,
    and SimulatePayment only where simulation is enabled."""
    return AuthInterceptor(
        TokenVerifier(settings.auth) if settings.auth.enabled else None,
        build_rate_limiter(settings),
        hidden=frozenset() if settings.simulation_enabled else frozenset({SIMULATE_PAYMENT}),
    )
