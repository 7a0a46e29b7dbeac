"""Outbox relay benchmark: events/s from a prefilled PostgreSQL outbox to a real RabbitMQ.

    .venv/bin/python bench/relay_load.py [--events 20000] [--relays 1] [--batch-size 200]
                                         [--in-flight 2] [--loop uvloop|asyncio]

Drops and recreates the database named in --database-url (its name must contain
"bench"), migrates it, inserts --events outbox rows (4 events per payment, real
EventEnvelope payloads), then runs --relays relays (each with its own engine and
connection, as separate processes would) against a durable queue bound to a
fresh exchange, with publisher confirms and persistent messages. Prints the
events/s from the first claim until every row is marked published, and checks
that the queue holds every event, and the CPU each event cost the relay's process,
PostgreSQL and RabbitMQ (utime + stime from /proc over the same window), with what
the rest of the machine used meanwhile. Always deletes the exchange, queue and database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import asyncpg
import sqlalchemy as sa
import uvloop
from payments.v1 import events_pb2
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import postgres_cpu  # noqa: E402
from bench.grpc_load import CpuSample, cpu_sample  # noqa: E402
from server.adapters.broker.rabbitmq import RabbitPublisher  # noqa: E402
from server.adapters.clock import SystemClock  # noqa: E402
from server.adapters.codec import payment_to_proto, timestamp  # noqa: E402
from server.adapters.db.engine import create_engine  # noqa: E402
from server.adapters.db.migrations import upgrade  # noqa: E402
from server.adapters.db.outbox_store import SqlOutboxStore  # noqa: E402
from server.adapters.db.tables import outbox  # noqa: E402
from server.bootstrap import RELAY_BATCHES_IN_FLIGHT  # noqa: E402
from server.domain.money import Money  # noqa: E402
from server.domain.payment import CaptureMethod, Payment  # noqa: E402
from server.domain.payment_states import PaymentState  # noqa: E402
from server.jobs.outbox_relay import OutboxRelay  # noqa: E402
from server.service.outbox import OutboxRecord  # noqa: E402

DEFAULT_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/payments_relay_bench"
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672/"
TYPES = ("payment.created", "payment.processing", "payment.succeeded", "payment.captured")
FIELDS = ("payment_created", "payment_processing", "payment_succeeded", "payment_captured")


async def _admin(url: str, sql: str) -> None:
    plain = make_url(url).set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(plain.render_as_string(hide_password=False))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


class _CountingPublisher(RabbitPublisher):
    confirmed = 0

    async def publish(self, records: Sequence[OutboxRecord]) -> None:
        await super().publish(records)
        self.confirmed += len(records)


def _rows(events: int) -> list[dict[str, object]]:
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    for n in range(events):
        payment_id, sequence = f"pay_bench{n // 4:08d}", n % 4 + 1
        payment = Payment(
            id=payment_id,
            order_id=f"order-{n // 4}",
            user_id="user-42",
            amount=Money("USD", 1050),
            state=PaymentState.SUCCEEDED,
            provider="mock",
            capture_method=CaptureMethod.AUTOMATIC,
            create_time=now,
            update_time=now,
        )
        envelope = events_pb2.EventEnvelope(
            event_id=str(uuid.uuid4()),
            type=TYPES[n % 4],
            occurred_at=timestamp(now),
            aggregate_type="payment",
            aggregate_id=payment_id,
            sequence=sequence,
        )
        getattr(envelope, FIELDS[n % 4]).payment.CopyFrom(payment_to_proto(payment))
        rows.append(
            {
                "event_id": envelope.event_id,
                "event_type": envelope.type,
                "aggregate_type": "payment",
                "aggregate_id": payment_id,
                "sequence": sequence,
                "payload": envelope.SerializeToString(deterministic=True),
                "occurred_at": now,
            }
        )
    return rows


async def _measure(args: argparse.Namespace) -> float:
    name = make_url(args.database_url).database or ""
    engine = create_engine(args.database_url)
    rows = _rows(args.events)
    async with engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            await connection.execute(outbox.insert(), rows[start : start + 5000])
    # Now, not as autovacuum would, in the middle of the measured run.
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(sa.text("VACUUM ANALYZE outbox"))
    print(f"prefilled {len(rows)} outbox rows ({len(rows[0]['payload'])} B payloads)")  # type: ignore[arg-type]
    exchange_name = f"payments.events.bench-{uuid.uuid4().hex[:8]}"
    broker = await aio_pika.connect(args.broker_url)
    channel = await broker.channel()
    exchange = await channel.declare_exchange(
        exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(exchange_name, durable=True)
    await queue.bind(exchange, "#")
    engines = [engine] + [create_engine(args.database_url) for _ in range(args.relays - 1)]
    publishers = [_CountingPublisher(args.broker_url, exchange_name) for _ in engines]
    relays = [
        OutboxRelay(
            SqlOutboxStore(e),
            publisher,
            SystemClock(),
            batch_size=args.batch_size,
            poll_s=0.05,
            concurrency=args.in_flight,
        )
        for e, publisher in zip(engines, publishers, strict=True)
    ]
    store = SqlOutboxStore(engine)
    try:
        before = cpu_sample()
        started = time.perf_counter()
        tasks = [asyncio.create_task(r.run()) for r in relays]
        # Counted in memory while the relays run, so that the polling costs next to nothing;
        # then the database, for the last batch's mark.
        while sum(p.confirmed for p in publishers) < args.events:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        while await store.unpublished_count():  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        after = cpu_sample()
        # While the relays' connections are open: their titles name the database.
        postgres = postgres_cpu.used(before, after, name) if before and after else (0.0, 0.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        declared = await channel.declare_queue(exchange_name, durable=True, passive=True)
        queued = declared.declaration_result.message_count
        if queued is None or queued < args.events:
            raise RuntimeError(f"the queue holds {queued} of {args.events} events")
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await exchange.delete()
        await broker.close()
        for e in engines:
            await e.dispose()
    rate = float(args.events / elapsed)
    print(
        f"relayed {args.events} events with {args.relays} relay(s), batch {args.batch_size}, "
        f"{args.in_flight} in flight, "
        f"{args.loop}: "
        f"{elapsed:.2f} s, {rate:,.0f} events/s (queue holds {queued})"
    )
    print_cpu(before, after, postgres, args.events)
    return rate


# Process names in /proc/PID/stat: RabbitMQ runs in the Erlang VM.
_RABBITMQ = ("beam.smp", "erl_child_setup")


def print_cpu(
    before: CpuSample | None, after: CpuSample | None, postgres: tuple[float, float], events: int
) -> None:
    """CPU per event of the relay's process, PostgreSQL and RabbitMQ, and the machine's load.

    PostgreSQL is its backends on the benchmark's database, and apart the server-wide
    processes (WAL writer, checkpointer...); other databases' work is in "other".
    """
    if before is None or after is None:
        print("no CPU figures: /proc is not readable")
        return

    def used(pid: int) -> float:
        if pid not in before.processes or pid not in after.processes:
            return 0.0
        return after.processes[pid].cpu - before.processes[pid].cpu

    every_postgres = sum(used(p) for p, t in after.processes.items() if t.name == "postgres")
    rabbitmq = sum(used(p) for p, t in after.processes.items() if t.name in _RABBITMQ)
    seconds = {
        "relay": used(os.getpid()),
        "postgres": postgres[0],
        "pg shared": postgres[1],
        "rabbitmq": rabbitmq,
    }
    window = after.at - before.at
    other = max(0.0, after.busy - before.busy - seconds["relay"] - rabbitmq - every_postgres)
    other += max(0.0, every_postgres - postgres[0] - postgres[1])
    print(f"{'CPU':<10} {'% of a core':>12} {'us/event':>9}")
    for group, used_s in (*seconds.items(), ("other", other)):
        print(f"{group:<10} {used_s / window * 100:>12.0f} {used_s / events * 1e6:>9.0f}")
    steal = (after.steal - before.steal) / window * 100
    load = os.getloadavg()[0]
    cores = os.cpu_count()
    print(f"steal {steal:.0f} % of a core; load average (1 min) {load:.2f} on {cores} cores")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--relays", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--broker-url", default=DEFAULT_BROKER)
    parser.add_argument(
        "--in-flight",
        type=int,
        default=RELAY_BATCHES_IN_FLIGHT,
        help="batches each relay has in flight at once (as payments serve and worker run it)",
    )
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the relay's event loop (payments serve and worker run on uvloop)",
    )
    args = parser.parse_args()
    name = make_url(args.database_url).database or ""
    if "bench" not in name:
        print(f"refusing to drop {name!r}: the database name must contain 'bench'")
        return 1
    asyncio.run(_admin(args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(_admin(args.database_url, f'CREATE DATABASE "{name}"'))
    try:
        upgrade(args.database_url)
        (uvloop.run if args.loop == "uvloop" else asyncio.run)(_measure(args))
    finally:
        asyncio.run(_admin(args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
