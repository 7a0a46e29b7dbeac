"""`payments serve | worker | gateway | webhook send | webhooks replay | migrate | token`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from functools import partial
from importlib.metadata import version
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
from server.adapters.providers.stripe_events import APPLIED_EVENTS, StripeEvents
from server.adapters.providers.stripe_provider import StripeProvider
from server.adapters.redis_connection import connect_redis
from server.bootstrap import build_auth, build_dependencies, build_outbox_relay
from server.cli_help import COMMANDS
from server.config import ConfigError, Settings, log_format, log_level
from server.group_member import GroupMember
from server.grpc.app import EVENTS_HEALTH, REDIS_HEALTH, GrpcServer, StopSignal
from server.grpc.auth.tokens import mint_token
from server.jobs.key_reaper import reap_expired_keys
from server.jobs.outbox_relay import measure_outbox, prune_outbox
from server.jobs.reachability_probe import ReachabilityProbe
from server.jobs.reconciler import reconcile_due_payments, reconcile_pending_refunds
from server.jobs.renewals import renew_due_subscriptions
from server.jobs.revenue_rollup import roll_up_revenue
from server.jobs.schedule import every, stop
from server.jobs.waiting_gauges import measure_waiting_payments
from server.observability.group_metrics import serve_group_metrics
from server.observability.logs import configure_logging
from server.observability.metrics import configure_metrics, metrics_address
from server.observability.tracing import configure_tracing
from server.process_group import ProcessGroup, check_port_free
from server.service.audit.queries import prune_audit_events
from server.service.dependencies import Dependencies
from server.service.receipts.numbering import number_all_receipts
from server.service.webhooks.receive import replay_failed_webhook_events
from server.webhook_trigger import event_for, post_event, sidecar_url

_log = logging.getLogger("payments")
# How often the outbox backlog gauges are refreshed (one indexed count).
OUTBOX_GAUGE_SECONDS = 10.0


def _start_jobs(
    deps: Dependencies,
    settings: Settings,
    engine: AsyncEngine,
    events_health: Callable[[bool], None] | None = None,
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
            if events_health is not None:
                relay.on_health(events_health)
            tasks.append(asyncio.create_task(relay.run()))
    return tasks


async def _check_schema(settings: Settings) -> None:
    current, head = await current_revision(settings.database_url), head_revision()
    if current != head:
        raise ConfigError(
            f"database schema is at {current or 'nothing'}, not {head}: run `payments migrate`"
        )


async def serve(
    settings: Settings,
    *,
    jobs: bool,
    metrics_port: int | None,
    member: GroupMember | None = None,
) -> None:
    """One server process: alone, or a `member` of a group (server/process_group.py)."""
    if member is None:
        # A member leaves this to its supervisor: a member started again after a newer
        # release migrated the database must go on serving, as the others do.
        await _check_schema(settings)
    deps, engine = build_dependencies(settings)
    auth = build_auth(settings)
    server = GrpcServer(
        deps, settings.grpc_address, auth, settings.tls, reuse_port=member is not None
    )
    if isinstance(deps.provider, ResilientProvider):
        server.follow_breaker(deps.provider.breaker, settings.provider)
    stopping = StopSignal()
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
        events = partial(server.report, EVENTS_HEALTH)
        tasks += _start_jobs(deps, settings, engine, events, metrics_on=metrics_port is not None)
    waits = [asyncio.ensure_future(stopping.wait())]
    if member is not None:
        waits.append(asyncio.ensure_future(member.follow(partial(server.report, EVENTS_HEALTH))))
        member.report_serving(metrics_port)
    _settle_heap()
    _log.info(
        "serving gRPC on %s (env=%s, provider=%s, jobs=%s)",
        server.address,
        settings.environment,
        settings.provider,
        "on" if jobs else "off",
    )
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    received = stopping.received
    if received is None:  # the supervisor's pipe closed: it is gone, and so are its jobs
        _log.warning("the supervisor is gone: stopping without draining")
        await server.stop_now()
        await deps.recorder.close(0)
    elif received is signal.SIGINT and settings.simulation_enabled:
        _log.info("interrupted: stopping without draining")
        await server.stop_now()
        await deps.recorder.close(0)
    else:
        await server.drain_and_stop(settings.drain_seconds)
        await deps.recorder.close(settings.drain_seconds)
    await stop([*tasks, *waits])
    await engine.dispose()
    if redis is not None:
        await redis.aclose()
    await auth.close()
    _log.info("stopped")


def _settle_heap() -> None:
    """Start-up is over: what it built (modules, the server) lives as long as the process.

    Frozen, the collector no longer walks it: a full collection then took 85-140 ms, a
    pause every call in flight waited out, a few times a minute under load.
    """
    gc.collect()
    gc.freeze()


async def serve_group(settings: Settings, *, jobs: bool, metrics_port: int | None) -> int:
    """PAYMENTS_SERVER_PROCESSES server processes on one port, the jobs run here once;
    the exit code (server/process_group.py says when it is 1)."""
    await _check_schema(settings)
    check_port_free(settings.grpc_address)
    built = build_dependencies(settings) if jobs else None
    stopping = StopSignal()
    group = ProcessGroup(settings.server_processes, _member_command, _member_env(settings))
    address = metrics_address(settings.telemetry)
    if address is not None:
        serve_group_metrics(address, group.metrics_ports)
    group.start()
    tasks = []
    if built is not None:
        deps, engine = built
        metrics_on = metrics_port is not None
        tasks = _start_jobs(deps, settings, engine, group.report_events, metrics_on=metrics_on)
    waits = [
        asyncio.ensure_future(stopping.wait()),
        asyncio.ensure_future(group.failed.wait()),
    ]
    tasks.append(asyncio.create_task(_announce(group, settings, jobs)))
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    received = stopping.received or signal.SIGTERM
    _log.info(
        "%s: stopping the %d server processes (each drains as one server does)",
        received.name,
        settings.server_processes,
    )
    code = await group.stop(received)
    await stop([*tasks, *waits])
    if built is not None:
        await built[0].recorder.close(settings.drain_seconds)
        await built[1].dispose()
    _log.info("stopped")
    return code


async def _announce(group: ProcessGroup, settings: Settings, jobs: bool) -> None:
    await group.serving.wait()
    _log.info(
        "serving gRPC on %s with %d processes (env=%s, provider=%s, jobs=%s in the supervisor)",
        settings.grpc_address,
        settings.server_processes,
        settings.environment,
        settings.provider,
        "on" if jobs else "off",
    )


def _member_command(index: int) -> list[str]:
    """A fresh interpreter per member: grpc does not survive a fork once its threads run."""
    member = GroupMember(index, os.getpid())
    return [
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--no-jobs",
        "--group-member",
        member.argument(),
    ]


def _member_env(settings: Settings) -> dict[str, str]:
    """The supervisor's environment; metrics on a loopback port of each member's own,
    which the supervisor's endpoint gathers (server/observability/group_metrics.py)."""
    env = dict(os.environ)
    if metrics_address(settings.telemetry) is not None:
        env["PAYMENTS_METRICS_ADDRESS"] = "127.0.0.1:0"
    return env


async def worker(settings: Settings, *, metrics_on: bool) -> None:
    await _check_schema(settings)
    deps, engine = build_dependencies(settings)
    stopping = StopSignal()
    tasks = _start_jobs(deps, settings, engine, metrics_on=metrics_on)
    if settings.broker_url and settings.commands_enabled:
        consumer = CommandConsumer(
            settings.broker_url, CommandDispatcher(deps), settings.command_queue
        )
        tasks.append(asyncio.create_task(consumer.run()))
    _log.info("worker running background jobs")
    await stopping.wait()
    await stop(tasks)
    await deps.recorder.close()
    await engine.dispose()


async def gateway(settings: Settings) -> None:
    """The webhook sidecar: uvicorn, one process, on this (uvloop) loop."""
    sock = bind(settings.gateway_address)
    try:
        await _check_schema(settings)
        deps, engine = build_dependencies(settings)
        _say_which_events_apply(settings.provider)
        app = create_app(
            deps, settings.stripe_webhook_secrets, database_ready=partial(ping, engine)
        )
        await serve_http(app, sock)
        await engine.dispose()
    finally:
        sock.close()


def _say_which_events_apply(provider: str) -> None:
    applied = ", ".join(sorted(APPLIED_EVENTS))
    if provider == StripeProvider.name:
        _log.info("webhooks: applying %s; every other event type is stored as ignored", applied)
    else:
        _log.warning(
            "webhooks: PAYMENTS_PROVIDER=%s: events move only payments, refunds and "
            "subscriptions made with PAYMENTS_PROVIDER=stripe, so every event about this "
            "provider's payments will be stored as ignored (types applied to Stripe ones: %s)",
            provider,
            applied,
        )


async def send_webhook(settings: Settings, event_type: str, payment_id: str, url: str) -> int:
    if not settings.stripe_webhook_secrets:
        raise ConfigError("payments webhook send needs STRIPE_WEBHOOK_SECRET, as the sidecar")
    await _check_schema(settings)
    deps, engine = build_dependencies(settings)
    try:
        async with deps.uow() as uow:
            payment = await uow.payments.get(payment_id)
    finally:
        await engine.dispose()
    if payment is None:
        raise ConfigError(f"no payment {payment_id} in {_safe_url(settings.database_url)}")
    body = event_for(event_type, payment, int(deps.clock.now().timestamp()))
    answer = await post_event(url, body, settings.stripe_webhook_secrets[0])
    print(f"{event_type} about {payment_id} -> {url}: HTTP {answer.status_code} {answer.body}")
    if answer.ignored and payment.provider != StripeProvider.name:
        print(
            f"note: {payment_id} was made with the {payment.provider} provider; the sidecar "
            "applies events to payments made with PAYMENTS_PROVIDER=stripe only",
            file=sys.stderr,
        )
    return 0 if answer.ok else 1


def _safe_url(url: str) -> str:
    """The database URL without its password, for a message."""
    scheme, separator, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}{separator}{credentials.partition(':')[0]}{at}{host}" if at else url


async def replay_webhooks(settings: Settings, limit: int) -> None:
    await _check_schema(settings)
    deps, engine = build_dependencies(settings)
    try:
        report = await replay_failed_webhook_events(deps, StripeEvents(), limit=limit)
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


def _run(main: Coroutine[Any, Any, Any]) -> Any:
    """Run on uvloop: asyncpg and the gRPC callbacks spend much less time in the loop."""
    return uvloop.run(main)


def _subcommand(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, key: str
) -> argparse.ArgumentParser:
    command = COMMANDS[key]
    return commands.add_parser(
        name, help=command.summary, description=command.description, epilog=command.epilog()
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="payments",
        description="The payment service: its gRPC server, background worker, Stripe webhook "
        "sidecar and operator commands. Configuration comes from environment variables; "
        "`payments COMMAND --help` says which ones a command reads.",
    )
    parser.add_argument("--version", action="version", version=f"payments {version('payments')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = _subcommand(commands, "serve", "serve")
    serve_parser.add_argument(
        "--no-jobs", action="store_true", help="do not run background jobs in this process"
    )
    # Set by a supervisor for the server processes it starts (server/process_group.py).
    serve_parser.add_argument(
        "--group-member", type=GroupMember.parse, default=None, help=argparse.SUPPRESS
    )
    _subcommand(commands, "worker", "worker")
    _subcommand(commands, "gateway", "gateway")
    webhook_commands = _subcommand(commands, "webhook", "webhook").add_subparsers(
        dest="webhook_command", required=True, metavar="COMMAND"
    )
    send_parser = _subcommand(webhook_commands, "send", "webhook send")
    send_parser.add_argument(
        "event_type", metavar="EVENT_TYPE", help="payment_intent.succeeded, ..."
    )
    send_parser.add_argument("--payment", required=True, help="our payment id (pay_...)")
    send_parser.add_argument(
        "--url", help="the sidecar's webhook URL (default: PAYMENTS_GATEWAY_ADDRESS, locally)"
    )
    webhooks_commands = _subcommand(commands, "webhooks", "webhooks").add_subparsers(
        dest="webhooks_command", required=True, metavar="COMMAND"
    )
    replay_parser = _subcommand(webhooks_commands, "replay", "webhooks replay")
    replay_parser.add_argument(
        "--limit", type=int, default=100, help="at most this many events (default 100)"
    )
    _subcommand(commands, "migrate", "migrate")
    token_parser = _subcommand(commands, "token", "token")
    token_parser.add_argument("--subject", required=True, help="the user or service id (sub)")
    token_parser.add_argument(
        "--role", action="append", default=[], help="a role such as admin or service (repeat)"
    )
    token_parser.add_argument("--ttl", type=int, default=3600, help="seconds valid (3600)")
    return parser


def text_logs() -> bool:
    """Text logs for a person at a terminal (PAYMENTS_LOG_FORMAT auto or text), else JSON."""
    chosen = log_format()
    return chosen == "text" or (chosen == "auto" and sys.stderr.isatty())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    member: GroupMember | None = getattr(args, "group_member", None)
    if member is not None:
        member.die_with_supervisor()  # first: it may have died while this one started
    text = False
    try:
        text = text_logs()
        configure_logging(log_level(), text=text)
    except ValueError:
        configure_logging("INFO", text=text)
        return _fail("PAYMENTS_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR", text)
    except ConfigError as error:
        configure_logging("INFO")
        return _fail(str(error), text)
    if member is not None:
        member.tag_logs()
    try:
        return _command(args)
    except ConfigError as error:
        return _fail(str(error), text)


def _fail(message: str, text: bool) -> int:
    """Exit 2 with the message: one JSON log line for services, a sentence for a person."""
    if text:
        print(f"payments: error: {message}", file=sys.stderr)
    else:
        _log.error("%s", message)
    return 2


def _supervises(args: argparse.Namespace, settings: Settings) -> bool:
    """Whether this `serve` starts a group of server processes rather than serving itself."""
    return args.command == "serve" and args.group_member is None and settings.server_processes > 1


def _serve(args: argparse.Namespace, settings: Settings, metrics_port: int | None) -> int:
    settings.check_serving_security()
    if args.group_member is not None:  # its supervisor warned, migrated and checked
        _run(serve(settings, jobs=False, metrics_port=metrics_port, member=args.group_member))
        return 0
    _warn_if_open(settings)
    # The embedded default must work with zero set-up: create and migrate it.
    if is_sqlite(settings.database_url):
        upgrade(settings.database_url)
    if not _supervises(args, settings):
        _run(serve(settings, jobs=not args.no_jobs, metrics_port=metrics_port))
        return 0
    if settings.one_process_reason:
        _log.warning(
            "PAYMENTS_SERVER_PROCESSES=%d, although %s: one process is the better choice here",
            settings.server_processes,
            settings.one_process_reason,
        )
    return int(_run(serve_group(settings, jobs=not args.no_jobs, metrics_port=metrics_port)))


def _command(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    metrics_port = None
    if args.command in ("serve", "worker", "gateway"):
        service = "payments" if args.command == "serve" else f"payments-{args.command}"
        configure_tracing(service, settings.telemetry)
        # A supervisor's endpoint serves the whole group's metrics: it opens it later.
        supervisor = _supervises(args, settings)
        metrics_port = configure_metrics(service, settings.telemetry, serve_scrape=not supervisor)
    metrics_on = metrics_port is not None
    if args.command == "migrate":
        upgrade(settings.database_url)
        _log.info("database schema is up to date")
    elif args.command == "serve":
        return _serve(args, settings, metrics_port)
    elif args.command == "gateway":
        if not settings.stripe_webhook_secrets:
            raise ConfigError(
                "payments gateway needs STRIPE_WEBHOOK_SECRET (several: comma-separated)"
            )
        if is_sqlite(settings.database_url):
            upgrade(settings.database_url)
        _run(gateway(settings))
    elif args.command == "webhook":
        url = args.url or sidecar_url(settings.gateway_address)
        return int(_run(send_webhook(settings, args.event_type, args.payment, url)))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
