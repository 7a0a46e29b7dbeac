"""The Starlette application: its routes and nothing else."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from gateway.health import Readiness, healthz
from gateway.webhook import StripeWebhookEndpoint
from server.observability.tracing import tracing_enabled
from server.service.dependencies import Dependencies


def create_app(
    deps: Dependencies,
    secrets: Sequence[str],
    *,
    database_ready: Callable[[], Awaitable[None]],
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """`extra_routes` is for benchmarks and tests only; `payments gateway` adds none."""
    webhook = StripeWebhookEndpoint(deps, secrets)
    readiness = Readiness(database_ready)
    routes: list[BaseRoute] = [
        Route("/webhooks/stripe", webhook.handle, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readiness.readyz, methods=["GET"]),
        *extra_routes,
    ]
    middleware = []
    if tracing_enabled():
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        # A server span per request; Stripe sends no trace context, so each starts one.
        middleware.append(Middleware(OpenTelemetryMiddleware))
    return Starlette(routes=routes, middleware=middleware)
