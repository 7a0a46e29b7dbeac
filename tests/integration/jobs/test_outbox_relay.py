"""The outbox relay against a real RabbitMQ, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aio_pika
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.broker.rabbitmq import EXCHANGE, RabbitPublisher
from server.adapters.clock import ManualClock, SystemClock
from server.adapters.db.engine import create_engine
from server.adapters.db.outbox_store import SqlOutboxStore
from server.adapters.db.tables import outbox
from server.domain.payment import CaptureMethod
from server.jobs.outbox_relay import OutboxRelay, prune_outbox
from server.service.dependencies import Dependencies
from server.service.outbox import OutboxRecord
from server.service.payments.commands import cancel_payment, capture_payment, create_payment
from server.service.payments.requests import (
    AmountInput,
    CancelPayment,
    CapturePayment,
    CreatePayment,
)
from tests.support.broker import BROKER_URL, Received, consume, unique_exchange
from tests.support.polling import until
from tests.support.server_process import free_port

CALLER = "orders-service"
README = Path(__file__).resolve().parents[3] / "docs" / "events.md"


def create(n: int, method: str = "pm_card_visa", **kwargs: object) -> CreatePayment:
    fields: dict[str, object] = {
        "request_id": f"req-{n}",
        "order_id": f"order-{n}",
        "user_id": "user-1",
        "amount": AmountInput("USD", 1000 + n),
        "payment_method_id": method,
        "confirm": True,
    }
    fields.update(kwargs)
    return CreatePayment(**fields)  # type: ignore[arg-type]


async def scripted_run(deps: Dependencies, start: int, count: int) -> None:
    """Payments of every kind: succeeded, declined, 3-D Secure, captured, canceled."""
    for n in range(start, start + count):
        match n % 5:
            case 0:
                await create_payment(deps, CALLER, create(n))
            case 1:
                await create_payment(deps, CALLER, create(n, "pm_card_chargeDeclined"))
            case 2:
                await create_payment(deps, CALLER, create(n, "pm_card_authenticationRequired"))
            case 3:
                made = await create_payment(
                    deps, CALLER, create(n, capture_method=CaptureMethod.MANUAL)
                )
                await capture_payment(deps, CALLER, CapturePayment(made.resource.id, f"cap-{n}"))
            case _:
                made = await create_payment(deps, CALLER, create(n, confirm=False))
                await cancel_payment(deps, CALLER, CancelPayment(made.resource.id, f"can-{n}"))


async def stored_event_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(sa.select(outbox.c.event_id).order_by(outbox.c.id))
        return list(rows.scalars())


def assert_in_order(received: Received, expected: Sequence[str], *, exactly_once: bool) -> None:
    """Every expected event arrived, in per-payment sequence order, well formed."""
    ours = set(expected)
    messages = [m for m in received.messages if m.message_id in ours]
    counts = Counter(m.message_id for m in messages)
    assert set(counts) == ours, f"missing: {ours - set(counts)}"
    if exactly_once:
        assert max(counts.values()) == 1, [i for i, c in counts.items() if c > 1]
    last_sequence: dict[str, int] = defaultdict(int)
    seen: set[str] = set()
    for message in messages:
        if message.message_id in seen:
            continue  # a redelivery, which consumers drop by message_id
        seen.add(message.message_id or "")
        envelope = received.envelopes()[received.messages.index(message)]
        assert message.routing_key == envelope.type
        assert message.message_id == envelope.event_id
        assert message.content_type == "application/x-protobuf"
        assert message.type == "payments.v1.EventEnvelope"
        assert message.delivery_mode == 2  # persistent
        assert message.timestamp is not None
        assert envelope.WhichOneof("event") is not None
        # Each payment's events come first time in sequence order, without gaps.
        assert envelope.sequence == last_sequence[envelope.aggregate_id] + 1, envelope
        last_sequence[envelope.aggregate_id] = envelope.sequence


async def consuming(queue: str) -> bool:
    """Whether `queue` exists and has a consumer (so it is bound: consumers bind first)."""
    connection = await aio_pika.connect(BROKER_URL)
    async with connection:
        channel = await connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return False
        return bool(declared.declaration_result.consumer_count)


async def drained(store: SqlOutboxStore, within: float = 10.0) -> None:
    """Until every row is marked published."""
    async with asyncio.timeout(within):
        while await store.unpublished_count():  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.02)


def relay(
    engine: AsyncEngine,
    exchange: str = EXCHANGE,
    *,
    url: str = BROKER_URL,
    batch_size: int = 50,
) -> OutboxRelay:
    publisher = RabbitPublisher(url, exchange, timeout_s=5)
    return OutboxRelay(
        SqlOutboxStore(engine), publisher, SystemClock(), batch_size=batch_size, poll_s=0.02
    )


@contextlib.asynccontextmanager
async def running(*relays: OutboxRelay):  # type: ignore[no-untyped-def]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_scripted_run_arrives_exactly_once_in_order(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    await scripted_run(deps, 0, 10)
    async with consume(EXCHANGE, delete_exchange=False) as received, running(relay(engine)):
        # Payments taken while the relay runs are relayed too.
        await scripted_run(deps, 10, 10)
        expected = await stored_event_ids(engine)
        await received.wait_for_ids(expected)
        await drained(SqlOutboxStore(engine))
        await received.caught_up()  # a duplicate would have arrived by now
    assert len(expected) > 50
    assert_in_order(received, expected, exactly_once=True)


class _CountingPublisher(RabbitPublisher):
    def __init__(self, exchange: str) -> None:
        super().__init__(BROKER_URL, exchange, timeout_s=5)
        self.sent = 0

    async def publish(self, records: Sequence[OutboxRecord]) -> None:
        await super().publish(records)
        self.sent += len(records)
        await asyncio.sleep(0)  # let the other relay in between batches


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_relays_share_the_work_without_sending_twice(
    deps: Dependencies, engine: AsyncEngine, database_url: str
) -> None:
    await scripted_run(deps, 0, 60)
    expected = await stored_event_ids(engine)
    exchange = unique_exchange()
    other_engine = create_engine(database_url)
    publishers = [_CountingPublisher(exchange), _CountingPublisher(exchange)]
    relays = [
        OutboxRelay(SqlOutboxStore(e), p, SystemClock(), batch_size=7, poll_s=0.02)
        for e, p in zip((engine, other_engine), publishers, strict=True)
    ]
    try:
        async with consume(exchange) as received, running(*relays):
            await received.wait_for_ids(expected)
            await drained(SqlOutboxStore(engine))
            await received.caught_up()
    finally:
        await other_engine.dispose()
    assert_in_order(received, expected, exactly_once=True)
    assert all(p.sent > 0 for p in publishers), [p.sent for p in publishers]
    assert sum(p.sent for p in publishers) == len(expected)


class _DyingPublisher(RabbitPublisher):
    """Publishes (and gets the confirms), then hangs: the process dies before marking."""

    def __init__(self, exchange: str) -> None:
        super().__init__(BROKER_URL, exchange, timeout_s=5)
        self.published = asyncio.Event()

    async def publish(self, records: Sequence[OutboxRecord]) -> None:
        await super().publish(records)
        self.published.set()
        await asyncio.Event().wait()


async def test_relay_killed_mid_batch_loses_nothing(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    await scripted_run(deps, 0, 10)
    expected = await stored_event_ids(engine)
    exchange = unique_exchange()
    store = SqlOutboxStore(engine)
    async with consume(exchange) as received:
        dying = _DyingPublisher(exchange)
        task = asyncio.create_task(
            OutboxRelay(store, dying, SystemClock(), batch_size=20, poll_s=0.02).run()
        )
        await asyncio.wait_for(dying.published.wait(), 10)
        task.cancel()  # between publish and mark
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert await store.unpublished_count() == len(expected)
        await received.wait_for(20)
        async with running(relay(engine, exchange)):
            await received.wait_for(20 + len(expected))
            await drained(store)
    assert_in_order(received, expected, exactly_once=False)
    assert len(received.messages) == 20 + len(expected)  # the dead batch came twice


async def test_broker_down_keeps_payments_and_backlog_then_delivers(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    exchange = unique_exchange()
    store = SqlOutboxStore(engine)
    down = relay(engine, exchange, url=f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    health: list[bool] = []
    down.on_health(health.append)

    async def relay_saw_the_broker_down() -> bool:
        return health == [False]

    async with consume(exchange) as received:
        async with running(down):
            await scripted_run(deps, 0, 5)  # payments go on while the broker is away
            await until(relay_saw_the_broker_down, within=10)
            expected = await stored_event_ids(engine)
            assert await store.unpublished_count() == len(expected) > 0
        assert health == [False]
        assert received.messages == []
        up = relay(engine, exchange)
        up.on_health(health.append)
        async with running(up):
            await received.wait_for_ids(expected)
            await drained(store)
    assert health == [False, True]
    assert_in_order(received, expected, exactly_once=True)
    assert await store.unpublished_count() == 0


async def test_published_rows_are_pruned_after_retention(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    await scripted_run(deps, 0, 3)
    store = SqlOutboxStore(engine)
    total = len(await stored_event_ids(engine))
    published_at = datetime(2026, 1, 1, tzinfo=UTC)
    async with store.claim(4) as batch:
        await batch.mark_published([r.id for r in batch.records], published_at)
    clock = ManualClock(published_at + timedelta(hours=71))
    assert await prune_outbox(store, clock, timedelta(hours=72)) == 0
    clock.advance(timedelta(hours=2))
    assert await prune_outbox(store, clock, timedelta(hours=72), batch=3) == 4
    assert len(await stored_event_ids(engine)) == total - 4
    assert await store.unpublished_count() == total - 4


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_readme_consumer_decodes_relayed_events(
    deps: Dependencies, engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = README.read_text()
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", readme, re.S) if "consume(" in c]
    queue = f"readme-consumer-{uuid.uuid4().hex[:8]}"
    namespace: dict[str, object] = {}
    exec(code.replace("orders.payment-events", queue), namespace)  # noqa: S102
    consume_example = namespace["consume"]
    assert callable(consume_example)
    consumer = asyncio.create_task(consume_example(BROKER_URL))
    try:
        await until(lambda: consuming(queue), within=15)  # declared, bound and consumed
        await scripted_run(deps, 0, 1)
        async with running(relay(engine)), asyncio.timeout(15):
            while "paid order-0 1000" not in capsys.readouterr().out:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        connection = await aio_pika.connect(BROKER_URL)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(queue)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_claim_leaves_rows_whose_older_sibling_another_relay_holds(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    await scripted_run(deps, 0, 5)
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.select(outbox).order_by(outbox.c.id))).all()
    held = rows[0]
    siblings = {r.id for r in rows if r.aggregate_id == held.aggregate_id} - {held.id}
    assert siblings
    store = SqlOutboxStore(engine)
    async with engine.connect() as other_relay:
        # Another relay's claim of the aggregate's first row, still in flight.
        await other_relay.execute(
            sa.select(outbox.c.id).where(outbox.c.id == held.id).with_for_update()
        )
        async with store.claim(len(rows)) as batch:
            claimed = [r.id for r in batch.records]
        await other_relay.rollback()
    assert claimed == sorted({r.id for r in rows} - {held.id} - siblings)


class _OverlapPublisher(RabbitPublisher):
    """Counts the batches in flight at once; holds each until another one arrives."""

    def __init__(self, exchange: str) -> None:
        super().__init__(BROKER_URL, exchange, timeout_s=5)
        self.in_flight = 0
        self.most_in_flight = 0
        self.overlapped = asyncio.Event()

    async def publish(self, records: Sequence[OutboxRecord]) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if self.in_flight > 1:
            self.overlapped.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.overlapped.wait(), 1)
            await super().publish(records)
        finally:
            self.in_flight -= 1


async def test_batches_in_flight_at_once_keep_each_payments_order(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    await scripted_run(deps, 0, 40)
    expected = await stored_event_ids(engine)
    exchange = unique_exchange()
    publisher = _OverlapPublisher(exchange)
    store = SqlOutboxStore(engine)
    two = OutboxRelay(store, publisher, SystemClock(), batch_size=9, poll_s=0.02, concurrency=2)
    async with consume(exchange) as received, running(two):
        await received.wait_for_ids(expected)
        await drained(store)
        await received.caught_up()
    assert_in_order(received, expected, exactly_once=True)
    # SQLite's claim is a plain read: one batch at a time there, or rows would go twice.
    assert publisher.most_in_flight == (2 if engine.dialect.name == "postgresql" else 1)
