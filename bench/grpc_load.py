"""gRPC load benchmark: a real `payments serve` on a fresh PostgreSQL database.

    .venv/bin/python bench/grpc_load.py [--seconds N] [--concurrency 32] [--database-url URL]

What it does, in order:

1. Drops and recreates the database named in --database-url (its name must contain
   "bench": this tool deletes it), and runs `payments migrate` on it.
2. Starts `payments serve --no-jobs` on a free 127.0.0.1 port with the mock provider and
   waits until grpc.health.v1 reports SERVING.
3. Drives, one after the other, a closed loop of exactly --concurrency unary calls in
   flight: Health/Check (the baseline), CreatePayment (confirm, pm_card_visa, USD 10.50,
   unique request_id and order_id, 100 users), GetPayment (ids created just before) and
   ListPayments (one user's payments, page_size 20). Each gets a warm-up, then a measured
   window; a call belongs to the window in which it completes.
4. Prints a table and judges CreatePayment against its target (>= 35 % of the Health/Check
   RPS and p99 <= 50 ms). Missing the target is a finding, not a failure: the exit code is
   0 unless the benchmark itself failed (the server did not start, a client died, or more
   than 1 % of the calls did not return OK).
5. Always stops the server (SIGTERM, then SIGKILL) and drops the database.

The load generator shares the machine with the server, so it is kept light: request
messages are serialized once (CreatePayment from a byte template with the unique part
spliced in), calls go through the channel as raw bytes (no protobuf work per call), and
the in-flight calls are asyncio tasks looping in --processes client processes with
--channels channels (connections) each. Every RPC, the baseline included, is measured
with the same client processes and channels in the same run.
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
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
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
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/payments_bench"

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

WARMUP_SECONDS = 2.0
CALL_TIMEOUT_SECONDS = 30.0
MAX_ERROR_RATIO = 0.01
TARGET_SHARE_OF_BASELINE = 0.35
TARGET_P99_MS = 50.0
SERVER_START_SECONDS = 60.0
SERVER_STOP_SECONDS = 15.0
_MAX_ERROR_KINDS = 20
# More CPU than this (% of one core) used by processes outside the benchmark: warn.
NOISE_WARNING_PERCENT = 15.0

Kind = Literal["cycle", "create"]


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
    cpu: CpuUse | None = None


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU used during a measured window, in % of one core (the machine has os.cpu_count())."""

    server: float
    clients: float
    postgres: float  # every postgres process, ours or not
    other: float  # everything else on the machine: noise
    steal: float  # time the hypervisor gave to someone else


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
    return tuple(
        payments_pb2.ListPaymentsRequest(
            filter=f'user_id = "{user}"', page_size=20
        ).SerializeToString()
        for user in USERS
    )


# --- client processes ---------------------------------------------------------------------


def _share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


async def _caller(
    call: aio.UnaryUnaryMultiCallable[bytes, bytes],
    next_payload: Callable[[], bytes],
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
        try:
            response = await call(next_payload(), timeout=CALL_TIMEOUT_SECONDS)
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
    if phase.kind == "create":
        templates = create_templates()

        def next_payload() -> bytes:
            return create_payload(templates, client, next(counter))

    else:
        payloads = phase.payloads

        def next_payload() -> bytes:
            return payloads[next(counter) % len(payloads)]

    await asyncio.sleep(max(0.0, phase.start_at - time.monotonic()))
    await asyncio.gather(
        *(_caller(calls[i % len(calls)], next_payload, phase, result) for i in range(tasks))
    )
    return result


async def _client(
    client: int,
    target: str,
    channel_count: int,
    tasks: int,
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
            results.put(await _run_phase(channels, client, tasks, phase, counter))
    finally:
        await asyncio.gather(*(channel.close(None) for channel in channels))


def client_main(
    client: int,
    target: str,
    channel_count: int,
    tasks: int,
    commands: multiprocessing.queues.Queue[Phase | None],
    results: multiprocessing.queues.Queue[PhaseResult | str],
) -> None:
    """Entry point of a client process."""
    try:
        asyncio.run(_client(client, target, channel_count, tasks, commands, results))
    except KeyboardInterrupt:
        pass  # Ctrl-C reaches the whole process group; the parent cleans up
    except Exception as error:
        results.put(f"client {client} failed: {error!r}")


class Clients:
    """--processes client processes with --concurrency in-flight calls between them."""

    def __init__(self, target: str, processes: int, channels: int, concurrency: int) -> None:
        context = multiprocessing.get_context("spawn")  # no fork after gRPC is loaded
        self._results: multiprocessing.queues.Queue[PhaseResult | str] = context.Queue()
        self._commands: list[multiprocessing.queues.Queue[Phase | None]] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        for index in range(processes):
            commands: multiprocessing.queues.Queue[Phase | None] = context.Queue()
            process = context.Process(
                target=client_main,
                args=(
                    index,
                    target,
                    channels,
                    _share(concurrency, processes, index),
                    commands,
                    self._results,
                ),
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
class CpuSample:
    at: float
    busy: float  # CPU seconds the machine spent on user, nice, system, irq and softirq
    steal: float
    processes: dict[int, tuple[str, float]]  # pid: (command name, CPU seconds of all threads)


def cpu_sample() -> CpuSample | None:
    """Machine-wide and per-process CPU time so far; None without a readable /proc."""
    at = time.monotonic()
    try:
        with open("/proc/stat") as stat:
            ticks = [int(f) for f in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    processes: dict[int, tuple[str, float]] = {}
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
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND  # utime + stime
        processes[int(entry.name)] = (raw[raw.index("(") + 1 : name_end], cpu)
    busy = (user + nice + system + irq + softirq) / _TICKS_PER_SECOND
    return CpuSample(at, busy, steal / _TICKS_PER_SECOND, processes)


def cpu_use(
    before: CpuSample | None, after: CpuSample | None, server: int, clients: Sequence[int]
) -> CpuUse | None:
    if before is None or after is None or after.at <= before.at:
        return None

    def used(pid: int) -> float:
        if pid not in before.processes or pid not in after.processes:
            return 0.0
        return after.processes[pid][1] - before.processes[pid][1]

    ours = used(server)
    theirs = sum(used(pid) for pid in clients)
    postgres = sum(used(pid) for pid, (name, _) in after.processes.items() if name == "postgres")
    rest = after.busy - before.busy - ours - theirs - postgres
    scale = 100 / (after.at - before.at)
    return CpuUse(
        server=ours * scale,
        clients=theirs * scale,
        postgres=postgres * scale,
        other=max(0.0, rest) * scale,
        steal=(after.steal - before.steal) * scale,
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


def server_environment(database_url: str, address: str) -> dict[str, str]:
    """The caller's environment without any PAYMENTS_* setting, plus the benchmark's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
    env.update(
        PAYMENTS_DATABASE_URL=database_url,
        PAYMENTS_GRPC_ADDRESS=address,
        PAYMENTS_DRAIN_SECONDS="0",
        PAYMENTS_PROVIDER="mock",
        PAYMENTS_ENV="development",
    )
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


def start_server(database_url: str, address: str, log: IO[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*payments_command(), "serve", "--no-jobs"],
        cwd=ROOT,
        env=server_environment(database_url, address),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )


def wait_until_serving(server: subprocess.Popen[bytes], target: str, log: IO[str]) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
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
    raise BenchError(
        f"the server was not SERVING after {SERVER_START_SECONDS:.0f} s:\n{_tail(log)}"
    )


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


def drive(
    clients: Clients, server: subprocess.Popen[bytes], args: argparse.Namespace
) -> tuple[list[Row], Counter[str], list[str]]:
    """Runs the phases in turn; stops early, with a problem noted, if the server dies."""
    rows: list[Row] = []
    results: list[PhaseResult] = []
    problems: list[str] = []

    def measure(label: str, method: str, kind: Kind, payloads: tuple[bytes, ...]) -> bool:
        phase = Phase(
            label, method, kind, payloads, time.monotonic() + 0.5, args.warmup, args.seconds
        )
        print(f"  {label}: {args.warmup:g} s warm-up + {args.seconds:g} s ...", file=sys.stderr)
        clients.start(phase)
        _sleep_until(phase.start_at + phase.warmup)
        before = cpu_sample()
        _sleep_until(phase.start_at + phase.warmup + phase.seconds)
        after = cpu_sample()
        parts = clients.collect(phase)
        row = summarize(label, parts, args.seconds)
        rows.append(dataclasses.replace(row, cpu=cpu_use(before, after, server.pid, clients.pids)))
        results.extend(parts)
        if server.poll() is not None:
            problems.append(f"the server exited with {server.returncode} during {label}")
            return False
        return True

    if not measure("Health/Check", HEALTH_CHECK, "cycle", health_payloads()):
        return rows, Counter(), problems
    if not measure("CreatePayment", CREATE_PAYMENT, "create", ()):
        return rows, Counter(), problems
    ids, states = created_ids(results)
    if not ids:
        problems.append("CreatePayment created no payment, so GetPayment had nothing to read")
        return rows, states, problems
    if measure("GetPayment", GET_PAYMENT, "cycle", get_payloads(ids)):
        measure("ListPayments", LIST_PAYMENTS, "cycle", list_payloads())
    return rows, states, problems


def verdict(create: Row, baseline: Row) -> tuple[bool, float]:
    share = create.rps / baseline.rps if baseline.rps else 0.0
    ok = share >= TARGET_SHARE_OF_BASELINE and create.p99_ms <= TARGET_P99_MS
    return ok, share


def report(rows: Sequence[Row], states: Counter[str], args: argparse.Namespace) -> bool:
    """Prints the table; False when more than 1 % of the calls failed."""
    baseline = rows[0]
    print()
    print(
        f"closed loop, {args.concurrency} calls in flight, {args.processes} client process(es) "
        f"x {args.channels} channel(s), {args.warmup:g} s warm-up + {args.seconds:g} s per RPC"
    )
    header = f"{'RPC':<14} {'calls':>8} {'errors':>7} {'RPS':>8} {'p50 ms':>8} {'p99 ms':>8}"
    print(f"{header} {'% of Health':>12}  target")
    for row in rows:
        share = 100 * row.rps / baseline.rps if baseline.rps else 0.0
        target = ""
        if row.label == "CreatePayment":
            target = "PASS" if verdict(row, baseline)[0] else "FAIL"
        print(
            f"{row.label:<14} {row.calls:>8} {row.errors:>7} {row.rps:>8.0f} "
            f"{row.p50_ms:>8.2f} {row.p99_ms:>8.2f} {share:>11.1f}%  {target}"
        )
    if all(row.cpu is not None for row in rows):
        print(
            "\nCPU in the measured windows, % of one core "
            f"({os.cpu_count()} cores; 'other' is everything else on the machine)"
        )
        print(
            f"{'RPC':<14} {'server':>7} {'clients':>8} {'postgres':>9} {'other':>7} {'steal':>7}"
            f" {'server CPU ms/call':>19}"
        )
        for row in rows:
            if (cpu := row.cpu) is None:
                continue
            # % of a core / 100 x 1000 ms, per call
            per_call = cpu.server * 10 / row.rps if row.rps else math.nan
            print(
                f"{row.label:<14} {cpu.server:>7.0f} {cpu.clients:>8.0f} {cpu.postgres:>9.0f} "
                f"{cpu.other:>7.0f} {cpu.steal:>7.0f} {per_call:>19.2f}"
            )
        busiest = max(rows, key=lambda row: row.cpu.other if row.cpu else 0.0)
        if busiest.cpu is not None and busiest.cpu.other > NOISE_WARNING_PERCENT:
            print(
                f"WARNING: other processes used {busiest.cpu.other:.0f}% of a core during "
                f"{busiest.label}: the machine was not quiet, so the figures are low"
            )
    for create in (r for r in rows if r.label == "CreatePayment"):
        passed, share = verdict(create, baseline)
        print(
            f"\nCreatePayment target (>= {TARGET_SHARE_OF_BASELINE:.0%} of Health/Check RPS and "
            f"p99 <= {TARGET_P99_MS:g} ms): {'PASS' if passed else 'FAIL'} "
            f"({share:.1%} of baseline, p99 {create.p99_ms:.2f} ms)"
        )
    not_succeeded = sum(n for state, n in states.items() if state != "PAYMENT_STATE_SUCCEEDED")
    print(f"payments created: {sum(states.values())} ({dict(states)})")
    if not_succeeded:
        print(f"WARNING: {not_succeeded} created payments did not end SUCCEEDED")
    healthy = True
    for row in rows:
        calls = row.calls + row.outside_calls
        errors = row.errors + row.outside_errors
        if row.outside_errors:
            print(f"{row.label}: {row.outside_errors} errors outside the measured window")
        for kind, count in row.error_kinds.most_common():
            print(f"{row.label} error x{count}: {kind}")
        if calls == 0 or errors > MAX_ERROR_RATIO * calls:
            healthy = False
            print(f"BENCHMARK FAILED: {row.label}: {errors} of {calls} calls were not OK")
    return healthy


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per RPC")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="PostgreSQL database to DROP, recreate and serve from (name must contain 'bench')",
    )
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument("--channels", type=int, default=2, help="channels per client process")
    parser.add_argument(
        "--warmup", type=float, default=WARMUP_SECONDS, help="warm-up seconds per RPC"
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be positive and --warmup not negative")
    if not 1 <= args.processes <= args.concurrency or args.channels < 1:
        parser.error("need 1 <= --processes <= --concurrency and --channels >= 1")
    return args


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM cleans up like Ctrl-C: the server is stopped and the database dropped.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        check_create_payload()
        url = bench_database(args.database_url)
        database_url = url.render_as_string(hide_password=False)
        recreate_database(url)
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        print(f"benchmark failed: cannot prepare the database: {error!r}", file=sys.stderr)
        return 1
    try:
        migrate(database_url)
        with tempfile.TemporaryFile("w+", prefix="payments-bench-", suffix=".log") as log:
            target = f"127.0.0.1:{free_port()}"
            server = start_server(database_url, target, log)
            try:
                wait_until_serving(server, target, log)
                print(f"server pid {server.pid} serving on {target}", file=sys.stderr)
                clients = Clients(target, args.processes, args.channels, args.concurrency)
                try:
                    rows, states, problems = drive(clients, server, args)
                except BaseException:
                    clients.terminate()
                    raise
                clients.close()
                if problems and server.poll() is not None:
                    problems.append(f"server log:\n{_tail(log)}")
            finally:
                stop_server(server)
        healthy = report(rows, states, args)
        for problem in problems:
            print(f"BENCHMARK FAILED: {problem}")
        healthy = healthy and not problems
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: stopping the server and dropping the database", file=sys.stderr)
        return 130
    finally:
        try:
            drop_database(url)
        except Exception as error:
            print(f"could not drop database {url.database}: {error!r}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
