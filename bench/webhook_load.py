"""Webhook sidecar benchmark: verified webhooks per second, end to end, on PostgreSQL.

    .venv/bin/python bench/webhook_load.py [--seconds 10] [--concurrency 32] [--database-url URL]

1. Drops and recreates the database named in --database-url (its name must contain
   "bench"), runs `payments migrate`, and stores --payments Stripe payments in PROCESSING,
   each with its own PaymentIntent id, as the gRPC path leaves them before the provider
   answers.
2. Starts one uvicorn process serving the gateway app exactly as `payments gateway` builds
   it (same `gateway.server.serve`, uvloop, one process), plus one extra route that only
   this benchmark adds: POST /_bench/bare, which reads the body and answers 200. It waits
   for GET /healthz.
3. Drives, one after the other, a closed loop of --concurrency POSTs in flight with the
   same client: the bare route (the baseline: HTTP and uvicorn/Starlette only), then
   POST /webhooks/stripe with a signed payment_intent.succeeded per payment (verify,
   store the event, move the payment, write its outbox event: one transaction each).
   Each gets a warm-up, then a measured window; a call belongs to the window in which it
   completes.
4. Prints RPS, p50, p99 for both and the ratio, the CPU per call of the server and of
   PostgreSQL (its backends on this database; apart, its server-wide processes), and
   checks that every acknowledged webhook left an applied event row and a SUCCEEDED
   payment. Exit code 0 unless the
   benchmark itself failed (server did not start, > 1 % errors, counts disagree).
5. Stops the server (SIGTERM) and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa
import uvloop
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import postgres_cpu  # noqa: E402
from bench.grpc_load import cpu_sample, cpu_use  # noqa: E402
from gateway.signature import sign  # noqa: E402
from server.adapters.db.engine import create_engine  # noqa: E402
from server.adapters.db.tables import payments, webhook_events  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/payments_bench_webhooks"
SECRET = "whsec_bench"
BARE = "/_bench/bare"
WEBHOOK = "/webhooks/stripe"
MAX_ERROR_RATIO = 0.01
PAYMENTS_BIN = str(Path(sys.executable).parent / "payments")


class BenchError(Exception):
    pass


@dataclass(slots=True)
class Result:
    label: str
    calls: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    outside: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)

    def rps(self, seconds: float) -> float:
        return len(self.latencies) / seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000


# --- the server child ---------------------------------------------------------------------


def serve_child() -> None:
    """`payments gateway` as cli.py builds it, plus the bare route."""
    from functools import partial

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from gateway.app import create_app
    from gateway.server import bind, serve
    from server.adapters.db.engine import ping
    from server.bootstrap import build_dependencies
    from server.config import Settings

    async def bare(request: Request) -> Response:
        await request.body()
        return Response(status_code=200)

    async def main() -> None:
        settings = Settings.from_env()
        deps, engine = build_dependencies(settings)
        app = create_app(
            deps,
            settings.stripe_webhook_secrets,
            database_ready=partial(ping, engine),
            extra_routes=[Route(BARE, bare, methods=["POST"])],
        )
        await serve(app, bind(settings.gateway_address))
        await engine.dispose()

    uvloop.run(main())


# --- set-up -------------------------------------------------------------------------------


async def _admin(url: str, sql: str) -> None:
    engine = create_engine(
        make_url(url).set(database="postgres").render_as_string(hide_password=False)
    )
    try:
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(sa.text(sql))
    finally:
        await engine.dispose()


async def recreate(url: str) -> None:
    name = make_url(url).database or ""
    if "bench" not in name:
        raise BenchError(f"refusing to drop {name!r}: the name must contain 'bench'")
    await _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(url, f'CREATE DATABASE "{name}"')


async def drop(url: str) -> None:
    await _admin(url, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def intent_id(n: int) -> str:
    return f"pi_bench{n:010d}"


def payment_id(n: int) -> str:
    return f"pay_BENCH{n:021d}"


async def seed(url: str, count: int) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "id": payment_id(n),
            "order_id": f"bench-order-{n}",
            "user_id": f"u_bench_{n % 100:03d}",
            "currency_code": "USD",
            "amount": 1050,
            "state": "PROCESSING",
            "provider": "stripe",
            "provider_payment_id": intent_id(n),
            "payment_method_id": "pm_card_visa",
            "capture_method": "AUTOMATIC",
            "metadata": {},
            "event_sequence": 2,
            "create_time": now,
            "update_time": now,
        }
        for n in range(count)
    ]
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for start in range(0, count, 5000):
                await connection.execute(payments.insert(), rows[start : start + 5000])
        # Now, not as autovacuum would, in the middle of a measured window.
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(sa.text("VACUUM ANALYZE payments"))
    finally:
        await engine.dispose()


def event_payload(n: int, created: int) -> bytes:
    """Shaped like Stripe's payment_intent.succeeded (about 1.3 kB)."""
    intent = {
        "id": intent_id(n),
        "object": "payment_intent",
        "amount": 1050,
        "amount_capturable": 0,
        "amount_received": 1050,
        "capture_method": "automatic",
        "client_secret": f"{intent_id(n)}_secret_benchbenchbench",
        "confirmation_method": "automatic",
        "created": created,
        "currency": "usd",
        "customer": None,
        "description": None,
        "last_payment_error": None,
        "latest_charge": f"ch_bench{n:010d}",
        "livemode": False,
        "metadata": {"order_id": f"bench-order-{n}", "payment_id": payment_id(n)},
        "next_action": None,
        "payment_method": f"pm_bench{n:010d}",
        "payment_method_types": ["card"],
        "status": "succeeded",
    }
    event = {
        "id": f"evt_bench{n:010d}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "data": {"object": intent},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "payment_intent.succeeded",
    }
    return json.dumps(event, indent=2, sort_keys=True).encode()


# --- CPU (Linux /proc) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CpuWindow:
    """% of one core during a measured window."""

    server: float
    client: float
    postgres: float  # the backends on the benchmark's database
    postgres_shared: float  # WAL writer, checkpointer and the other server-wide processes
    machine: float


async def measure_cpu(server_pid: int, database: str, warmup: float, seconds: float) -> CpuWindow:
    await asyncio.sleep(warmup)
    begin = cpu_sample()
    await asyncio.sleep(seconds)
    end = cpu_sample()
    if begin is None or end is None:
        return CpuWindow(math.nan, math.nan, math.nan, math.nan, math.nan)
    use = cpu_use(begin, end, server_pid, [os.getpid()])
    assert use is not None
    scale = 100 / (end.at - begin.at)
    ours, shared = postgres_cpu.used(begin, end, database)
    machine = (end.busy - begin.busy) * scale
    return CpuWindow(use.server, use.clients, ours * scale, shared * scale, machine)


# --- load ---------------------------------------------------------------------------------


def request_bytes(path: str, port: int, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """One request on a keep-alive connection; the response's status code."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def drive(
    port: int,
    label: str,
    next_request: Callable[[], bytes],
    concurrency: int,
    warmup: float,
    seconds: float,
) -> Result:
    """A closed loop: `concurrency` keep-alive connections, one request in flight on each.

    The client is a minimal HTTP/1.1 writer and reader on asyncio streams (uvloop), so
    that it costs far less CPU per request than the server it measures.
    """
    result = Result(label)
    start = time.monotonic() + warmup
    end = start + seconds

    async def caller() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (begin := time.monotonic()) < end:
                ok = True
                try:
                    status = await _exchange(reader, writer, next_request())
                    if status != 200:
                        ok = False
                        kind = f"HTTP {status}"
                        result.error_kinds[kind] = result.error_kinds.get(kind, 0) + 1
                except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                    kind = type(error).__name__
                    result.error_kinds[kind] = result.error_kinds.get(kind, 0) + 1
                    result.errors += 1
                    return
                done = time.monotonic()
                if start <= done < end:
                    result.calls += 1
                    if ok:
                        result.latencies.append(done - begin)
                    else:
                        result.errors += 1
                else:
                    result.outside += 1
        finally:
            writer.close()

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def migrate(env: dict[str, str]) -> None:
    subprocess.run([PAYMENTS_BIN, "migrate"], env=env, check=True, capture_output=True)


def start_server(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "--serve-child"], env=env)


async def wait_healthy(base: str, process: subprocess.Popen[bytes], limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BenchError(f"the gateway exited with {process.returncode}")
            try:
                if (await client.get(f"{base}/healthz", timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise BenchError("the gateway did not answer /healthz")


async def run(args: argparse.Namespace) -> int:
    url = args.database_url
    database = make_url(url).database or ""
    await recreate(url)
    server: subprocess.Popen[bytes] | None = None
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
        env.update(
            {
                "PAYMENTS_DATABASE_URL": url,
                "PAYMENTS_PROVIDER": "mock",
                "PAYMENTS_ENV": "development",
                "PAYMENTS_LOG_LEVEL": "WARNING",
                "STRIPE_WEBHOOK_SECRET": SECRET,
            }
        )
        migrate(env)
        await seed(url, args.payments)
        port = free_port()
        env["PAYMENTS_GATEWAY_ADDRESS"] = f"127.0.0.1:{port}"
        server = start_server(env)
        base = f"http://127.0.0.1:{port}"
        await wait_healthy(base, server)
        print(f"gateway pid {server.pid} on {base}", file=sys.stderr)

        created = int(time.time())
        bodies = [event_payload(n, created) for n in range(args.payments)]
        counter = iter(range(args.payments))

        json_type = {"Content-Type": "application/json"}
        bare_bytes = request_bytes(BARE, port, bodies[0], json_type)

        def bare_request() -> bytes:
            return bare_bytes

        def webhook_request() -> bytes:
            try:
                n = next(counter)
            except StopIteration:
                raise BenchError("ran out of seeded payments: raise --payments") from None
            body = bodies[n]
            signature = {"Stripe-Signature": sign(body, SECRET, int(time.time()))}
            return request_bytes(WEBHOOK, port, body, {**json_type, **signature})

        phases = (("bare 200", bare_request), ("webhook", webhook_request))
        measured = []
        for label, next_request in phases:
            measured.append(
                await asyncio.gather(
                    drive(port, label, next_request, args.concurrency, args.warmup, args.seconds),
                    measure_cpu(server.pid, database, args.warmup, args.seconds),
                )
            )
        (bare, bare_cpu), (webhook, webhook_cpu) = measured
        sent = next(counter)
        for (label, cpu), result in zip(
            (("bare 200", bare_cpu), ("webhook", webhook_cpu)), (bare, webhook), strict=True
        ):
            print(
                f"CPU during {label}: server {cpu.server:.0f} %, client {cpu.client:.0f} %, "
                f"postgres {cpu.postgres:.0f} % (+ {cpu.postgres_shared:.0f} % shared), "
                f"whole machine {cpu.machine:.0f} % "
                f"(of {100 * (os.cpu_count() or 1)} %)"
            )
            ok_per_second = result.rps(args.seconds)
            if ok_per_second:
                print(
                    f"  per call: server {cpu.server * 10 / ok_per_second:.2f} ms CPU, "
                    f"postgres {cpu.postgres * 10 / ok_per_second:.2f} ms CPU "
                    f"(+ {cpu.postgres_shared * 10 / ok_per_second:.2f} ms shared)"
                )
        print(f"load average (1 min) {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        return await report(url, args.seconds, bare, webhook, sent)
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(5)
        await drop(url)


async def report(url: str, seconds: float, bare: Result, webhook: Result, sent: int) -> int:
    print(f"{'endpoint':<10} {'calls':>7} {'errors':>6} {'RPS':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for result in (bare, webhook):
        print(
            f"{result.label:<10} {result.calls:>7} {result.errors:>6} "
            f"{result.rps(seconds):>8.0f} {result.percentile(50):>8.2f} "
            f"{result.percentile(99):>8.2f}"
        )
        for kind, count in result.error_kinds.items():
            print(f"  {result.label}: {count} x {kind}")
    ratio = webhook.rps(seconds) / bare.rps(seconds) if bare.latencies else math.nan
    print(f"webhook RPS / bare RPS = {ratio:.1%}")
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            applied = (
                await connection.execute(
                    sa.select(sa.func.count())
                    .select_from(webhook_events)
                    .where(webhook_events.c.status == "applied")
                )
            ).scalar_one()
            succeeded = (
                await connection.execute(
                    sa.select(sa.func.count())
                    .select_from(payments)
                    .where(payments.c.state == "SUCCEEDED")
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    print(f"webhooks sent {sent}, events applied {applied}, payments succeeded {succeeded}")
    failed = [
        r.label for r in (bare, webhook) if r.calls == 0 or r.errors > MAX_ERROR_RATIO * r.calls
    ]
    if failed:
        print(f"FAILED: too many errors in {', '.join(failed)}", file=sys.stderr)
        return 1
    if applied != succeeded or applied > sent:
        print("FAILED: stored events and payments disagree", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--payments", type=int, default=30000)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        serve_child()
        return 0
    try:
        return uvloop.run(run(args))
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
