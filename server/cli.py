"""`payments serve | worker | migrate`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from typing import Any

import uvloop

from server.adapters.db.engine import is_sqlite
from server.adapters.db.migrations import current_revision, head_revision, upgrade
from server.adapters.providers.resilience import ResilientProvider
from server.bootstrap import build_dependencies
from server.config import ConfigError, Settings
from server.grpc.app import GrpcServer, stop_signal
from server.jobs.key_reaper import reap_expired_keys
from server.jobs.reconciler import reconcile_due_payments
from server.jobs.schedule import every, stop
from server.service.dependencies import Dependencies

_log = logging.getLogger("payments")


def _start_jobs(deps: Dependencies, settings: Settings) -> list[asyncio.Task[None]]:
    jobs = [
        (
            settings.reaper_interval_seconds,
            lambda: reap_expired_keys(deps.uow, deps.clock),
            "key-reaper",
        ),
        (settings.reconcile_interval_seconds, lambda: reconcile_due_payments(deps), "reconciler"),
    ]
    return [asyncio.create_task(every(interval, job, name)) for interval, job, name in jobs]


async def _check_schema(settings: Settings) -> None:
    current, head = await current_revision(settings.database_url), head_revision()
    if current != head:
        raise ConfigError(
            f"database schema is at {current or 'nothing'}, not {head}: run `payments migrate`"
        )


async def serve(settings: Settings, *, jobs: bool) -> None:
    await _check_schema(settings)
    deps, engine = build_dependencies(settings)
    server = GrpcServer(deps, settings.grpc_address)
    if isinstance(deps.provider, ResilientProvider):
        server.follow_breaker(deps.provider.breaker)
    stopping = stop_signal()
    await server.start()
    tasks = _start_jobs(deps, settings) if jobs else []
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
    _log.info("stopped")


async def worker(settings: Settings) -> None:
    await _check_schema(settings)
    deps, engine = build_dependencies(settings)
    stopping = stop_signal()
    tasks = _start_jobs(deps, settings)
    _log.info("worker running background jobs")
    await stopping.wait()
    await stop(tasks)
    await engine.dispose()


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
    commands.add_parser("migrate", help="upgrade the database schema to the newest")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("PAYMENTS_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # One line per provider HTTP request is noise; failures surface as our own logs.
    for chatty in ("httpx", "httpcore", "stripe", "grpc._cython.cygrpc", "aiosqlite"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        settings = Settings.from_env()
        if args.command == "migrate":
            upgrade(settings.database_url)
            _log.info("database schema is up to date")
        elif args.command == "serve":
            # The embedded default must work with zero set-up: create and migrate it.
            if is_sqlite(settings.database_url):
                upgrade(settings.database_url)
            _run(serve(settings, jobs=not args.no_jobs))
        else:
            _run(worker(settings))
    except ConfigError as error:
        _log.error("%s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
