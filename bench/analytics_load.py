"""Analytics at scale: a real `payments serve` on 1,000,000 seeded payments in PostgreSQL.

    .venv/bin/python bench/analytics_load.py [--payments 1000000] [--seconds 10]
        [--concurrency 2] [--database-url URL]

What it does, in order:

1. Seeds the database with bench/seed_payments.py, or reuses it when it already holds
   exactly --payments seeded payments (seeding 1M takes minutes; a rerun does not).
2. Starts `payments serve --no-jobs` on a free port (bench/grpc_load.py's helpers).
3. Checks the answers first: GetPaymentStats over the last 30 days and the 1-year daily
   series in America/New_York must equal a plain SQL recomputation from the rows
   (date_trunc('day', create_time AT TIME ZONE ...)), to the minor unit.
4. Drives each RPC as a closed loop of --concurrency calls in flight, with the same
   client processes: Health/Check (the baseline), GetPaymentStats (30 days, every
   currency, ten windows ending 0..9 days before the data's end), GetRevenueSeries
   (365 days, daily, America/New_York) and ListPayments (one user's newest 20,
   cycling over 100 users with about 100 payments each).
5. Prints p50/p95/p99 per RPC against the targets: stats and series p95 < 200 ms,
   ListPayments p99 < 20 ms. Missing a target is a finding (exit code 0); the exit
   code is 1 when the benchmark itself failed or the answers were wrong.

The seeded database is kept for the next run; drop it with
`psql -h 127.0.0.1 -U postgres -c 'DROP DATABASE payments_bench_1m'`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from payments.v1 import analytics_pb2, analytics_pb2_grpc, payments_pb2  # noqa: E402

from bench.grpc_load import (  # noqa: E402
    HEALTH_CHECK,
    LIST_PAYMENTS,
    BenchError,
    Clients,
    CpuUse,
    Phase,
    PhaseResult,
    cpu_sample,
    cpu_use,
    free_port,
    health_payloads,
    interrupt,
    percentile,
    start_server,
    stop_server,
    wait_until_serving,
)
from bench.seed_payments import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    SEED_END,
    SEED_USER_PREFIX,
    ensure_seeded,
)

GET_PAYMENT_STATS = "/payments.v1.AnalyticsService/GetPaymentStats"
GET_REVENUE_SERIES = "/payments.v1.AnalyticsService/GetRevenueSeries"
SERIES_ZONE = "America/New_York"
STATS_DAYS = 30
SERIES_DAYS = 365
LIST_USERS = tuple(f"{SEED_USER_PREFIX}{n * 97:05d}" for n in range(100))
TARGET_P95_MS = 200.0
TARGET_LIST_P99_MS = 20.0
WARMUP_SECONDS = 2.0
MAX_ERROR_RATIO = 0.01


@dataclasses.dataclass(frozen=True, slots=True)
class Measured:
    label: str
    calls: int
    errors: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    error_kinds: dict[str, int]
    cpu: CpuUse | None


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def stats_request(days_before_end: int) -> analytics_pb2.GetPaymentStatsRequest:
    end = SEED_END - timedelta(days=days_before_end)
    return analytics_pb2.GetPaymentStatsRequest(
        start_time=_stamp(end - timedelta(days=STATS_DAYS)), end_time=_stamp(end)
    )


def series_request() -> analytics_pb2.GetRevenueSeriesRequest:
    return analytics_pb2.GetRevenueSeriesRequest(
        start_time=_stamp(SEED_END - timedelta(days=SERIES_DAYS)),
        end_time=_stamp(SEED_END),
        interval=analytics_pb2.SERIES_INTERVAL_DAY,
        time_zone=SERIES_ZONE,
    )


def list_payloads() -> tuple[bytes, ...]:
    return tuple(
        payments_pb2.ListPaymentsRequest(
            filter=f'user_id = "{user}"', page_size=20
        ).SerializeToString()
        for user in LIST_USERS
    )


# --- correctness: the service's answers against plain SQL --------------------------------

_STATS_SQL = """
SELECT currency_code, count(*),
    coalesce(sum(amount_captured) FILTER (WHERE state IN
        ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED')), 0),
    coalesce(sum(amount_refunded) FILTER (WHERE state IN
        ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED')), 0),
    count(*) FILTER (WHERE state IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED')),
    count(*) FILTER (WHERE state = 'FAILED')
FROM payments WHERE create_time >= :start AND create_time < :end
GROUP BY currency_code ORDER BY currency_code
"""
_SERIES_SQL = """
SELECT date_trunc('day', create_time AT TIME ZONE :zone)::date, currency_code, count(*),
    sum(amount_captured), sum(amount_refunded)
FROM payments
WHERE create_time >= :start AND create_time < :end
    AND state IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED')
GROUP BY 1, 2
"""


async def _recompute(url: URL) -> tuple[list[tuple[object, ...]], set[tuple[object, ...]]]:
    engine = create_async_engine(url)
    stats_end, series_start = SEED_END, SEED_END - timedelta(days=SERIES_DAYS)
    try:
        async with engine.connect() as connection:
            stats = await connection.execute(
                text(_STATS_SQL),
                {"start": stats_end - timedelta(days=STATS_DAYS), "end": stats_end},
            )
            series = await connection.execute(
                text(_SERIES_SQL), {"zone": SERIES_ZONE, "start": series_start, "end": SEED_END}
            )
            return [tuple(r) for r in stats], {
                (day.isoformat(), code, n, int(gross), int(refunded))
                for day, code, n, gross, refunded in series
            }
    finally:
        await engine.dispose()


def check_answers(target: str, url: URL) -> list[str]:
    """Differences between the service and plain SQL; empty when they agree exactly."""
    with grpc.insecure_channel(target) as channel:
        stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        stats = stub.GetPaymentStats(stats_request(0), timeout=60)
        series = stub.GetRevenueSeries(series_request(), timeout=60)
    expected_stats, expected_series = asyncio.run(_recompute(url))
    problems = []
    seen_stats = [
        (
            c.currency_code,
            c.figures.payment_count,
            c.figures.gross_volume.minor_units,
            c.figures.refunded_volume.minor_units,
            c.figures.succeeded_count,
            c.figures.failed_count,
        )
        for c in stats.currencies
    ]
    if seen_stats != expected_stats:
        problems.append(f"GetPaymentStats {seen_stats} != SQL {expected_stats}")
    zone = ZoneInfo(SERIES_ZONE)
    seen_series = {
        (
            bucket.start_time.ToDatetime(UTC).astimezone(zone).date().isoformat(),
            c.currency_code,
            c.payment_count,
            c.gross_volume.minor_units,
            c.refunded_volume.minor_units,
        )
        for bucket in series.buckets
        for c in bucket.currencies
    }
    if seen_series != expected_series:
        problems.append(
            f"GetRevenueSeries differs from SQL in {len(seen_series ^ expected_series)} cells"
        )
    print(
        f"answers checked against plain SQL: GetPaymentStats {len(seen_stats)} currencies, "
        f"GetRevenueSeries {len(series.buckets)} buckets / {len(seen_series)} cells: "
        f"{'EQUAL' if not problems else 'DIFFERENT'}"
    )
    return problems


# --- the run ------------------------------------------------------------------------------


def _summarize(label: str, parts: Sequence[PhaseResult], seconds: float) -> Measured:
    latencies = sorted(itertools.chain.from_iterable(p.latencies for p in parts))
    kinds: dict[str, int] = {}
    for part in parts:
        for kind, n in part.error_kinds.items():
            kinds[kind] = kinds.get(kind, 0) + n
    calls = sum(p.calls for p in parts)
    errors = sum(p.errors for p in parts)
    return Measured(
        label=label,
        calls=calls,
        errors=errors,
        rps=(calls - errors) / seconds,
        p50_ms=percentile(latencies, 50) * 1000,
        p95_ms=percentile(latencies, 95) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        error_kinds=kinds,
        cpu=None,
    )


def drive(clients: Clients, server_pid: int, args: argparse.Namespace) -> list[Measured]:
    phases = [
        ("Health/Check", HEALTH_CHECK, health_payloads()),
        (
            "GetPaymentStats",
            GET_PAYMENT_STATS,
            tuple(stats_request(days).SerializeToString() for days in range(10)),
        ),
        ("GetRevenueSeries", GET_REVENUE_SERIES, (series_request().SerializeToString(),)),
        ("ListPayments", LIST_PAYMENTS, list_payloads()),
    ]
    rows = []
    for label, method, payloads in phases:
        phase = Phase(
            label, method, "cycle", payloads, time.monotonic() + 0.5, args.warmup, args.seconds
        )
        print(f"  {label}: {args.warmup:g} s warm-up + {args.seconds:g} s ...", file=sys.stderr)
        clients.start(phase)
        time.sleep(max(0.0, phase.start_at + phase.warmup - time.monotonic()))
        before = cpu_sample()
        time.sleep(max(0.0, phase.start_at + phase.warmup + phase.seconds - time.monotonic()))
        after = cpu_sample()
        row = _summarize(label, clients.collect(phase), args.seconds)
        rows.append(dataclasses.replace(row, cpu=cpu_use(before, after, server_pid, clients.pids)))
    return rows


def _target(row: Measured) -> str:
    if row.label in ("GetPaymentStats", "GetRevenueSeries"):
        ok, what = row.p95_ms < TARGET_P95_MS, f"p95 < {TARGET_P95_MS:g} ms"
    elif row.label == "ListPayments":
        ok, what = row.p99_ms < TARGET_LIST_P99_MS, f"p99 < {TARGET_LIST_P99_MS:g} ms"
    else:
        return ""
    return f"{'PASS' if ok else 'FAIL'} ({what})"


def report(rows: Sequence[Measured], args: argparse.Namespace) -> bool:
    print(
        f"\n{args.payments} payments; closed loop, {args.concurrency} calls in flight, "
        f"{args.warmup:g} s warm-up + {args.seconds:g} s per RPC"
    )
    print(
        f"{'RPC':<17} {'calls':>7} {'errors':>6} {'RPS':>7} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8}  target"
    )
    healthy = True
    for row in rows:
        print(
            f"{row.label:<17} {row.calls:>7} {row.errors:>6} {row.rps:>7.1f} {row.p50_ms:>8.2f} "
            f"{row.p95_ms:>8.2f} {row.p99_ms:>8.2f}  {_target(row)}"
        )
        if row.calls == 0 or row.errors > MAX_ERROR_RATIO * row.calls:
            healthy = False
        for kind, count in row.error_kinds.items():
            print(f"  {row.label} error x{count}: {kind}")
    print("\nCPU in the measured windows, % of one core ('other': outside the benchmark)")
    print(f"{'RPC':<17} {'server':>7} {'clients':>8} {'postgres':>9} {'other':>7} {'steal':>7}")
    for row in rows:
        if (cpu := row.cpu) is not None:
            print(
                f"{row.label:<17} {cpu.server:>7.0f} {cpu.clients:>8.0f} {cpu.postgres:>9.0f} "
                f"{cpu.other:>7.0f} {cpu.steal:>7.0f}"
            )
    return healthy


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--payments", type=int, default=1_000_000, help="payments to seed")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per RPC")
    parser.add_argument("--concurrency", type=int, default=2, help="calls in flight")
    parser.add_argument("--warmup", type=float, default=WARMUP_SECONDS)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="PostgreSQL database to seed or reuse (name must contain 'bench'); kept afterwards",
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0 or args.concurrency < 1 or args.payments < 1:
        parser.error("need --seconds > 0, --warmup >= 0, --concurrency >= 1, --payments >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        url = ensure_seeded(args.database_url, args.payments)
        database_url = url.render_as_string(hide_password=False)
        with tempfile.TemporaryFile("w+", prefix="payments-bench-", suffix=".log") as log:
            target = f"127.0.0.1:{free_port()}"
            server = start_server(database_url, target, log)
            try:
                wait_until_serving(server, target, log)
                print(f"server pid {server.pid} serving on {target}", file=sys.stderr)
                problems = check_answers(target, url)
                clients = Clients(target, 1, 2, args.concurrency)
                try:
                    rows = drive(clients, server.pid, args)
                except BaseException:
                    clients.terminate()
                    raise
                clients.close()
                if server.poll() is not None:
                    problems.append(f"the server exited with {server.returncode}")
            finally:
                stop_server(server)
        healthy = report(rows, args)
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the server was stopped", file=sys.stderr)
        return 130
    for problem in problems:
        print(f"BENCHMARK FAILED: {problem}")
    return 0 if healthy and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
