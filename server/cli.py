"""`payments serve | worker | gateway | webhooks replay | migrate`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from functools import partial
from typing import Any

import uvloop
from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.app import create_app
from gateway.server import bind
from gateway.server import serve as serve_http
from server.adapters.broker.command_consumer import CommandConsumer
from server.adapters.broker.command_dispatch import CommandDispatcher
from server.adapters.db.engine import is_sqlite, ping
from server.adapters.db.migrations import current_revision, head_revision, upgrade
from server.adapters.db.outbox_store import SqlOutboxStore
from server.adapters.providers.resilience import ResilientProvider
from server.adapters.redis_connection import connect_redis
from server.bootstrap import build_auth, build_dependencies, build_outbox_relay
from server.config import ConfigError, Settings
from server.grpc.app import EVENTS_HEALTH, REDIS_HEALTH, GrpcServer, stop_signal
from server.grpc.auth.tokens import mint_token
from server.jobs.key_reaper import reap_expired_keys
from server.jobs.outbox_relay import measure_outbox, prune_outbox
from server.jobs.reachability_probe import ReachabilityProbe
from server.jobs.reconciler import reconcile_due_payments, reconcile_pending_refunds
from server.jobs.renewals import renew_due_subscriptions
from server.jobs.revenue_rollup import roll_up_revenue
from server.jobs.schedule import every, stop
from server.jobs.waiting_gauges import measure_waiting_payments
from server.observability.logs import configure_logging
from server.observability.metrics import configure_metrics
from server.observability.tracing import configure_tracing
from server.service.apply_webhook_event import replay_failed_webhook_events
from server.service.audit.queries import prune_audit_events
from server.service.dependencies import Dependencies
from server.service.receipts.numbering import number_all_receipts

_log = logging.getLogger("payments")
# How often the outbox backlog gauges are refreshed (one indexed count).
OUTBOX_GAUGE_SECONDS = 10.0


def _start_jobs(
    deps: Dependencies,
    settings: Settings,
    engine: AsyncEngine,
    server: GrpcServer | None = None,
    *,
    metrics_on: bool = False,
) -> list[asyncio.Task[None]]:
    store = SqlOutboxStore(engine)
    jobs = [
        (
            settings.reaper_interval_seconds,
            lambda: reap_expired_keys(deps.uow, deps.clock),
            "key-reaper",
        ),
        (settings.reconcile_interval_seconds, lambda: reconcile_due_payments(deps), "reconciler"),
        (settings.renewal_interval_seconds, lambda: renew_due_subscriptions(deps), "renewals"),
        (
            settings.reconcile_interval_seconds,
            lambda: reconcile_pending_refunds(deps),
            "refund-janitor",
        ),
        (
            settings.revenue_rollup_interval_seconds,
            lambda: roll_up_revenue(deps.uow),
            "revenue-rollup",
        ),
        (
            settings.reaper_interval_seconds,
            lambda: prune_audit_events(deps, settings.audit_retention),
            "audit-pruner",
        ),
        (
            settings.receipt_interval_seconds,
            lambda: number_all_receipts(deps),
            "receipt-numbering",
        ),
        (
            settings.reaper_interval_seconds,
            lambda: prune_outbox(store, deps.clock, settings.outbox_retention),
            "outbox-pruner",
        ),
    ]
    # A pass of these is a trace of its own: root span "job <name>", its SQL beneath.
    tasks = [asyncio.create_task(every(i, job, name, traced=True)) for i, job, name in jobs]
    # Polling is not: no span per empty poll. The relay still makes a publish span
    # per event, in the trace of the request that wrote it.
    with suppress_instrumentation():
        if metrics_on:
            gauges = partial(measure_outbox, store, deps.clock)
            tasks.append(asyncio.create_task(every(OUTBOX_GAUGE_SECONDS, gauges, "gauges")))
            waiting = partial(measure_waiting_payments, deps.uow, deps.clock)
            tasks.append(asyncio.create_task(every(OUTBOX_GAUGE_SECONDS, waiting, "waiting")))
        relay = build_outbox_relay(settings, deps, engine)
        if relay is not None:
            if server is not None:
                relay.on_health(partial(server.report, EVENTS_HEALTH))
            tasks.append(asyncio.create_task(relay.run()))
    return tasks


async def _check_schema(settings: Settings) -> None:
    current, head = await current_revision(settings.database_url), head_revision()
    if current != head:
        raise ConfigError(
            f"database schema is at {current or 'nothing'}, not {head}: run `payments migrate`"
        )


async def serve(settings: Settings, *, jobs: bool, metrics_on: bool) -> None:
    await _check_schema(settings)
    deps, engine = build_dependencies(settings)
    auth = build_auth(settings)
    server = GrpcServer(deps, settings.grpc_address, auth, settings.tls)
    if isinstance(deps.provider, ResilientProvider):
        server.follow_breaker(deps.provider.breaker, settings.provider)
    stopping = stop_signal()
    await server.start()
    probes = [ReachabilityProbe("database", partial(ping, engine), server.report_database)]
    redis = connect_redis(settings.redis_url) if settings.redis_url else None
    if redis is not None:
        probes.append(ReachabilityProbe("redis", redis.ping, partial(server.report, REDIS_HEALTH)))
    with suppress_instrumentation():  # no span per probe
        tasks = [
            asyncio.create_task(every(settings.health_interval_seconds, probe.check, probe.what))
            for probe in probes
        ]
    if jobs:
        tasks += _start_jobs(deps, settings, engine, server, metrics_on=metrics_on)
    _log.info(
        "serving gRPC on %s (env=%s, provider=%s, jobs=%s)",
        server.address,
        settings.environment,
        settings.provider,
        "on" if jobs else "off",
    )
    await stopping.wait()
    await server.drain_and_stop(settings.drain_seconds)
    await stop(tasks)
    await engine.dispose()
    if redis is not None:
        await redis.aclose()
    await auth.close()
    _log.info("stopped")


async def worker(settings: Settings, *, metrics_on: bool) -> None:
    await _check_schema(settings)
    deps, engine = build_dependencies(settings)
    stopping = stop_signal()
    tasks = _start_jobs(deps, settings, engine, metrics_on=metrics_on)
    if settings.broker_url and settings.commands_enabled:
        consumer = CommandConsumer(
            settings.broker_url, CommandDispatcher(deps), settings.command_queue
        )
        tasks.append(asyncio.create_task(consumer.run()))
    _log.info("worker running background jobs")
    await stopping.wait()
    await stop(tasks)
    await engine.dispose()


async def gateway(settings: Settings) -> None:
    """The webhook sidecar: uvicorn, one process, on this (uvloop) loop."""
    sock = bind(settings.gateway_address)
    try:
        await _check_schema(settings)
        deps, engine = build_dependencies(settings)
        app = create_app(
            deps, settings.stripe_webhook_secrets, database_ready=partial(ping, engine)
        )
        await serve_http(app, sock)
        await engine.dispose()
    finally:
        sock.close()


async def replay_webhooks(settings: Settings, limit: int) -> None:
    await _check_schema(settings)
    deps, engine = build_dependencies(settings)
    try:
        report = await replay_failed_webhook_events(deps, limit=limit)
    finally:
        await engine.dispose()
    print(
        f"replayed {report.total} failed webhook events: {report.applied} applied, "
        f"{report.stale} stale, {report.ignored} ignored, {report.duplicate} duplicate, "
        f"{report.failed} failed again"
    )


def _warn_if_open(settings: Settings) -> None:
    if not settings.auth.enabled:
        _log.warning(
            "AUTHENTICATION IS OFF (PAYMENTS_ENV=%s): anyone who can reach this port can read, "
            "take and refund any payment. Set PAYMENTS_AUTH_JWT_SECRET or PAYMENTS_AUTH_JWKS_URL "
            "for anything but local development.",
            settings.environment,
        )


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop: asyncpg and the gRPC callbacks spend much less time in the loop."""
    uvloop.run(main)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="payments", description="The payment service.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the gRPC server")
    serve_parser.add_argument(
        "--no-jobs", action="store_true", help="do not run background jobs in this process"
    )
    commands.add_parser("worker", help="run the background jobs only")
    commands.add_parser("gateway", help="run the Stripe webhook sidecar (HTTP)")
    webhooks_parser = commands.add_parser("webhooks", help="stored webhook events")
    webhook_commands = webhooks_parser.add_subparsers(dest="webhooks_command", required=True)
    replay_parser = webhook_commands.add_parser(
        "replay", help="apply again the stored events whose application failed"
    )
    replay_parser.add_argument(
        "--limit", type=int, default=100, help="at most this many events (default 100)"
    )
    commands.add_parser("migrate", help="upgrade the database schema to the newest")
    token_parser = commands.add_parser(
        "token", help="print an HS256 bearer token signed with PAYMENTS_AUTH_JWT_SECRET"
    )
    token_parser.add_argument("--subject", required=True, help="the user or service id (sub)")
    token_parser.add_argument(
        "--role", action="append", default=[], help="a role such as admin or service (repeat)"
    )
    token_parser.add_argument("--ttl", type=int, default=3600, help="seconds valid (3600)")
    args = parser.parse_args(argv)
    try:
        configure_logging(os.environ.get("PAYMENTS_LOG_LEVEL") or "INFO")
    except ValueError:
        configure_logging("INFO")
        _log.error("PAYMENTS_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        return 2
    try:
        settings = Settings.from_env()
        metrics_on = False
        if args.command in ("serve", "worker", "gateway"):
            service = "payments" if args.command == "serve" else f"payments-{args.command}"
            configure_tracing(service)
            metrics_on = configure_metrics(service) is not None
        if args.command == "migrate":
            upgrade(settings.database_url)
            _log.info("database schema is up to date")
        elif args.command == "serve":
            settings.check_serving_security()
            _warn_if_open(settings)
            # The embedded default must work with zero set-up: create and migrate it.
            if is_sqlite(settings.database_url):
                upgrade(settings.database_url)
            _run(serve(settings, jobs=not args.no_jobs, metrics_on=metrics_on))
        elif args.command == "gateway":
            if not settings.stripe_webhook_secrets:
                raise ConfigError(
                    "payments gateway needs STRIPE_WEBHOOK_SECRET (several: comma-separated)"
                )
            if is_sqlite(settings.database_url):
                upgrade(settings.database_url)
            _run(gateway(settings))
        elif args.command == "token":
            if not settings.auth.jwt_secret:
                raise ConfigError("payments token needs PAYMENTS_AUTH_JWT_SECRET (or _FILE)")
            if args.ttl < 1:
                raise ConfigError("--ttl must be at least 1")
            print(mint_token(settings.auth, args.subject, args.role, args.ttl))
        elif args.command == "webhooks":
            if args.limit < 1:
                raise ConfigError("--limit must be at least 1")
            _run(replay_webhooks(settings, args.limit))
        else:
            _run(worker(settings, metrics_on=metrics_on))
    except ConfigError as error:
        _log.error("%s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
