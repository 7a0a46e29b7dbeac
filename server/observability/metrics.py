"""OpenTelemetry metrics: every instrument the runbook lists, in one place.

Instruments are made on the API's proxy meter at import, so recording costs a
no-op call until `configure_metrics` installs a provider: a Prometheus scrape
endpoint on PAYMENTS_METRICS_ADDRESS, and/or OTLP when OTEL_METRICS_EXPORTER=otlp.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from server.config import ConfigError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

_log = logging.getLogger(__name__)
_meter = metrics.get_meter("payments")
# Seconds; gRPC calls and provider calls take from a millisecond to a timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

rpc_duration = _meter.create_histogram(
    "payments.rpc.duration", unit="s", description="gRPC server calls by method and status code"
)
payment_outcomes = _meter.create_counter(
    "payments.payment.outcomes",
    description="Payment commands by the state they left the payment in, per provider",
)
provider_duration = _meter.create_histogram(
    "payments.provider.duration", unit="s", description="Calls to the payment provider"
)
provider_errors = _meter.create_counter(
    "payments.provider.errors",
    description="Provider calls that failed (timeout, 5xx, breaker open), by operation",
)
idempotent_replays = _meter.create_counter(
    "payments.idempotency.replays", description="Requests answered from a stored outcome"
)
webhook_intake = _meter.create_counter(
    "payments.webhook.intake", description="Stripe webhook deliveries by event type and result"
)
reconciler_outcomes = _meter.create_counter(
    "payments.reconciler.outcomes", description="Payments the reconciler looked at, by result"
)
events_published = _meter.create_counter(
    "payments.outbox.published", description="Outbox events confirmed by the broker"
)


class Gauges:
    """Values set by jobs and read at collection: observable gauges want them at hand."""

    def __init__(self) -> None:
        self.breaker_state: dict[str, int] = {}
        self.outbox_backlog = 0
        self.outbox_oldest_age_s = 0.0
        # What the readiness probes reach: "database" always, "redis" when configured.
        self.up: dict[str, int] = {"database": 1}
        # Per unsettled payment state: how many wait, and the oldest one's age in seconds.
        self.waiting: dict[str, tuple[int, float]] = {}


gauges = Gauges()
# 0 closed, 1 half-open, 2 open.
BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}
_meter.create_observable_gauge(
    "payments.provider.breaker.state",
    callbacks=[
        lambda _o: [
            Observation(value, {"provider": name}) for name, value in gauges.breaker_state.items()
        ]
    ],
    description="Circuit breaker per provider: 0 closed, 1 half-open, 2 open",
)
_meter.create_observable_gauge(
    "payments.outbox.backlog",
    callbacks=[lambda _o: [Observation(gauges.outbox_backlog)]],
    description="Outbox rows not yet published",
)
_meter.create_observable_gauge(
    "payments.outbox.oldest.age",
    unit="s",
    callbacks=[lambda _o: [Observation(gauges.outbox_oldest_age_s)]],
    description="Age of the oldest unpublished outbox row (0 when none)",
)


_meter.create_observable_gauge(
    "payments.waiting.payments",
    callbacks=[
        lambda _o: [
            Observation(count, {"state": state}) for state, (count, _) in gauges.waiting.items()
        ]
    ],
    description="Payments not yet settled, per state",
)
_meter.create_observable_gauge(
    "payments.waiting.payments.oldest.age",
    unit="s",
    callbacks=[
        lambda _o: [
            Observation(age, {"state": state}) for state, (_, age) in gauges.waiting.items()
        ]
    ],
    description="Age of the oldest payment not yet settled, per state (0 when none)",
)


def _up(what: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(_options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(gauges.up[what])] if what in gauges.up else []

    return observe


_meter.create_observable_gauge(
    "payments.database.up",
    callbacks=[_up("database")],
    description="1 while the readiness probe reaches the database, 0 while it does not",
)
_meter.create_observable_gauge(
    "payments.redis.up",
    callbacks=[_up("redis")],
    description="1 while the readiness probe reaches Redis, 0 while it does not (when configured)",
)


def metrics_address(env: Mapping[str, str]) -> tuple[str, int] | None:
    """PAYMENTS_METRICS_ADDRESS as (host, port); None (the default) turns the endpoint off."""
    raw = env.get("PAYMENTS_METRICS_ADDRESS", "").strip()
    if not raw:
        return None
    host, separator, port = raw.rpartition(":")
    if not separator or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"PAYMENTS_METRICS_ADDRESS must be host:port, got {raw!r}")
    return host.removeprefix("[").removesuffix("]") or "0.0.0.0", int(port)  # noqa: S104


def configure_metrics(
    service_name: str, env: Mapping[str, str], *, serve_scrape: bool = True
) -> int | None:
    """Install the provider when metrics go anywhere; the scrape port, if one was opened.

    `serve_scrape=False`: the instruments still reach prometheus_client's registry, but
    another endpoint serves it (a process group's, server/observability/group_metrics.py).
    """
    readers: list[MetricReader] = []
    port = None
    address = metrics_address(env)
    if address is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        port = serve_metrics(address) if serve_scrape else address[1]
        readers.append(PrometheusMetricReader())
    if env.get("OTEL_METRICS_EXPORTER", "").strip().lower() == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    if not readers:
        return None
    latency = ExplicitBucketHistogramAggregation(LATENCY_BUCKETS)
    provider = MeterProvider(
        metric_readers=readers,
        resource=Resource.create({"service.name": service_name}),
        views=[
            View(instrument_name="payments.rpc.duration", aggregation=latency),
            View(instrument_name="payments.provider.duration", aggregation=latency),
        ],
    )
    metrics.set_meter_provider(provider)
    # Counters whose labels are known up front start at 0, so rate() alerts work at once.
    for result in ("changed", "unchanged", "unresolved", "skipped"):
        reconciler_outcomes.add(0, {"result": result})
    return port


def serve_metrics(address: tuple[str, int], registry: CollectorRegistry | None = None) -> int:
    """Serve `registry` (prometheus_client's own by default) on http://address/metrics, in a
    thread; the port it got. Imported here: only processes that serve metrics pay for it."""
    from prometheus_client import REGISTRY, start_http_server

    try:
        server, _thread = start_http_server(address[1], address[0], registry=registry or REGISTRY)
    except OSError as error:
        raise ConfigError(f"PAYMENTS_METRICS_ADDRESS: {error.strerror}") from None
    port = int(server.server_address[1])
    _log.info("metrics on http://%s:%d/metrics", address[0], port)
    return port
