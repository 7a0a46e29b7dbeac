"""Settings from the environment, read once at start-up; docs/operations.md lists each variable."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from server.adapters.sealing import KeyRing, KeyRingError
from server.domain.reconciliation import DEFAULT_SCHEDULE, WaitingPolicy
from server.domain.refund_window import DEFAULT_REFUND_WINDOW
from server.domain.subscription import DEFAULT_DUNNING
from server.faults import CRASH_AT_ENV

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./payments.db"
ENVIRONMENTS = ("development", "test", "staging", "production")
PROVIDERS = ("mock", "stripe")
# Where the service may run without authentication (with a loud warning).
OPEN_ENVIRONMENTS = ("development", "test")
# HS256 is only as strong as its secret (RFC 7518 3.2: at least the hash size).
MIN_JWT_SECRET_BYTES = 32


def database_url() -> str:
    """The primary database; the URL holds a password, so it may come from a file too."""
    return secret(os.environ, "PAYMENTS_DATABASE_URL") or DEFAULT_DATABASE_URL


@dataclass(frozen=True, slots=True)
class ResiliencePolicy:
    """How provider calls are bounded, retried and cut off (see adapters/providers/resilience)."""

    attempts: int = 3
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 2.0
    call_timeout_s: float = 10.0
    breaker_threshold: int = 5
    breaker_reset_s: float = 30.0


@dataclass(frozen=True, slots=True)
class MockSettings:
    """The mock provider's knobs (PAYMENTS_MOCK_*), for tests and local runs."""

    latency_s: float = 0.0
    # Every charge appended to this file (tests read it).
    ledger: Path | None = None
    # Its SQLite memory, shared by serve and worker and kept through SIGKILL; None: in memory.
    store: Path | None = None
    # The JSON fault plan, read again whenever it changes.
    faults: Path | None = None


@dataclass(frozen=True, slots=True)
class CommandQueueSettings:
    """The command queue `payments worker` consumes (see adapters/broker/command_consumer)."""

    queue: str = "payments.commands"
    prefetch: int = 10
    consumers: int = 1
    # Deliveries after which a command that keeps failing for a passing reason is
    # dead-lettered by RabbitMQ itself (quorum queues count them).
    delivery_limit: int = 20
    retry_delay_s: float = 1.0

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dead"


class ConfigError(Exception):
    """The environment asks for something the service cannot do; the message says what."""


def log_level(env: Mapping[str, str] = os.environ) -> str:
    """PAYMENTS_LOG_LEVEL, read before the rest so that their errors can be logged."""
    return env.get("PAYMENTS_LOG_LEVEL") or "INFO"


def log_format(env: Mapping[str, str] = os.environ) -> str:
    """PAYMENTS_LOG_FORMAT: `json`, `text`, or `auto` (text when stderr is a terminal);
    read before the rest, like the level."""
    chosen = env.get("PAYMENTS_LOG_FORMAT") or "auto"
    if chosen not in ("auto", "json", "text"):
        raise ConfigError("PAYMENTS_LOG_FORMAT must be auto, json or text")
    return chosen


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
    auth: AuthSettings = field(default_factory=lambda: AuthSettings())
    tls: TlsSettings | None = None
    # Token bucket per principal on mutating RPCs; 0 turns rate limiting off.
    rate_limit_per_second: float = 0
    rate_limit_burst: int = 0
    redis_url: str | None = field(default=None, repr=False)
    renewal_interval_seconds: float = 60
    # Retries of a failed renewal charge, counted from the period start.
    dunning: tuple[timedelta, ...] = DEFAULT_DUNNING
    # How often readiness asks the database `SELECT 1`.
    health_interval_seconds: float = 2.0

    # HMAC keys of page tokens, the current one first; empty: the development key.
    page_token_keys: tuple[str, ...] = field(default=(), repr=False)
    # How often revenue changes are summed into payment_revenue_hours.
    revenue_rollup_interval_seconds: float = 10.0
    # OpenTelemetry's own OTEL_* variables and PAYMENTS_METRICS_ADDRESS, for the exporters.
    telemetry: Mapping[str, str] = field(default_factory=dict)
    # The crash point a test armed (PAYMENTS_TEST_CRASH_AT); only ever set when PAYMENTS_ENV=test.
    crash_at: str = ""
    # When the reconciler looks at waiting payments; when stranded or abandoned ones end.
    waiting: WaitingPolicy = field(default_factory=WaitingPolicy)
    # How long after the capture CreateRefund is allowed (admins may override).
    refund_window: timedelta = DEFAULT_REFUND_WINDOW
    # The seller named on receipts, and how often waiting receipts are numbered.
    merchant_name: str = "Payments"
    receipt_interval_seconds: float = 2.0
    # `payments worker` consumes the command queue when a broker is set and this is on.
    commands_enabled: bool = True
    # Audit records older than this are deleted by the worker.
    audit_retention: timedelta = timedelta(days=3650)
    # `id:base64(32 bytes),...`, the sealing key first: keep the provider's exchanges.
    provider_log_keys: str = field(default="", repr=False)
    command_queue: CommandQueueSettings = field(default_factory=CommandQueueSettings)
    # A streaming replica for the reads that tolerate its lag (lists, analytics).
    database_replica_url: str | None = field(default=None, repr=False)
    mock: MockSettings = field(default_factory=MockSettings)
    # How many processes `payments serve` runs on its one port (server/process_group.py),
    # and why one is the default here, when it is ("" when nothing argues against more).
    server_processes: int = 1
    one_process_reason: str = ""

    def check_serving_security(self) -> None:
        """Outside development and test, refuse to serve money to anyone who can connect."""
        if not self.auth.enabled and self.environment not in OPEN_ENVIRONMENTS:
            raise ConfigError(
                f"PAYMENTS_ENV={self.environment} refuses to start without authentication: "
                "set PAYMENTS_AUTH_JWT_SECRET (or _FILE) or PAYMENTS_AUTH_JWKS_URL"
            )
        if not self.page_token_keys and self.environment not in OPEN_ENVIRONMENTS:
            # The development key is public: anyone could forge a page token with it.
            raise ConfigError(
                f"PAYMENTS_ENV={self.environment} refuses to start without a page-token key: "
                f"set PAYMENTS_PAGE_TOKEN_KEY (or _FILE), at least {MIN_JWT_SECRET_BYTES} bytes"
            )

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
        stripe_api_key = secret(env, "STRIPE_API_KEY")
        if provider == "stripe" and not stripe_api_key:
            raise ConfigError("PAYMENTS_PROVIDER=stripe needs STRIPE_API_KEY")
        url = database_url()
        one_process_reason = _one_process_reason(env, url, provider)
        return cls(
            database_url=url,
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
                env, "PAYMENTS_RECONCILE_INTERVAL_SECONDS", 10, minimum=0.1
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
            broker_url=secret(env, "PAYMENTS_BROKER_URL") or None,
            outbox_retention=timedelta(
                hours=_number(env, "PAYMENTS_OUTBOX_RETENTION_HOURS", 72, minimum=1)
            ),
            health_interval_seconds=_number(
                env, "PAYMENTS_HEALTH_INTERVAL_SECONDS", 2, minimum=0.1
            ),
            stripe_webhook_secrets=secrets(env, "STRIPE_WEBHOOK_SECRET"),
            page_token_keys=_page_token_keys(env),
            auth=AuthSettings.from_env(env),
            tls=TlsSettings.from_env(env),
            telemetry={
                name: value
                for name, value in env.items()
                if name.startswith("OTEL_") or name == "PAYMENTS_METRICS_ADDRESS"
            },
            crash_at=env.get(CRASH_AT_ENV, "") if environment == "test" else "",
            rate_limit_per_second=_number(env, "PAYMENTS_RATE_LIMIT_PER_SECOND", 0, minimum=0),
            rate_limit_burst=int(_number(env, "PAYMENTS_RATE_LIMIT_BURST", 0, minimum=0)),
            redis_url=secret(env, "PAYMENTS_REDIS_URL") or None,
            renewal_interval_seconds=_number(
                env, "PAYMENTS_RENEWAL_INTERVAL_SECONDS", 60, minimum=0.1
            ),
            dunning=_dunning(env.get("PAYMENTS_DUNNING_DAYS")),
            revenue_rollup_interval_seconds=_number(
                env, "PAYMENTS_REVENUE_ROLLUP_INTERVAL_SECONDS", 10, minimum=0.1
            ),
            waiting=WaitingPolicy(
                schedule=_schedule(env.get("PAYMENTS_RECONCILE_SCHEDULE_SECONDS")),
                stranded_after=timedelta(
                    seconds=_number(env, "PAYMENTS_STRANDED_AFTER_SECONDS", 120, minimum=1)
                ),
                expire_after=timedelta(
                    seconds=_number(env, "PAYMENTS_ABANDONED_AFTER_SECONDS", 86400, minimum=1)
                ),
            ),
            refund_window=timedelta(
                days=_number(env, "PAYMENTS_REFUND_WINDOW_DAYS", 90, minimum=0)
            ),
            merchant_name=env.get("PAYMENTS_MERCHANT_NAME") or "Payments",
            receipt_interval_seconds=_number(
                env, "PAYMENTS_RECEIPT_INTERVAL_SECONDS", 2, minimum=0.1
            ),
            provider_log_keys=_provider_log_keys(env),
            audit_retention=timedelta(
                days=_number(env, "PAYMENTS_AUDIT_RETENTION_DAYS", 3650, minimum=1)
            ),
            commands_enabled=_flag(env, "PAYMENTS_COMMANDS_ENABLED", default=True),
            command_queue=CommandQueueSettings(
                queue=env.get("PAYMENTS_COMMAND_QUEUE") or "payments.commands",
                prefetch=int(_number(env, "PAYMENTS_COMMAND_PREFETCH", 10, minimum=1)),
                consumers=int(_number(env, "PAYMENTS_COMMAND_CONSUMERS", 1, minimum=1)),
                delivery_limit=int(_number(env, "PAYMENTS_COMMAND_DELIVERY_LIMIT", 20, minimum=1)),
                retry_delay_s=_number(env, "PAYMENTS_COMMAND_RETRY_SECONDS", 1, minimum=0.01),
            ),
            database_replica_url=secret(env, "PAYMENTS_DATABASE_REPLICA_URL") or None,
            mock=MockSettings(
                latency_s=_number(env, "PAYMENTS_MOCK_LATENCY_MS", 0, minimum=0) / 1000,
                ledger=_path(env, "PAYMENTS_MOCK_LEDGER"),
                store=_path(env, "PAYMENTS_MOCK_STORE"),
                faults=_path(env, "PAYMENTS_MOCK_FAULTS"),
            ),
            server_processes=_server_processes(env, one_process_reason),
            one_process_reason=one_process_reason,
        )


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Bearer JWT verification: HS256 secrets, a JWKS URL (RS256/ES256), or both."""

    # HS256 secrets, the current one first; more than one only while rolling.
    jwt_secrets: tuple[str, ...] = field(default=(), repr=False)
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    admin_role: str = "admin"
    service_role: str = "service"

    @property
    def jwt_secret(self) -> str:
        """The current HS256 secret: the one `payments token` signs with."""
        return self.jwt_secrets[0] if self.jwt_secrets else ""

    @property
    def enabled(self) -> bool:
        return bool(self.jwt_secrets or self.jwks_url)

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str]) -> AuthSettings:
        jwt_secrets = secrets(env, "PAYMENTS_AUTH_JWT_SECRET")
        if any(len(one.encode()) < MIN_JWT_SECRET_BYTES for one in jwt_secrets):
            raise ConfigError(
                f"PAYMENTS_AUTH_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes"
                " (each, when several are given)"
            )
        jwks_url = env.get("PAYMENTS_AUTH_JWKS_URL") or None
        if jwks_url and not jwks_url.startswith(("https://", "http://")):
            raise ConfigError("PAYMENTS_AUTH_JWKS_URL must be an http(s) URL")
        return cls(
            jwt_secrets=jwt_secrets,
            jwks_url=jwks_url,
            issuer=env.get("PAYMENTS_AUTH_ISSUER") or None,
            audience=env.get("PAYMENTS_AUTH_AUDIENCE") or None,
            admin_role=env.get("PAYMENTS_AUTH_ADMIN_ROLE") or "admin",
            service_role=env.get("PAYMENTS_AUTH_SERVICE_ROLE") or "service",
        )


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """The server's certificate and key (PEM), and the CA its clients' certificates need."""

    certificate: bytes = field(repr=False)
    private_key: bytes = field(repr=False)
    client_ca: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str]) -> TlsSettings | None:
        cert, key = env.get("PAYMENTS_TLS_CERT_FILE"), env.get("PAYMENTS_TLS_KEY_FILE")
        ca = env.get("PAYMENTS_TLS_CLIENT_CA_FILE")
        if not (cert or key or ca):
            return None
        if not (cert and key):
            raise ConfigError("TLS needs both PAYMENTS_TLS_CERT_FILE and PAYMENTS_TLS_KEY_FILE")
        return cls(
            _read(cert, "PAYMENTS_TLS_CERT_FILE"),
            _read(key, "PAYMENTS_TLS_KEY_FILE"),
            _read(ca, "PAYMENTS_TLS_CLIENT_CA_FILE") if ca else None,
        )


def secret(env: os._Environ[str] | dict[str, str], name: str) -> str:
    """A secret from `name`, or from the file named by `name`_FILE (Docker/Kubernetes secrets)."""
    value = env.get(name, "")
    path = env.get(f"{name}_FILE", "")
    if value and path:
        raise ConfigError(f"set {name} or {name}_FILE, not both")
    return _read(path, f"{name}_FILE").decode().strip() if path else value


def secrets(env: os._Environ[str] | dict[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of secrets, the current one first: several while one is rolled."""
    return tuple(one.strip() for one in secret(env, name).split(",") if one.strip())


def _page_token_keys(env: os._Environ[str] | dict[str, str]) -> tuple[str, ...]:
    keys = secrets(env, "PAYMENTS_PAGE_TOKEN_KEY")
    if any(len(one.encode()) < MIN_JWT_SECRET_BYTES for one in keys):
        raise ConfigError(
            f"PAYMENTS_PAGE_TOKEN_KEY must be at least {MIN_JWT_SECRET_BYTES} bytes"
            " (each, when several are given)"
        )
    return keys


def _read(path: str, name: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        # The path is configuration, not a secret; the content never appears in messages.
        raise ConfigError(f"{name}: cannot read {path}: {error.strerror}") from None


def _number(
    env: os._Environ[str] | dict[str, str], name: str, default: float, minimum: float
) -> float:
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


def _path(env: os._Environ[str] | dict[str, str], name: str) -> Path | None:
    raw = env.get(name)
    return Path(raw) if raw else None


def _one_process_reason(env: Mapping[str, str], url: str, provider: str) -> str:
    """Why several server processes would do no good here; "" when nothing argues against."""
    if url.partition(":")[0].partition("+")[0] == "sqlite":
        return "the embedded SQLite database takes one writer at a time"
    if provider == "mock" and not env.get("PAYMENTS_MOCK_STORE"):
        # Each process would have its own mock: a payment made through one would be
        # unknown to the others (capture, refund, the reconciler).
        return "the mock provider keeps its payments in one process's memory"
    return ""


def _server_processes(env: Mapping[str, str], one_process_reason: str) -> int:
    """PAYMENTS_SERVER_PROCESSES: a number, or `auto` (the default): one where a reason
    says so, else the CPUs this process may use."""
    raw = (env.get("PAYMENTS_SERVER_PROCESSES") or "auto").strip().lower()
    linux = sys.platform == "linux"  # SO_REUSEPORT spreading and PR_SET_PDEATHSIG are Linux's
    if raw == "auto":
        return 1 if one_process_reason or not linux else available_cpus()
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"PAYMENTS_SERVER_PROCESSES must be auto or at least 1, got {raw!r}")
    if int(raw) > 1 and not linux:
        raise ConfigError("PAYMENTS_SERVER_PROCESSES above 1 needs Linux")
    return int(raw)


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may run on, capped by its cgroup's CPU quota (a container's
    CPU limit, which the affinity mask does not show), rounded up."""
    cpus = len(os.sched_getaffinity(0))
    quota = _cgroup_cpu_quota(cgroup)
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def _cgroup_cpu_quota(root: Path) -> float | None:
    """CPUs' worth of time per period the cgroup allows (v2 cpu.max, else v1); None: no limit."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    try:
        return int(quota) / int(period) if int(quota) > 0 and int(period) > 0 else None
    except ValueError:  # "max": no limit
        return None


def _provider_log_keys(env: os._Environ[str] | dict[str, str]) -> str:
    """Checked here, so that a bad key list stops the start, not the first payment."""
    text = secret(env, "PAYMENTS_PROVIDER_LOG_KEYS")
    try:
        KeyRing.parse(text)
    except KeyRingError as error:
        raise ConfigError(f"PAYMENTS_PROVIDER_LOG_KEYS: {error}") from None
    return text


def _flag(env: os._Environ[str] | dict[str, str], name: str, *, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "on", "yes"):
        return True
    if raw in ("0", "false", "off", "no"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _dunning(raw: str | None) -> tuple[timedelta, ...]:
    """PAYMENTS_DUNNING_DAYS, e.g. "1,3,5": increasing days after the period start; "" none."""
    if raw is None:
        return DEFAULT_DUNNING
    days = _increasing(raw, "PAYMENTS_DUNNING_DAYS", "1,3,5")
    return tuple(timedelta(days=day) for day in days)


def _schedule(raw: str | None) -> tuple[timedelta, ...]:
    """PAYMENTS_RECONCILE_SCHEDULE_SECONDS, e.g. "20,300,3600,86400"."""
    if raw is None or not raw.strip():
        return DEFAULT_SCHEDULE
    steps = _increasing(raw, "PAYMENTS_RECONCILE_SCHEDULE_SECONDS", "20,300,3600")
    if not steps:
        raise ConfigError("PAYMENTS_RECONCILE_SCHEDULE_SECONDS needs at least one step")
    return tuple(timedelta(seconds=step) for step in steps)


def _increasing(raw: str, name: str, example: str) -> list[float]:
    """A comma-separated list of positive, increasing numbers."""
    try:
        values = [float(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{name} must be numbers like {example}, got {raw!r}") from None
    if any(value <= 0 for value in values) or values != sorted(set(values)):
        raise ConfigError(f"{name} must be positive and increasing, like {example}")
    return values
