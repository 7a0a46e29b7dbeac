"""OpenTelemetry traces: exporter from the standard OTEL_* variables, none by default.

With no exporter configured no SDK provider is installed: the API's no-op tracer
answers, and libraries are left uninstrumented, so the hot path pays nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from server.observability.trace_state import fitted_tracestate

_log = logging.getLogger(__name__)
TRACER_NAME = "payments"
EXPORTERS = ("none", "otlp", "console")


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def exporter_name(env: Mapping[str, str]) -> str:
    """OTEL_TRACES_EXPORTER; unset: otlp when an OTLP endpoint is given, else none."""
    name = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not name:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return "otlp" if endpoint else "none"
    if name not in EXPORTERS:
        from server.config import ConfigError  # here: config imports what imports us

        raise ConfigError(f"OTEL_TRACES_EXPORTER must be one of {', '.join(EXPORTERS)}")
    return name


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    # Imported here: only deployments that export pay for loading it.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*


def configure_tracing(service_name: str, env: Mapping[str, str] = os.environ) -> bool:
    """Install the SDK provider when an exporter is configured; whether one is."""
    name = exporter_name(env)
    if name == "none":
        return False
    # Resource.create adds OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES over ours.
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    trace.set_tracer_provider(provider)
    instrument_http_clients()
    instrument_redis()
    _log.info("tracing on: exporting spans with %s", name)
    return True


def tracing_enabled() -> bool:
    """An SDK provider is installed (by configure_tracing, or by a test)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def instrument_http_clients() -> None:
    """Spans for the provider's HTTP calls (the stripe SDK goes through httpx)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def instrument_redis() -> None:
    """Spans for Redis commands (rate-limit buckets); readiness pings run unsampled."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    instrumentor = RedisInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def instrument_engine(engine: AsyncEngine) -> None:
    """A child span per SQL statement, when tracing is on."""
    if not tracing_enabled():
        return
    from opentelemetry import metrics
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    # Per engine, not SQLAlchemyInstrumentor: that one instruments a process once,
    # and patches create_engine and Engine.connect besides. No SQL commenter: the
    # statements stay identical, so the statement cache still hits.
    EngineTracer(  # type: ignore[no-untyped-call]
        tracer(),
        engine.sync_engine,
        metrics.get_meter("payments").create_up_down_counter(
            "db.client.connections.usage", unit="connections"
        ),
        enable_commenter=False,
    )


def current_trace_headers() -> dict[str, str]:
    """W3C `traceparent` (and `tracestate`) of the current span; empty outside a trace."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if "tracestate" in carrier:
        fitted = fitted_tracestate(carrier["tracestate"])
        if fitted:
            carrier["tracestate"] = fitted
        else:
            del carrier["tracestate"]
    return carrier


def context_from(carrier: Mapping[str, str]) -> Context:
    """The remote parent named by `traceparent` in `carrier` (gRPC metadata, headers)."""
    return propagate.extract(carrier)
