"""A broker killed and restarted in the middle of a load run loses no event.

A real `payments serve` (its relay in-process) on PostgreSQL publishes to a
private RabbitMQ node while clients keep creating payments. The node is killed
with SIGKILL partway through and started again with its data; payments go on
meanwhile, readiness for events says degraded, and every event stored in the
outbox reaches the durable queue, in per-payment order.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aio_pika
import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2
from payments.v1 import events_pb2, money_pb2, payments_pb2, payments_pb2_grpc

from server.adapters.broker.rabbitmq import EXCHANGE
from server.adapters.db.engine import create_engine
from server.adapters.db.tables import outbox
from server.grpc.app import EVENTS_HEALTH
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.polling import until
from tests.support.rabbitmq_node import RabbitNode
from tests.support.server_process import ServerProcess, health_status

QUEUE = "broker-restart-test"
PHASE = 60  # payments before the kill, during the outage and after the restart
CONCURRENCY = 8
NOT_SERVING = int(health_pb2.HealthCheckResponse.NOT_SERVING)
SERVING = int(health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RabbitNode]:
    folder = tmp_path / "rabbit"
    folder.mkdir()
    broker = RabbitNode(folder).start()
    yield broker
    broker.stop()


@pytest.fixture
def database() -> Iterator[str]:
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


async def declare_queue(url: str) -> None:
    """A durable queue bound to every event, in place before the first publish."""
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(QUEUE, durable=True)
        await queue.bind(exchange, routing_key="#")


async def drain_queue(url: str) -> list[events_pb2.EventEnvelope]:
    connection = await aio_pika.connect(url, timeout=10)
    envelopes = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(QUEUE, durable=True)
        while (message := await queue.get(fail=False, timeout=10)) is not None:
            assert message.message_id is not None
            envelope = events_pb2.EventEnvelope.FromString(message.body)
            assert envelope.event_id == message.message_id
            envelopes.append(envelope)
            await message.ack()
    return envelopes


async def outbox_rows(database_url: str) -> tuple[list[str], int]:
    """Every stored event id, and how many are not yet published."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            ids = list((await connection.execute(sa.select(outbox.c.event_id))).scalars())
            pending = await connection.scalar(
                sa.select(sa.func.count()).where(outbox.c.published_at.is_(None))
            )
        return ids, int(pending or 0)
    finally:
        await engine.dispose()


async def wait_for_health(address: str, wanted: int, within: float) -> None:
    async def reached() -> bool:
        return await asyncio.to_thread(health_status, address, EVENTS_HEALTH) == wanted

    await until(reached, within)


async def load(address: str, done: list[str], stop: asyncio.Event) -> None:
    """CONCURRENCY clients creating confirmed payments until `stop` is set."""
    numbers = itertools.count()

    async def client(stub: payments_pb2_grpc.PaymentServiceAsyncStub) -> None:
        while not stop.is_set():
            n = next(numbers)
            payment = await stub.CreatePayment(
                payments_pb2.CreatePaymentRequest(
                    request_id=f"restart-{n}",
                    order_id=f"restart-order-{n}",
                    user_id=f"user-{n % 7}",
                    amount=money_pb2.Money(currency_code="EUR", minor_units=500 + n),
                    payment_method_id="pm_card_visa",
                    confirm=True,
                ),
                timeout=30,
            )
            assert payment.state == payments_pb2.PAYMENT_STATE_SUCCEEDED
            done.append(payment.id)

    async with grpc.aio.insecure_channel(address) as channel:
        stub = payments_pb2_grpc.PaymentServiceStub(channel)
        await asyncio.gather(*(client(stub) for _ in range(CONCURRENCY)))


async def restart_midway(
    node: RabbitNode, address: str, done: list[str], stop: asyncio.Event
) -> list[int]:
    """Kill and restart the broker under load; how many payments each phase had seen."""

    def at_least(count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(done) >= count

        return check

    try:
        await until(at_least(PHASE), within=120, every=0.05)
        await asyncio.to_thread(node.kill)
        killed = len(done)
        # Payments keep going while the broker is away, and readiness says so.
        await wait_for_health(address, NOT_SERVING, within=60)
        await until(at_least(killed + PHASE), within=120, every=0.05)
        await asyncio.to_thread(node.start)
        restarted = len(done)
        await wait_for_health(address, SERVING, within=90)
        await until(at_least(len(done) + PHASE), within=120, every=0.05)
        return [killed, restarted, len(done)]
    finally:
        stop.set()


async def test_broker_restart_during_load_loses_nothing(
    node: RabbitNode, database: str, tmp_path: Path
) -> None:
    await declare_queue(node.url)
    server = ServerProcess(
        tmp_path,
        env={"PAYMENTS_DATABASE_URL": database, "PAYMENTS_BROKER_URL": node.url},
        args=("serve",),
    ).start()
    try:
        done: list[str] = []
        stop = asyncio.Event()
        _, phases = await asyncio.gather(
            load(server.address, done, stop), restart_midway(node, server.address, done, stop)
        )
        killed, restarted, healed = phases
        # Payments were taken before, during and after the outage.
        assert 0 < killed < restarted < healed <= len(done) == len(set(done))

        async def all_published() -> bool:
            return (await outbox_rows(database))[1] == 0

        await until(all_published, within=90, every=0.5)
        stored, _ = await outbox_rows(database)
    finally:
        assert server.stop() == 0, server.log

    received = await drain_queue(node.url)
    # At-least-once: nothing stored is missing; a batch in flight at the kill may come twice.
    assert {e.event_id for e in received} == set(stored)
    assert len(stored) >= len(done)
    sequences: dict[str, list[int]] = defaultdict(list)
    receipts_for: set[str] = set()
    seen: set[str] = set()
    for envelope in received:
        if envelope.event_id not in seen:
            seen.add(envelope.event_id)
            if envelope.aggregate_type == "receipt":
                # The server's jobs number receipts too: each one of a payment of this run.
                receipts_for.add(envelope.receipt_issued.receipt.payment_id)
                continue
            sequences[envelope.aggregate_id].append(envelope.sequence)
    assert set(sequences) == set(done)
    assert receipts_for <= set(done)
    for payment_id, numbers in sequences.items():
        assert numbers == list(range(1, len(numbers) + 1)), payment_id
