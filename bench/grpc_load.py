"""gRPC load benchmark: `payments serve` as production starts it, on a PostgreSQL of its own.

    .venv/bin/python bench/grpc_load.py [--seconds 8] [--concurrency 4,32]
        [--server-processes N] [--seed-payments N] [--database-url URL]

What it does, in order:

1. Starts a private PostgreSQL cluster (initdb in /tmp, a free port, the stock settings
   with fsync on, pg_stat_statements counting every statement) and creates the database
   payments_bench in it; or, with --database-url, drops and recreates that database on an
   existing server (its name must contain "bench": this tool deletes it). Runs
   `payments migrate`, and with --seed-payments fills the table first (bench/seed_payments.py).
2. Starts `payments serve` as production does: PAYMENTS_ENV=production with an HS256 token
   secret and a page-token key (so the auth interceptor checks every call), JSON logs,
   the background jobs on, no trace exporter, the mock provider; PAYMENTS_SERVER_PROCESSES
   from --server-processes. Waits until grpc.health.v1 reports SERVING.
3. Drives, one after the other, a closed loop of exactly N unary calls in flight, for each
   N of --concurrency: Health/Check (the baseline; no token, as probes call it),
   CreatePayment (confirm, pm_card_visa, USD 10.50, unique request_id and order_id, 100
   users; a service's token), GetPayment (ids created just before; the service's token)
   and ListPayments (one user's payments, page_size 20; that customer's own token).
   Each window gets a warm-up, then is measured; a call belongs to the window in which it
   completes. Around each measured window it reads the CPU time of the server's processes
   (the server and its children), of the cluster's (the postmaster and its children), and
   PostgreSQL's counters: statements (pg_stat_statements) and transactions
   (pg_stat_database) of the benchmark's database.
4. Prints, per RPC and level: RPS, p50/p99, server and PostgreSQL CPU per call, round
   trips and transactions per call; the statements behind them; and judges the figures
   against the targets of issue 17. The background jobs make statements of their own:
   their rate during the Health/Check windows (which make no SQL) is subtracted.
   Missing a target is a finding, not a failure: the exit code is 0 unless the benchmark
   itself failed (the database or server did not start, a client died, or more than 1 %
   of an RPC's calls did not return OK).
5. Always stops the server (SIGTERM, then SIGKILL) and removes the cluster (or drops the
   database).

The load generator shares the machine with the server, so it is kept light: request
messages are serialized once (CreatePayment from a byte template with the unique part
spliced in), tokens are minted once, calls go through the channel as raw bytes (no
protobuf work per call), and the in-flight calls are asyncio tasks looping in --processes
client processes with --channels channels (connections) each. Every RPC, the baseline
included, is measured with the same client processes and channels in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import math
import multiprocessing
import multiprocessing.queues
import os
import queue
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2
from payments.v1 import money_pb2, payments_pb2
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.postgres_activity import (  # noqa: E402
    CLUSTER_SETTINGS,
    Activity,
    ActivityReader,
    PerCall,
    Reading,
)
from tests.support.postgres_cluster import PostgresCluster  # noqa: E402

BENCH_DATABASE = "payments_bench"

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
CREATE_PAYMENT = "/payments.v1.PaymentService/CreatePayment"
GET_PAYMENT = "/payments.v1.PaymentService/GetPayment"
LIST_PAYMENTS = "/payments.v1.PaymentService/ListPayments"

USERS = tuple(f"u_bench_{n:03d}" for n in range(100))
PAYMENT_METHOD = "pm_card_visa"
CURRENCY, MINOR_UNITS = "USD", 1050
# CreatePayment's request_id and order_id end in this many bytes that differ per call.
_KEY_BYTES = 12
_KEY_MARK = b"#" * _KEY_BYTES
# The caller that takes payments: another service, which may act for any user.
SERVICE_SUBJECT = "bench-checkout"
TOKEN_TTL_SECONDS = 6 * 3600

WARMUP_SECONDS = 2.0
WINDOW_SECONDS = 8.0
LEVELS = (4, 32)
CALL_TIMEOUT_SECONDS = 30.0
MAX_ERROR_RATIO = 0.01
SERVER_START_SECONDS = 60.0
SERVER_STOP_SECONDS = 15.0
_MAX_ERROR_KINDS = 20
# More CPU than this (% of one core) used by processes outside the benchmark: warn.
NOISE_WARNING_PERCENT = 15.0
# Seconds with no call in flight, before the first phase: the idle CPU.
IDLE_SECONDS = 4.0
# Statements below this many per call are left out of the statement lists.
SHOWN_PER_CALL = 0.02

Kind = Literal["cycle", "create"]
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Phase:
    """One RPC to drive: sent to every client process."""

    label: str
    method: str
    kind: Kind
    # "cycle": serialized requests, used round-robin. "create": unused (built per call).
    payloads: tuple[bytes, ...]
    start_at: float  # time.monotonic(), the same clock in every process on Linux
    warmup: float
    seconds: float
    # Calls in flight over all client processes; 0: the concurrency the clients began with.
    in_flight: int = 0
    # Call n sends metadata[n % len(metadata)], aligned with the payloads (and with
    # CreatePayment's users); empty: no metadata.
    metadata: tuple[Metadata, ...] = ()


@dataclass(slots=True)
class PhaseResult:
    """What one client process saw of a phase."""

    label: str
    calls: int = 0  # completed inside the measured window, OK or not
    errors: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, OK calls in the window
    outside_calls: int = 0  # completed during the warm-up or after the window
    outside_errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    created: list[bytes] = field(default_factory=list)  # CreatePayment responses, raw


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU used during a measured window, in % of one core (the machine has os.cpu_count())."""

    server: float  # the server process and its children
    clients: float
    postgres: float  # the cluster's processes; with --database-url every postgres process
    other: float  # everything else on the machine: noise
    steal: float  # time the hypervisor gave to someone else
    # Each server process apart, by pid, when there are several (the supervisor first).
    server_processes: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    calls: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    outside_calls: int
    outside_errors: int
    error_kinds: Counter[str]
    in_flight: int = 0
    seconds: float = 0.0
    cpu: CpuUse | None = None
    database: Activity | None = None  # None: the counters could not be read

    @property
    def ok_calls(self) -> int:
        return self.calls - self.errors

    def cpu_ms_per_call(self, percent: float) -> float:
        # % of a core / 100 x 1000 ms, per OK call per second
        return percent * 10 / self.rps if self.rps else math.nan


class BenchError(Exception):
    """The benchmark could not be run; the message says why."""


# --- requests -----------------------------------------------------------------------------


def create_templates() -> list[tuple[bytes, bytes, bytes]]:
    """Per user: a serialized CreatePaymentRequest cut where the per-call key goes.

    request_id and order_id both end in the same fixed-length key, so splicing it in keeps
    every length prefix valid.
    """
    marker = _KEY_MARK.decode()
    templates = []
    for user in USERS:
        request = payments_pb2.CreatePaymentRequest(
            request_id=f"bench-req-{marker}",
            order_id=f"bench-ord-{marker}",
            user_id=user,
            amount=money_pb2.Money(currency_code=CURRENCY, minor_units=MINOR_UNITS),
            payment_method_id=PAYMENT_METHOD,
            confirm=True,
        )
        parts = request.SerializeToString().split(_KEY_MARK)
        if len(parts) != 3:
            raise BenchError("the CreatePayment template does not split in three")
        templates.append((parts[0], parts[1], parts[2]))
    return templates


def create_payload(templates: Sequence[tuple[bytes, bytes, bytes]], client: int, n: int) -> bytes:
    head, middle, tail = templates[n % len(templates)]
    key = b"%02d%010d" % (client, n)
    return head + key + middle + key + tail


def check_create_payload() -> None:
    """The spliced bytes must parse back to the request they stand for."""
    request = payments_pb2.CreatePaymentRequest.FromString(
        create_payload(create_templates(), 7, 123)
    )
    key = "07" + "0000000123"
    expected = (f"bench-req-{key}", f"bench-ord-{key}", USERS[23], MINOR_UNITS, True)
    seen = (
        request.request_id,
        request.order_id,
        request.user_id,
        request.amount.minor_units,
        request.confirm,
    )
    if seen != expected:
        raise BenchError(f"CreatePayment template is broken: {seen} != {expected}")


def health_payloads() -> tuple[bytes, ...]:
    return (health_pb2.HealthCheckRequest(service="").SerializeToString(),)


def get_payloads(ids: Sequence[str]) -> tuple[bytes, ...]:
    return tuple(payments_pb2.GetPaymentRequest(id=i).SerializeToString() for i in ids)


def list_payloads() -> tuple[bytes, ...]:
    """One request per user, in USERS' order (a customer's token goes with each)."""
    return tuple(
        payments_pb2.ListPaymentsRequest(
            filter=f'user_id = "{user}"', page_size=20
        ).SerializeToString()
        for user in USERS
    )


@dataclass(frozen=True, slots=True)
class Credentials:
    """The production server's secrets for this run, and the callers' tokens."""

    jwt_secret: str = field(repr=False)
    page_token_key: str = field(repr=False)

    @classmethod
    def new(cls) -> Credentials:
        # Fresh for every run, at least the 32 bytes production demands of each.
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(32))

    def bearer(self, subject: str, roles: Sequence[str] = ()) -> Metadata:
        """`authorization: Bearer <token>` metadata, minted as `payments token` mints it."""
        # Imported here: client processes never mint, and the import takes half a second.
        from server.config import AuthSettings
        from server.grpc.auth.tokens import mint_token

        auth = AuthSettings(jwt_secrets=(self.jwt_secret,))
        token = mint_token(auth, subject, roles, TOKEN_TTL_SECONDS)
        return (("authorization", f"Bearer {token}"),)

    def service(self) -> tuple[Metadata, ...]:
        return (self.bearer(SERVICE_SUBJECT, ("service",)),)

    def customers(self) -> tuple[Metadata, ...]:
        """Each user's own token, in USERS' order (customers hold no role)."""
        return tuple(self.bearer(user) for user in USERS)


# --- client processes ---------------------------------------------------------------------


def _share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


NextCall = Callable[[], tuple[bytes, Metadata | None]]


async def _caller(
    call: aio.UnaryUnaryMultiCallable[bytes, bytes],
    next_call: NextCall,
    phase: Phase,
    result: PhaseResult,
) -> None:
    """One in-flight call, issued again as soon as the previous one returns."""
    window_start = phase.start_at + phase.warmup
    window_end = window_start + phase.seconds
    keep = phase.kind == "create"
    clock = time.monotonic
    while True:
        begin = clock()
        if begin >= window_end:
            return
        ok = True
        payload, metadata = next_call()
        try:
            response = await call(payload, timeout=CALL_TIMEOUT_SECONDS, metadata=metadata)
        except aio.AioRpcError as error:
            ok = False
            kind = f"{error.code().name}: {error.details()}"
            if kind in result.error_kinds or len(result.error_kinds) < _MAX_ERROR_KINDS:
                result.error_kinds[kind] += 1
            else:
                result.error_kinds["(other errors)"] += 1
        end = clock()
        if window_start <= end < window_end:
            result.calls += 1
            if ok:
                result.latencies.append(end - begin)
            else:
                result.errors += 1
        else:
            result.outside_calls += 1
            result.outside_errors += not ok
        if ok and keep:
            result.created.append(response)


def _next_call(phase: Phase, client: int, counter: Iterator[int]) -> NextCall:
    metadata = phase.metadata
    if phase.kind == "create":
        templates = create_templates()

        def payload(n: int) -> bytes:
            return create_payload(templates, client, n)

    else:
        payloads = phase.payloads

        def payload(n: int) -> bytes:
            return payloads[n % len(payloads)]

    def next_call() -> tuple[bytes, Metadata | None]:
        n = next(counter)
        return payload(n), metadata[n % len(metadata)] if metadata else None

    return next_call


async def _run_phase(
    channels: Sequence[aio.Channel],
    client: int,
    tasks: int,
    phase: Phase,
    counter: Iterator[int],
) -> PhaseResult:
    result = PhaseResult(phase.label)
    calls: list[aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
        channel.unary_unary(phase.method, None, None) for channel in channels
    ]
    next_call = _next_call(phase, client, counter)
    await asyncio.sleep(max(0.0, phase.start_at - time.monotonic()))
    await asyncio.gather(
        *(_caller(calls[i % len(calls)], next_call, phase, result) for i in range(tasks))
    )
    return result


async def _client(
    client: int,
    processes: int,
    target: str,
    channel_count: int,
    concurrency: int,
    commands: multiprocessing.queues.Queue[Phase | None],
    results: multiprocessing.queues.Queue[PhaseResult | str],
) -> None:
    # A local subchannel pool gives every channel its own connection.
    channels = [
        aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(channel_count)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.channel_ready() for c in channels)), 10)
        results.put("ready")
        loop = asyncio.get_running_loop()
        # One sequence per process for all phases: a request_id is never sent twice.
        counter = itertools.count()
        while (phase := await loop.run_in_executor(None, commands.get)) is not None:
            tasks = _share(phase.in_flight or concurrency, processes, client)
            results.put(await _run_phase(channels, client, tasks, phase, counter))
    finally:
        await asyncio.gather(*(channel.close(None) for channel in channels))


def client_main(
    client: int,
    processes: int,
    target: str,
    channel_count: int,
    concurrency: int,
    commands: multiprocessing.queues.Queue[Phase | None],
    results: multiprocessing.queues.Queue[PhaseResult | str],
) -> None:
    """Entry point of a client process."""
    try:
        asyncio.run(
            _client(client, processes, target, channel_count, concurrency, commands, results)
        )
    except KeyboardInterrupt:
        pass  # Ctrl-C reaches the whole process group; the parent cleans up
    except Exception as error:
        results.put(f"client {client} failed: {error!r}")


class Clients:
    """--processes client processes sharing the calls in flight of each phase."""

    def __init__(self, target: str, processes: int, channels: int, concurrency: int) -> None:
        context = multiprocessing.get_context("spawn")  # no fork after gRPC is loaded
        self._results: multiprocessing.queues.Queue[PhaseResult | str] = context.Queue()
        self._commands: list[multiprocessing.queues.Queue[Phase | None]] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        for index in range(processes):
            commands: multiprocessing.queues.Queue[Phase | None] = context.Queue()
            process = context.Process(
                target=client_main,
                args=(index, processes, target, channels, concurrency, commands, self._results),
                name=f"bench-client-{index}",
                daemon=True,
            )
            process.start()
            self._commands.append(commands)
            self._processes.append(process)
        for _ in self._processes:
            self._expect_ready()

    def _receive(self, timeout: float) -> PhaseResult | str:
        try:
            return self._results.get(timeout=timeout)
        except queue.Empty:
            raise BenchError(f"no answer from the client processes in {timeout:.0f} s") from None

    def _expect_ready(self) -> None:
        answer = self._receive(60)
        if answer != "ready":
            raise BenchError(str(answer))

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p.pid is not None]

    def start(self, phase: Phase) -> None:
        for commands in self._commands:
            commands.put(phase)

    def collect(self, phase: Phase) -> list[PhaseResult]:
        deadline = phase.warmup + phase.seconds + CALL_TIMEOUT_SECONDS + 30
        answers = [self._receive(deadline) for _ in self._processes]
        failures = [a for a in answers if isinstance(a, str)]
        if failures:
            raise BenchError("; ".join(failures))
        return [a for a in answers if isinstance(a, PhaseResult)]

    def close(self) -> None:
        """Lets the processes finish their phase and exit."""
        for commands in self._commands:
            commands.put(None)
        for process in self._processes:
            process.join(10)
        self.terminate()

    def terminate(self) -> None:
        """Stops the processes now (SIGTERM to each)."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()
                process.join(5)


# --- CPU accounting (Linux /proc) ---------------------------------------------------------

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcessTimes:
    name: str
    cpu: float  # seconds, all threads, user + system
    parent: int
    started: int  # clock ticks after boot: with the pid, tells a reused pid apart


@dataclass(frozen=True, slots=True)
class CpuSample:
    at: float
    busy: float  # CPU seconds the machine spent on user, nice, system, irq and softirq
    steal: float
    processes: dict[int, ProcessTimes]


def cpu_sample() -> CpuSample | None:
    """Machine-wide and per-process CPU time so far; None without a readable /proc."""
    at = time.monotonic()
    try:
        with open("/proc/stat") as stat:
            ticks = [int(f) for f in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    processes: dict[int, ProcessTimes] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                raw = stat.read()
        except OSError:
            continue  # gone meanwhile
        name_end = raw.rindex(")")
        fields = raw[name_end + 2 :].split()  # fields[0] is the state, field 3 of proc(5)
        processes[int(entry.name)] = ProcessTimes(
            name=raw[raw.index("(") + 1 : name_end],
            cpu=(int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND,  # utime + stime
            parent=int(fields[1]),
            started=int(fields[19]),
        )
    busy = (user + nice + system + irq + softirq) / _TICKS_PER_SECOND
    return CpuSample(at, busy, steal / _TICKS_PER_SECOND, processes)


def family(samples: Iterable[CpuSample], root: int) -> list[int]:
    """`root` and every process below it in any of the samples, by pid."""
    children: dict[int, set[int]] = {}
    for sample in samples:
        for pid, times in sample.processes.items():
            children.setdefault(times.parent, set()).add(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return sorted(found)


def cpu_use(
    before: CpuSample | None,
    after: CpuSample | None,
    server: int,
    clients: Sequence[int],
    postmaster: int | None = None,
) -> CpuUse | None:
    """CPU of the server's process group, the clients and PostgreSQL between two samples.

    PostgreSQL is the cluster under `postmaster`, or every process named postgres.
    A process that ended in between is missed; one that began counts whole.
    """
    if before is None or after is None or after.at <= before.at:
        return None

    def used(pid: int) -> float:
        now = after.processes.get(pid)
        if now is None:
            return 0.0
        then = before.processes.get(pid)
        if then is None or then.started != now.started:
            return now.cpu  # began in the window
        return now.cpu - then.cpu

    servers = [used(pid) for pid in family((before, after), server)]
    theirs = sum(used(pid) for pid in clients)
    if postmaster is not None:
        postgres = sum(used(pid) for pid in family((before, after), postmaster))
    else:
        postgres = sum(used(pid) for pid, p in after.processes.items() if p.name == "postgres")
    rest = after.busy - before.busy - sum(servers) - theirs - postgres
    scale = 100 / (after.at - before.at)
    return CpuUse(
        server=sum(servers) * scale,
        clients=theirs * scale,
        postgres=postgres * scale,
        other=max(0.0, rest) * scale,
        steal=(after.steal - before.steal) * scale,
        server_processes=tuple(s * scale for s in servers) if len(servers) > 1 else (),
    )


def summarize(label: str, parts: Sequence[PhaseResult], seconds: float) -> Row:
    latencies = sorted(itertools.chain.from_iterable(p.latencies for p in parts))
    kinds: Counter[str] = Counter()
    for part in parts:
        kinds.update(part.error_kinds)
    calls = sum(p.calls for p in parts)
    errors = sum(p.errors for p in parts)
    return Row(
        label=label,
        calls=calls,
        errors=errors,
        rps=(calls - errors) / seconds,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        outside_calls=sum(p.outside_calls for p in parts),
        outside_errors=sum(p.outside_errors for p in parts),
        error_kinds=kinds,
        seconds=seconds,
    )


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest rank; NaN when there is nothing to rank."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


# --- database and server ------------------------------------------------------------------


def bench_database(url: str) -> URL:
    parsed = make_url(url)
    name = parsed.database or ""
    if parsed.get_backend_name() != "postgresql":
        raise BenchError(f"--database-url must be a PostgreSQL URL, got {url!r}")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name) or "bench" not in name:
        raise BenchError(
            f"refusing to drop and recreate database {name!r}: "
            "its name must be lower-case letters, digits and _ and contain 'bench'"
        )
    return parsed


async def _admin(url: URL, *statements: str) -> None:
    admin_url = url.set(drivername="postgresql+asyncpg", database="postgres")
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


def recreate_database(url: URL) -> None:
    name = url.database
    asyncio.run(
        _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    )


def drop_database(url: URL) -> None:
    asyncio.run(_admin(url, f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))


def payments_command() -> list[str]:
    script = Path(sys.executable).with_name("payments")
    return [str(script)] if script.exists() else [sys.executable, "-m", "server.cli"]


def server_environment(
    database_url: str,
    address: str,
    *,
    production: Credentials | None = None,
    server_processes: int | None = None,
) -> dict[str, str]:
    """The caller's environment without any PAYMENTS_* or OTEL_* setting, plus the
    benchmark's: development without auth, or production with `production`'s secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYMENTS_", "OTEL_"))}
    env.update(
        PAYMENTS_DATABASE_URL=database_url,
        PAYMENTS_GRPC_ADDRESS=address,
        PAYMENTS_DRAIN_SECONDS="0",
        PAYMENTS_PROVIDER="mock",
        PAYMENTS_ENV="development",
    )
    if production is not None:
        env.update(
            PAYMENTS_ENV="production",
            PAYMENTS_AUTH_JWT_SECRET=production.jwt_secret,
            PAYMENTS_PAGE_TOKEN_KEY=production.page_token_key,
            PAYMENTS_LOG_FORMAT="json",
        )
    if server_processes is not None:
        env["PAYMENTS_SERVER_PROCESSES"] = str(server_processes)
    return env


def migrate(database_url: str) -> None:
    done = subprocess.run(
        [*payments_command(), "migrate"],
        cwd=ROOT,
        env=server_environment(database_url, "127.0.0.1:0"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"`payments migrate` exited with {done.returncode}:\n{done.stderr}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tail(log: IO[str], lines: int = 30) -> str:
    log.flush()
    log.seek(0)
    return "".join(log.readlines()[-lines:])


def start_server(
    database_url: str,
    address: str,
    log: IO[str],
    *,
    production: Credentials | None = None,
    jobs: bool = False,
    server_processes: int | None = None,
) -> subprocess.Popen[bytes]:
    """`payments serve`; by default in development, without auth and without the jobs."""
    return subprocess.Popen(
        [*payments_command(), "serve", *([] if jobs else ["--no-jobs"])],
        cwd=ROOT,
        env=server_environment(
            database_url, address, production=production, server_processes=server_processes
        ),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )


def wait_until_serving(
    server: subprocess.Popen[bytes],
    target: str,
    log: IO[str],
    seconds: float = SERVER_START_SECONDS,
) -> None:
    deadline = time.monotonic() + seconds
    request = health_pb2.HealthCheckRequest(service="")
    with grpc.insecure_channel(target) as channel:
        check = channel.unary_unary(
            HEALTH_CHECK,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise BenchError(
                    f"the server exited with {server.returncode} before serving:\n{_tail(log)}"
                )
            try:
                if check(request, timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise BenchError(f"the server was not SERVING after {seconds:.0f} s:\n{_tail(log)}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(SERVER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        print(f"server did not stop in {SERVER_STOP_SECONDS:.0f} s: killing it", file=sys.stderr)
        server.kill()
        server.wait()


@dataclass(slots=True)
class Database:
    """Where the server's data lives: a private cluster, or a database on a given server."""

    url: URL
    cluster: PostgresCluster | None = None
    reader: ActivityReader | None = None

    @classmethod
    def private(cls, extra_settings: Sequence[str] = ()) -> Database:
        chosen = dict(setting.split("=", 1) for setting in extra_settings)
        cluster = PostgresCluster({**CLUSTER_SETTINGS, **chosen})
        try:
            cluster.init().start()
            url = make_url(cluster.url).set(database=BENCH_DATABASE)
            asyncio.run(_admin(url, f'CREATE DATABASE "{BENCH_DATABASE}"'))
        except BaseException:
            cluster.remove()
            raise
        return cls(url, cluster)

    @classmethod
    def existing(cls, database_url: str) -> Database:
        url = bench_database(database_url)
        recreate_database(url)
        return cls(url)

    @property
    def dsn(self) -> str:
        return self.url.render_as_string(hide_password=False)

    @property
    def postmaster(self) -> int | None:
        return self.cluster.pid if self.cluster is not None else None

    def open_reader(self) -> ActivityReader:
        self.reader = ActivityReader(
            self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        )
        return self.reader

    def read(self) -> Reading | None:
        return self.reader.read() if self.reader is not None else None

    def where(self) -> str:
        if self.cluster is not None:
            return f"private cluster on 127.0.0.1:{self.cluster.port} ({self.cluster.folder})"
        return f"database {self.url.database} on {self.url.host}:{self.url.port or 5432}"

    def remove(self) -> None:
        if self.reader is not None:
            self.reader.close()
        if self.cluster is not None:
            self.cluster.remove()
        else:
            drop_database(self.url)


def seed_table(database: Database, payments: int) -> None:
    """--seed-payments: bench/seed_payments.py's one INSERT ... SELECT, then VACUUM ANALYZE."""
    # Imported here: bench/seed_payments.py imports this module.
    from bench.seed_payments import seed

    print(f"seeding {payments} payments ...", file=sys.stderr)
    began = time.monotonic()
    try:
        asyncio.run(seed(database.url, payments))
    except Exception as error:
        raise BenchError(f"cannot seed the payments: {error!r}") from error
    print(f"seeded in {time.monotonic() - began:.0f} s", file=sys.stderr)


# --- the run ------------------------------------------------------------------------------


def created_ids(results: Sequence[PhaseResult]) -> tuple[list[str], Counter[str]]:
    ids: list[str] = []
    states: Counter[str] = Counter()
    for part in results:
        for raw in part.created:
            payment = payments_pb2.Payment.FromString(raw)
            ids.append(payment.id)
            states[payments_pb2.PaymentState.Name(payment.state)] += 1
    return ids, states


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


@dataclass(slots=True)
class Run:
    """What the phases measured, and what went wrong on the way."""

    rows: list[Row] = field(default_factory=list)
    states: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    idle: CpuUse | None = None  # before the first phase, no call in flight


def drive(
    clients: Clients,
    server: subprocess.Popen[bytes],
    database: Database,
    credentials: Credentials,
    args: argparse.Namespace,
) -> Run:
    """Runs the phases in turn, each RPC at every level; stops early, with a problem noted,
    if the server dies."""
    run = Run()
    created: list[PhaseResult] = []
    service, customers = credentials.service(), credentials.customers()

    def measure(
        label: str,
        method: str,
        kind: Kind,
        payloads: tuple[bytes, ...],
        metadata: tuple[Metadata, ...] = (),
    ) -> bool:
        for level in args.levels:
            phase = Phase(
                label,
                method,
                kind,
                payloads,
                time.monotonic() + 0.5,
                args.warmup,
                args.seconds,
                in_flight=level,
                metadata=metadata,
            )
            print(
                f"  {label} at {level} in flight: {args.warmup:g} s warm-up + "
                f"{args.seconds:g} s ...",
                file=sys.stderr,
            )
            clients.start(phase)
            _sleep_until(phase.start_at + phase.warmup)
            cpu_before, pg_before = cpu_sample(), database.read()
            _sleep_until(phase.start_at + phase.warmup + phase.seconds)
            cpu_after, pg_after = cpu_sample(), database.read()
            parts = clients.collect(phase)
            cpu = cpu_use(cpu_before, cpu_after, server.pid, clients.pids, database.postmaster)
            activity = None
            if pg_before is not None and pg_after is not None:
                activity = Activity.between(pg_before, pg_after)
            row = summarize(label, parts, args.seconds)
            run.rows.append(dataclasses.replace(row, in_flight=level, cpu=cpu, database=activity))
            if kind == "create":
                created.extend(parts)
            if server.poll() is not None:
                run.problems.append(f"the server exited with {server.returncode} during {label}")
                return False
        return True

    # What the server and PostgreSQL spend with no call at all (the jobs' polls, the
    # readiness probe): per call it weighs most when few calls get through.
    before = cpu_sample()
    time.sleep(IDLE_SECONDS)
    run.idle = cpu_use(before, cpu_sample(), server.pid, clients.pids, database.postmaster)
    if not measure("Health/Check", HEALTH_CHECK, "cycle", health_payloads()):
        return run
    if not measure("CreatePayment", CREATE_PAYMENT, "create", (), service):
        return run
    ids, run.states = created_ids(created)
    if not ids:
        run.problems.append("CreatePayment created no payment, so GetPayment had nothing to read")
        return run
    if measure("GetPayment", GET_PAYMENT, "cycle", get_payloads(ids), service):
        measure("ListPayments", LIST_PAYMENTS, "cycle", list_payloads(), customers)
    return run


# --- the report ---------------------------------------------------------------------------


def background(rows: Sequence[Row]) -> Activity | None:
    """What the database did while only Health/Check ran: the jobs and the readiness probe."""
    idle = Activity()
    for row in rows:
        if row.label != "Health/Check":
            continue
        if row.database is None:
            return None
        idle.add(row.database)
    return idle if idle.seconds else None


def per_call(row: Row, idle: Activity | None) -> PerCall | None:
    if row.database is None or idle is None or row.label == "Health/Check":
        return None
    return PerCall.of(row.database, idle, row.ok_calls)


def _cell(value: float | None, width: int, digits: int, missing: str = "n/a") -> str:
    if value is None or math.isnan(value):
        return f"{missing:>{width}}"
    return f"{value:>{width}.{digits}f}"


def print_table(rows: Sequence[Row], idle: Activity | None) -> None:
    baseline = {row.in_flight: row.rps for row in rows if row.label == "Health/Check"}
    print(
        f"{'RPC':<14} {'in flight':>9} {'calls':>7} {'errors':>6} {'RPS':>7} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'% Health':>8} {'server ms':>9} {'PG ms':>6} {'trips':>6} "
        f"{'xacts':>6} {'nested':>6}"
    )
    for row in rows:
        share = 100 * row.rps / baseline[row.in_flight] if baseline.get(row.in_flight) else None
        cpu = row.cpu
        server_ms = row.cpu_ms_per_call(cpu.server) if cpu else None
        postgres_ms = row.cpu_ms_per_call(cpu.postgres) if cpu else None
        counted = per_call(row, idle)
        # The baseline makes no SQL: what the database did meanwhile is the background.
        missing = "-" if row.label == "Health/Check" else "n/a"
        counts = [
            _cell(getattr(counted, name) if counted else None, 6, 2, missing)
            for name in ("round_trips", "transactions", "nested")
        ]
        print(
            f"{row.label:<14} {row.in_flight:>9} {row.calls:>7} {row.errors:>6} {row.rps:>7.0f} "
            f"{row.p50_ms:>7.2f} {row.p99_ms:>7.2f} {_cell(share, 7, 1)}% "
            f"{_cell(server_ms, 9, 2)} {_cell(postgres_ms, 6, 2)} {' '.join(counts)}"
        )


def print_cpu(rows: Sequence[Row], idle: CpuUse | None, database: Database) -> None:
    postgres = "the cluster's processes" if database.cluster else "every postgres process"
    print(
        f"\nCPU in the measured windows, % of one core ({os.cpu_count()} cores; postgres: "
        f"{postgres}; other: everything else on the machine)"
    )
    print(
        f"{'RPC':<14} {'in flight':>9} {'server':>7} {'clients':>8} {'postgres':>9} "
        f"{'other':>7} {'steal':>7}  each server process (the supervisor first)"
    )
    lines = [("(idle)", 0, idle)] + [(row.label, row.in_flight, row.cpu) for row in rows]
    for label, in_flight, cpu in lines:
        if cpu is None:
            continue
        each = " ".join(f"{one:.0f}" for one in cpu.server_processes)
        print(
            f"{label:<14} {in_flight:>9} {cpu.server:>7.0f} {cpu.clients:>8.0f} "
            f"{cpu.postgres:>9.0f} {cpu.other:>7.0f} {cpu.steal:>7.0f}  {each}"
        )
    if idle is not None:
        print(
            f"(idle: {IDLE_SECONDS:g} s with no call before the first phase; it is not "
            "subtracted from the CPU per call)"
        )
    busiest = max(rows, key=lambda row: row.cpu.other if row.cpu else 0.0)
    if busiest.cpu is not None and busiest.cpu.other > NOISE_WARNING_PERCENT:
        print(
            f"WARNING: other processes used {busiest.cpu.other:.0f}% of a core during "
            f"{busiest.label} at {busiest.in_flight}: the machine was not quiet"
        )


def print_statements(rows: Sequence[Row], idle: Activity | None, database: Database) -> None:
    """Each RPC's statements per call, its windows pooled, the background subtracted."""
    reader = database.reader
    if idle is None or reader is None:
        print("\nround trips and transactions per call: n/a (the counters could not be read)")
        return
    statements = "?"
    if idle.statements is not None:
        statements = f"{sum(idle.statements.values()) / idle.seconds:.1f}"
    print(
        f"\nbackground (the jobs and the readiness probe, measured in the Health/Check "
        f"windows and subtracted from every figure above and below): {statements} "
        f"statements/s, {idle.transactions / idle.seconds:.1f} transactions/s"
    )
    if idle.statements is None:
        print(f"round trips per call: n/a ({reader.statements_missing})")
        return
    labels = dict.fromkeys(row.label for row in rows if row.label != "Health/Check")
    for label in labels:
        pooled = Activity()
        calls = 0
        for row in rows:
            if row.label == label and row.database is not None:
                pooled.add(row.database)
                calls += row.ok_calls
        counted = PerCall.of(pooled, idle, calls)
        if counted is None:
            continue
        print(
            f"\n{label}: statements per call, every level together "
            f"({counted.round_trips or 0:.2f} round trips, {counted.transactions:.2f} "
            f"transactions; * = run inside a function or trigger, not a round trip)"
        )
        shown = sorted(counted.statements.items(), key=lambda item: (-item[1], item[0].queryid))
        for statement, n in shown:
            if n >= SHOWN_PER_CALL:
                mark = " " if statement.toplevel else "*"
                print(f"  {n:>6.2f} {mark} {reader.text(statement)}")


@dataclass(frozen=True, slots=True)
class Target:
    figure: str
    value: float | None
    limit: float
    at_most: bool  # the value must be <= limit, else >= limit
    unit: str

    def line(self) -> str:
        limit = f"{'<=' if self.at_most else '>='} {self.limit:g}{self.unit}"
        if self.value is None or math.isnan(self.value):
            measured, verdict = "n/a", "n/a"
        else:
            passed = self.value <= self.limit if self.at_most else self.value >= self.limit
            measured, verdict = f"{self.value:.2f}{self.unit}", "PASS" if passed else "FAIL"
        return f"  {self.figure:<62} {measured:>10}  {limit:<10} {verdict}"


def targets(rows: Sequence[Row], idle: Activity | None, levels: Sequence[int]) -> list[Target]:
    """Issue 17's targets: costs and the share at the highest level, p99 at the lowest."""
    low, high = min(levels), max(levels)

    def row(label: str, level: int) -> Row | None:
        return next((r for r in rows if r.label == label and r.in_flight == level), None)

    def server_ms(found: Row | None) -> float | None:
        return found.cpu_ms_per_call(found.cpu.server) if found and found.cpu else None

    create, create_low = row("CreatePayment", high), row("CreatePayment", low)
    health = row("Health/Check", high)
    counted = per_call(create, idle) if create else None
    transactions = counted.transactions if counted else None
    round_trips = counted.round_trips if counted else None
    postgres_ms = create.cpu_ms_per_call(create.cpu.postgres) if create and create.cpu else None
    share = 100 * create.rps / health.rps if create and health and health.rps else None
    p99 = create_low.p99_ms if create_low else None
    get_ms, list_ms = server_ms(row("GetPayment", high)), server_ms(row("ListPayments", high))
    h, lo = f", {high} in flight", f", {low} in flight"
    return [
        Target(f"server CPU per CreatePayment(confirm){h}", server_ms(create), 1.0, True, " ms"),
        Target(f"PostgreSQL CPU per CreatePayment(confirm){h}", postgres_ms, 0.9, True, " ms"),
        Target("transactions per CreatePayment(confirm)", transactions, 2, True, ""),
        Target("round trips to PostgreSQL per CreatePayment(confirm)", round_trips, 4, True, ""),
        Target(f"CreatePayment RPS as a share of Health/Check's{h}", share, 15, False, " %"),
        Target(f"CreatePayment p99{lo}", p99, 8, True, " ms"),
        Target(f"server CPU per GetPayment{h}", get_ms, 0.35, True, " ms"),
        Target(f"server CPU per ListPayments (one user){h}", list_ms, 0.6, True, " ms"),
    ]


def reads_setting(name: str) -> bool:
    """Whether this server's `payments serve` reads the environment variable `name`
    (its help lists every one it reads)."""
    done = subprocess.run(
        [*payments_command(), "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return name in done.stdout


def describe_run(args: argparse.Namespace, database: Database) -> str:
    processes = f"PAYMENTS_SERVER_PROCESSES={args.server_processes or 1}"
    if not args.reads_server_processes:
        processes += " (this server does not read it: one process)"
    seeded = f", {args.seed_payments} payments seeded" if args.seed_payments else ""
    settings = database.reader.describe() if database.reader else "PostgreSQL"
    return (
        f"server: payments serve, PAYMENTS_ENV=production (HS256 auth: a service token for "
        f"Create/GetPayment, each customer's own for ListPayments), JSON logs, jobs on, no "
        f"trace exporter, mock provider, {processes}\n"
        f"database: {database.where()}{seeded}; {settings}\n"
        f"clients: closed loop at {' and '.join(map(str, args.levels))} calls in flight, "
        f"{args.processes} client process(es) x {args.channels} channel(s), "
        f"{args.warmup:g} s warm-up + {args.seconds:g} s per RPC and level\n"
        f"load average at the start: {args.load_at_start}"
    )


def report(run: Run, database: Database, args: argparse.Namespace) -> bool:
    """Prints the tables; False when more than 1 % of an RPC's calls failed."""
    rows = run.rows
    idle = background(rows)
    print()
    print(describe_run(args, database))
    print(f"load average at the end: {_load_average()}\n")
    print_table(rows, idle)
    print(
        "(server ms / PG ms: CPU per OK call; trips: round trips to PostgreSQL (top-level "
        "statements) per call,\n xacts: transactions per call, nested: statements run inside "
        "functions and triggers, per call)"
    )
    if all(row.cpu is not None for row in rows):
        print_cpu(rows, run.idle, database)
    print_statements(rows, idle, database)
    print("\nissue 17 targets:")
    for target in targets(rows, idle, args.levels):
        print(target.line())
    print(
        "  (transactions and round trips: all the database ran per payment in the windows, "
        "the jobs' work per payment\n   included, such as numbering its receipt; the "
        "statements per call above tell them apart)"
    )
    if database.cluster is None:
        print("  (PostgreSQL CPU here is every postgres process on the machine, ours or not)")
    not_succeeded = sum(n for state, n in run.states.items() if state != "PAYMENT_STATE_SUCCEEDED")
    print(f"\npayments created: {sum(run.states.values())} ({dict(run.states)})")
    if not_succeeded:
        print(f"WARNING: {not_succeeded} created payments did not end SUCCEEDED")
    healthy = True
    for label in dict.fromkeys(row.label for row in rows):
        mine = [row for row in rows if row.label == label]
        calls = sum(row.calls + row.outside_calls for row in mine)
        errors = sum(row.errors + row.outside_errors for row in mine)
        outside = sum(row.outside_errors for row in mine)
        if outside:
            print(f"{label}: {outside} errors outside the measured windows")
        kinds: Counter[str] = Counter()
        for row in mine:
            kinds.update(row.error_kinds)
        for kind, count in kinds.most_common():
            print(f"{label} error x{count}: {kind}")
        if calls == 0 or errors > MAX_ERROR_RATIO * calls:
            healthy = False
            print(f"BENCHMARK FAILED: {label}: {errors} of {calls} calls were not OK")
    return healthy


def _load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def _levels(raw: str) -> tuple[int, ...]:
    try:
        levels = tuple(sorted({int(part) for part in raw.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {raw!r}") from None
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError("calls in flight must be at least 1")
    return levels


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=WINDOW_SECONDS, help="measured seconds per RPC and level"
    )
    parser.add_argument(
        "--warmup", type=float, default=WARMUP_SECONDS, help="warm-up seconds per RPC and level"
    )
    parser.add_argument(
        "--concurrency",
        dest="levels",
        type=_levels,
        default=LEVELS,
        help="calls in flight, one or more levels, comma-separated (default 4,32)",
    )
    parser.add_argument(
        "--server-processes",
        type=int,
        default=None,
        help="PAYMENTS_SERVER_PROCESSES for the server (default: 1)",
    )
    parser.add_argument(
        "--seed-payments",
        type=int,
        default=0,
        help="payments to put in the table before the run (bench/seed_payments.py's data)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="serve from this PostgreSQL database instead of a private cluster: it is "
        "DROPPED and recreated (its name must contain 'bench')",
    )
    parser.add_argument(
        "--postgres-setting",
        dest="postgres_settings",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the private cluster, e.g. commit_delay=100 (repeatable)",
    )
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument(
        "--channels",
        type=int,
        default=None,
        help="channels (connections) per client process (default: 2, and 4 per server "
        "process when there are several)",
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be positive and --warmup not negative")
    if args.server_processes is not None and args.server_processes < 1:
        parser.error("--server-processes must be at least 1")
    if args.seed_payments < 0:
        parser.error("--seed-payments must not be negative")
    if any("=" not in setting for setting in args.postgres_settings):
        parser.error("--postgres-setting takes NAME=VALUE")
    if args.channels is None:
        servers = args.server_processes or 1
        args.channels = 2 if servers == 1 else 4 * servers
    if not 1 <= args.processes <= min(args.levels) or args.channels < 1:
        parser.error("need 1 <= --processes <= the lowest concurrency and --channels >= 1")
    args.load_at_start = _load_average()
    args.reads_server_processes = reads_setting("PAYMENTS_SERVER_PROCESSES")
    if (args.server_processes or 1) > 1 and not args.reads_server_processes:
        print(
            "WARNING: this server does not read PAYMENTS_SERVER_PROCESSES: it serves from one "
            "process whatever --server-processes says",
            file=sys.stderr,
        )
    return args


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def serve_and_drive(database: Database, args: argparse.Namespace) -> Run:
    credentials = Credentials.new()
    with tempfile.TemporaryFile("w+", prefix="payments-bench-", suffix=".log") as log:
        target = f"127.0.0.1:{free_port()}"
        server = start_server(
            database.dsn,
            target,
            log,
            production=credentials,
            jobs=True,
            server_processes=args.server_processes or 1,
        )
        try:
            wait_until_serving(server, target, log)
            print(f"server pid {server.pid} serving on {target}", file=sys.stderr)
            clients = Clients(target, args.processes, args.channels, max(args.levels))
            try:
                run = drive(clients, server, database, credentials, args)
            except BaseException:
                clients.terminate()
                raise
            clients.close()
            if run.problems and server.poll() is not None:
                run.problems.append(f"server log:\n{_tail(log)}")
        finally:
            stop_server(server)
    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM cleans up like Ctrl-C: the server is stopped and the database removed.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        check_create_payload()
        print("preparing the database ...", file=sys.stderr)
        existing = args.database_url
        database = (
            Database.existing(existing) if existing else Database.private(args.postgres_settings)
        )
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        print(f"benchmark failed: cannot prepare the database: {error!r}", file=sys.stderr)
        return 1
    try:
        migrate(database.dsn)
        if args.seed_payments:
            seed_table(database, args.seed_payments)
        database.open_reader()
        run = serve_and_drive(database, args)
        healthy = report(run, database, args)
        for problem in run.problems:
            print(f"BENCHMARK FAILED: {problem}")
        healthy = healthy and not run.problems
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: stopping the server and removing the database", file=sys.stderr)
        return 130
    finally:
        try:
            database.remove()
        except Exception as error:
            print(f"could not remove the database: {error!r}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
