"""What each `payments` command does and which environment variables it reads.

The help text is built from these lists; tests/unit/test_cli.py checks that every
variable the code reads is named by some command and none is named that the code
does not read.
"""

from __future__ import annotations

from dataclasses import dataclass

BASICS = ("PAYMENTS_ENV", "PAYMENTS_DATABASE_URL", "PAYMENTS_LOG_LEVEL", "PAYMENTS_LOG_FORMAT")
PROVIDER = (
    "PAYMENTS_PROVIDER",
    "STRIPE_API_KEY",
    "STRIPE_API_BASE",
    "PAYMENTS_PROVIDER_TIMEOUT_SECONDS",
    "PAYMENTS_PROVIDER_ATTEMPTS",
    "PAYMENTS_BREAKER_THRESHOLD",
    "PAYMENTS_BREAKER_RESET_SECONDS",
    "PAYMENTS_MOCK_LATENCY_MS",
    "PAYMENTS_MOCK_LEDGER",
    "PAYMENTS_MOCK_STORE",
    "PAYMENTS_MOCK_FAULTS",
    "PAYMENTS_PROVIDER_LOG_KEYS",
)
# What the service decides about money and records: both the API and the jobs read it.
RULES = ("PAYMENTS_REFUND_WINDOW_DAYS", "PAYMENTS_MERCHANT_NAME")
JOBS = (
    "PAYMENTS_RECONCILE_INTERVAL_SECONDS",
    "PAYMENTS_RECONCILE_SCHEDULE_SECONDS",
    "PAYMENTS_STRANDED_AFTER_SECONDS",
    "PAYMENTS_ABANDONED_AFTER_SECONDS",
    "PAYMENTS_RENEWAL_INTERVAL_SECONDS",
    "PAYMENTS_DUNNING_DAYS",
    "PAYMENTS_REVENUE_ROLLUP_INTERVAL_SECONDS",
    "PAYMENTS_REAPER_INTERVAL_SECONDS",
    "PAYMENTS_IDEMPOTENCY_RETENTION_HOURS",
    "PAYMENTS_OUTBOX_RETENTION_HOURS",
    "PAYMENTS_BROKER_URL",
    "PAYMENTS_RECEIPT_INTERVAL_SECONDS",
    "PAYMENTS_AUDIT_RETENTION_DAYS",
)
COMMAND_QUEUE = (
    "PAYMENTS_COMMANDS_ENABLED",
    "PAYMENTS_COMMAND_QUEUE",
    "PAYMENTS_COMMAND_PREFETCH",
    "PAYMENTS_COMMAND_CONSUMERS",
    "PAYMENTS_COMMAND_DELIVERY_LIMIT",
    "PAYMENTS_COMMAND_RETRY_SECONDS",
)
TELEMETRY = (
    "PAYMENTS_METRICS_ADDRESS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
)
AUTH = (
    "PAYMENTS_AUTH_JWT_SECRET",
    "PAYMENTS_AUTH_JWKS_URL",
    "PAYMENTS_AUTH_ISSUER",
    "PAYMENTS_AUTH_AUDIENCE",
    "PAYMENTS_AUTH_ADMIN_ROLE",
    "PAYMENTS_AUTH_SERVICE_ROLE",
)
SERVING = (
    "PAYMENTS_GRPC_ADDRESS",
    "PAYMENTS_SERVER_PROCESSES",
    "PAYMENTS_DRAIN_SECONDS",
    "PAYMENTS_HEALTH_INTERVAL_SECONDS",
    "PAYMENTS_IDEMPOTENCY_LEASE_SECONDS",
    "PAYMENTS_PAGE_TOKEN_KEY",
    *AUTH,
    "PAYMENTS_TLS_CERT_FILE",
    "PAYMENTS_TLS_KEY_FILE",
    "PAYMENTS_TLS_CLIENT_CA_FILE",
    "PAYMENTS_RATE_LIMIT_PER_SECOND",
    "PAYMENTS_RATE_LIMIT_BURST",
    "PAYMENTS_REDIS_URL",
    "PAYMENTS_TEST_CRASH_AT",
)
GATEWAY = ("PAYMENTS_GATEWAY_ADDRESS", "STRIPE_WEBHOOK_SECRET")


@dataclass(frozen=True)
class Command:
    summary: str  # one line, for `payments --help`
    description: str  # the paragraph of `payments <command> --help`
    settings: tuple[str, ...]

    def epilog(self) -> str:
        names = ", ".join(dict.fromkeys(self.settings))
        return (
            f"Configuration comes from the environment only; this command reads: {names}. "
            "Secrets also from a file: NAME_FILE (PAYMENTS_AUTH_JWT_SECRET_FILE, "
            "PAYMENTS_PAGE_TOKEN_KEY_FILE, STRIPE_API_KEY_FILE, STRIPE_WEBHOOK_SECRET_FILE). "
            "Defaults and meanings: docs/operations.md, section Configuration."
        )


COMMANDS = {
    "serve": Command(
        "run the gRPC API (and the background jobs)",
        "Serve the gRPC API on PAYMENTS_GRPC_ADDRESS, with health and reflection, and run "
        "the background jobs (reconciler, renewals, refund janitor, receipt numbering, "
        "outbox relay, key reaper, audit pruner) unless --no-jobs. On the embedded SQLite "
        "default it creates and migrates the database itself; on PostgreSQL run "
        "`payments migrate` first. With PAYMENTS_SERVER_PROCESSES above 1 (by default one "
        "per CPU on PostgreSQL with a shared provider) it runs that many server processes on "
        "the one port and the jobs once, in the process that started them. SIGTERM drains "
        "every process: NOT_SERVING for PAYMENTS_DRAIN_SECONDS, then calls in flight finish. "
        "Ctrl-C (SIGINT) in development and test stops at once.",
        (*BASICS, "PAYMENTS_DATABASE_REPLICA_URL", *SERVING, *PROVIDER, *RULES, *JOBS, *TELEMETRY),
    ),
    "worker": Command(
        "run the background jobs only",
        "Run the background jobs without serving gRPC: reconciler, subscription renewals, "
        "refund janitor, revenue roll-up, receipt numbering, outbox relay (with "
        "PAYMENTS_BROKER_URL) and pruner, idempotency key reaper, audit pruner; and, with "
        "a broker, the consumer of the command queue (commands sent over RabbitMQ "
        "instead of gRPC). Several workers share the work safely.",
        (*BASICS, *PROVIDER, *RULES, *JOBS, *COMMAND_QUEUE, *TELEMETRY),
    ),
    "gateway": Command(
        "run the Stripe webhook sidecar (HTTP)",
        "Serve POST /webhooks/stripe, /healthz and /readyz on PAYMENTS_GATEWAY_ADDRESS: "
        "verify each Stripe event's signature with STRIPE_WEBHOOK_SECRET and apply it to "
        "the database. It says at start which event types it will apply and which it "
        "will store as ignored with the configured provider.",
        (*BASICS, *GATEWAY, *PROVIDER, *RULES, *TELEMETRY),
    ),
    "webhook": Command(
        "try the webhook sidecar with a signed test event",
        "Send events to a running `payments gateway`, signed as Stripe signs them.",
        (*BASICS, *GATEWAY),
    ),
    "webhook send": Command(
        "post a signed, realistic Stripe event about a payment to the sidecar",
        "Like `stripe trigger`: build the Stripe event EVENT_TYPE about the payment "
        "--payment (its PaymentIntent id, amount, currency and our ids, read from the "
        "database), sign it with the first STRIPE_WEBHOOK_SECRET and POST it to the "
        "sidecar (--url, default: PAYMENTS_GATEWAY_ADDRESS on this machine). Prints the "
        "HTTP status and the sidecar's answer; exit 1 unless it is 2xx.",
        (*BASICS, *GATEWAY, *PROVIDER),
    ),
    "webhooks": Command(
        "stored webhook events",
        "Work on the webhook events the sidecar stored.",
        (*BASICS, *PROVIDER),
    ),
    "webhooks replay": Command(
        "apply again the stored events whose application failed",
        "Apply again, oldest first, at most --limit stored webhook events whose "
        "application failed, and print how many were applied, stale, ignored, duplicate "
        "or failed again.",
        (*BASICS, *PROVIDER, *RULES),
    ),
    "migrate": Command(
        "upgrade the database schema to the newest",
        "Run the Alembic migrations up to the newest schema on PAYMENTS_DATABASE_URL. "
        "Run it once per release, before the new servers start.",
        BASICS,
    ),
    "token": Command(
        "print a bearer token for development and operations",
        "Print an HS256 bearer token (JWT) for --subject with the given roles, signed "
        "with the first PAYMENTS_AUTH_JWT_SECRET, carrying PAYMENTS_AUTH_ISSUER and "
        "PAYMENTS_AUTH_AUDIENCE when they are set.",
        ("PAYMENTS_LOG_LEVEL", "PAYMENTS_LOG_FORMAT", *AUTH),
    ),
}
