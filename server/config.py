"""Settings from the environment (DESIGN section 4); read once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

from server.adapters.providers.resilience import ResiliencePolicy

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./payments.db"
ENVIRONMENTS = ("development", "test", "staging", "production")
PROVIDERS = ("mock", "stripe")


def database_url() -> str:
    return os.environ.get("PAYMENTS_DATABASE_URL") or DEFAULT_DATABASE_URL


class ConfigError(Exception):
    """The environment asks for something the service cannot do; the message says what."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    environment: str
    provider: str
    grpc_address: str
    idempotency_retention: timedelta
    idempotency_lease: timedelta
    drain_seconds: float
    reaper_interval_seconds: float
    reconcile_interval_seconds: float
    stripe_api_key: str = field(repr=False)
    stripe_api_base: str | None
    provider_policy: ResiliencePolicy
    gateway_address: str = "0.0.0.0:8080"
    # amqp://... : relay the outbox to RabbitMQ; None: events stay in the outbox.
    broker_url: str | None = field(default=None, repr=False)
    outbox_retention: timedelta = timedelta(hours=72)
    # Endpoint secrets (whsec_...); several while one is being rolled.
    stripe_webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    # How often revenue changes are summed into payment_revenue_hours.
    revenue_rollup_interval_seconds: float = 10.0

    @property
    def simulation_enabled(self) -> bool:
        return self.environment in ("development", "test")

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        environment = env.get("PAYMENTS_ENV", "development")
        if environment not in ENVIRONMENTS:
            raise ConfigError(f"PAYMENTS_ENV must be one of {', '.join(ENVIRONMENTS)}")
        provider = env.get("PAYMENTS_PROVIDER", "mock")
        if provider not in PROVIDERS:
            raise ConfigError(f"PAYMENTS_PROVIDER must be one of {', '.join(PROVIDERS)}")
        stripe_api_key = env.get("STRIPE_API_KEY", "")
        if provider == "stripe" and not stripe_api_key:
            raise ConfigError("PAYMENTS_PROVIDER=stripe needs STRIPE_API_KEY")
        return cls(
            database_url=database_url(),
            environment=environment,
            provider=provider,
            grpc_address=env.get("PAYMENTS_GRPC_ADDRESS", "[::]:50051"),
            idempotency_retention=timedelta(
                hours=_number(env, "PAYMENTS_IDEMPOTENCY_RETENTION_HOURS", 24, minimum=24)
            ),
            idempotency_lease=timedelta(
                seconds=_number(env, "PAYMENTS_IDEMPOTENCY_LEASE_SECONDS", 30, minimum=1)
            ),
            drain_seconds=_number(env, "PAYMENTS_DRAIN_SECONDS", 5, minimum=0),
            reaper_interval_seconds=_number(env, "PAYMENTS_REAPER_INTERVAL_SECONDS", 300, 1),
            reconcile_interval_seconds=_number(
                env, "PAYMENTS_RECONCILE_INTERVAL_SECONDS", 60, minimum=0.1
            ),
            stripe_api_key=stripe_api_key,
            stripe_api_base=env.get("STRIPE_API_BASE") or None,
            provider_policy=ResiliencePolicy(
                attempts=int(_number(env, "PAYMENTS_PROVIDER_ATTEMPTS", 3, minimum=1)),
                call_timeout_s=_number(env, "PAYMENTS_PROVIDER_TIMEOUT_SECONDS", 10, 0.1),
                breaker_threshold=int(_number(env, "PAYMENTS_BREAKER_THRESHOLD", 5, minimum=1)),
                breaker_reset_s=_number(env, "PAYMENTS_BREAKER_RESET_SECONDS", 30, minimum=0.1),
            ),
            gateway_address=env.get("PAYMENTS_GATEWAY_ADDRESS") or "0.0.0.0:8080",
            broker_url=env.get("PAYMENTS_BROKER_URL") or None,
            outbox_retention=timedelta(
                hours=_number(env, "PAYMENTS_OUTBOX_RETENTION_HOURS", 72, minimum=1)
            ),
            stripe_webhook_secrets=tuple(
                secret.strip()
                for secret in env.get("STRIPE_WEBHOOK_SECRET", "").split(",")
                if secret.strip()
            ),
            revenue_rollup_interval_seconds=_number(
                env, "PAYMENTS_REVENUE_ROLLUP_INTERVAL_SECONDS", 10, minimum=0.1
            ),
        )


def _number(env: os._Environ[str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value
