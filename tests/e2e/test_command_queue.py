"""The command queue on the real RabbitMQ with real `payments worker` processes on
PostgreSQL: a saga, poison messages, and a consumer SIGKILLed mid-command."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import pytest
import sqlalchemy as sa
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from payments.v1 import commands_pb2, events_pb2, money_pb2, payments_pb2

from server.adapters.broker.command_consumer import REASON_HEADER
from server.adapters.broker.rabbitmq import EXCHANGE
from server.adapters.db.engine import create_engine
from server.adapters.db.tables import payments
from tests.e2e.test_stripe_crash_and_outage import API_KEY, intents_for
from tests.support.broker import BROKER_URL
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.localstripe import LocalStripe
from tests.support.worker_process import WorkerProcess

CALLER = commands_pb2.CommandCaller(subject="orders")


@dataclass
class Setup:
    folder: Path
    database_url: str
    queue: str

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PAYMENTS_ENV": "test",
            "PAYMENTS_DATABASE_URL": self.database_url,
            "PAYMENTS_BROKER_URL": BROKER_URL,
            "PAYMENTS_COMMAND_QUEUE": self.queue,
            "PAYMENTS_COMMAND_RETRY_SECONDS": "0.2",
            "PAYMENTS_IDEMPOTENCY_LEASE_SECONDS": "1",
            **extra,
        }

    def worker(self, **extra: str) -> WorkerProcess:
        return WorkerProcess(self.folder, self.env(**extra))


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    url = create_postgres_database("payments_commands")
    queue = f"payments.commands.test-{uuid.uuid4().hex[:8]}"
    yield Setup(tmp_path, url, queue)
    asyncio.run(_delete_queues(queue))
    drop_postgres_database(url)


async def _delete_queues(queue: str) -> None:
    connection = await aio_pika.connect(BROKER_URL, timeout=10)
    async with connection:
        channel = await connection.channel()
        for name in (queue, f"{queue}.dead"):
            await channel.queue_delete(name)


@asynccontextmanager
async def broker() -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(BROKER_URL, timeout=10)
    async with connection:
        yield await connection.channel(publisher_confirms=True)


async def send(
    channel: AbstractChannel, queue: str, body: bytes, message_id: str, reply_to: str | None
) -> None:
    await channel.default_exchange.publish(
        aio_pika.Message(
            body,
            message_id=message_id,
            reply_to=reply_to,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        ),
        routing_key=queue,
    )


def command(message_id: str, **request: object) -> commands_pb2.CommandEnvelope:
    return commands_pb2.CommandEnvelope(message_id=message_id, caller=CALLER, **request)  # type: ignore[arg-type]


async def next_message(queue: AbstractQueue, within: float = 60.0) -> AbstractIncomingMessage:
    # Polling with a deadline: basic.get leaves the other messages where they are.
    async with asyncio.timeout(within):
        while (message := await queue.get(fail=False)) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    await message.ack()
    return message


async def reply_of(queue: AbstractQueue) -> commands_pb2.CommandReply:
    return commands_pb2.CommandReply.FromString((await next_message(queue)).body)


def create_payment(order: str, *, manual: bool) -> payments_pb2.CreatePaymentRequest:
    return payments_pb2.CreatePaymentRequest(
        order_id=order,
        user_id="user-1",
        amount=money_pb2.Money(currency_code="EUR", minor_units=5000),
        payment_method_id="pm_card_visa",
        confirm=True,
        capture_method=payments_pb2.CAPTURE_METHOD_MANUAL
        if manual
        else payments_pb2.CAPTURE_METHOD_AUTOMATIC,
    )


async def payments_of(database_url: str, order: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                sa.select(payments.c.id).where(payments.c.order_id == order)
            )
            return [row.id for row in rows]
    finally:
        await engine.dispose()


async def test_a_saga_creates_on_order_created_and_captures_on_shipped(setup: Setup) -> None:
    worker = setup.worker().start()
    try:
        async with broker() as channel:
            replies = await channel.declare_queue(exclusive=True)
            events = await channel.declare_queue(exclusive=True)
            exchange = await channel.declare_exchange(
                EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
            )
            await events.bind(exchange, routing_key="payment.*")
            order = f"order-{uuid.uuid4().hex[:8]}"

            # "order created": the order service asks for an authorization.
            created_id = f"order-created-{order}"
            envelope = command(created_id, create_payment=create_payment(order, manual=True))
            await send(channel, setup.queue, envelope.SerializeToString(), created_id, replies.name)
            created = await reply_of(replies)
            assert created.message_id == created_id
            assert created.payment.state == payments_pb2.PAYMENT_STATE_REQUIRES_CAPTURE
            payment_id = created.payment.id

            # "shipped": fulfilment captures it.
            shipped_id = f"shipped-{order}"
            capture = payments_pb2.CapturePaymentRequest(id=payment_id)
            envelope = command(shipped_id, capture_payment=capture)
            await send(channel, setup.queue, envelope.SerializeToString(), shipped_id, replies.name)
            captured = await reply_of(replies)
            assert captured.payment.state == payments_pb2.PAYMENT_STATE_SUCCEEDED
            assert captured.payment.amount_captured.minor_units == 5000

            # The usual events, each carrying the command that caused it.
            correlation: dict[str, str | None] = {}
            while "payment.captured" not in correlation:
                message = await next_message(events)
                envelope_event = events_pb2.EventEnvelope.FromString(message.body)
                if envelope_event.aggregate_id == payment_id:
                    correlation[envelope_event.type] = message.correlation_id
            assert correlation["payment.created"] == created_id
            assert correlation["payment.authorized"] == created_id
            assert correlation["payment.captured"] == shipped_id

            # The same "order created" again (a redelivery, a retried saga step) replays.
            envelope = command(created_id, create_payment=create_payment(order, manual=True))
            await send(channel, setup.queue, envelope.SerializeToString(), created_id, replies.name)
            again = await reply_of(replies)
            assert again.replayed
            assert again.payment.id == payment_id
        assert await payments_of(setup.database_url, order) == [payment_id]
    finally:
        assert worker.stop() == 0, worker.log


async def test_poison_messages_go_to_the_dead_letter_queue_once(setup: Setup) -> None:
    worker = setup.worker().start()
    try:
        async with broker() as channel:
            replies = await channel.declare_queue(exclusive=True)
            await send(channel, setup.queue, b"\xff not a protobuf", "poison-1", None)
            await send(
                channel, setup.queue, command("poison-2").SerializeToString(), "poison-2", None
            )
            invalid = payments_pb2.CreatePaymentRequest(order_id="order-x", user_id="user-1")
            body = command("poison-3", create_payment=invalid).SerializeToString()
            await send(channel, setup.queue, body, "poison-3", replies.name)

            dead = await channel.get_queue(f"{setup.queue}.dead")
            reasons = {}
            for _ in range(3):
                message = await next_message(dead)
                assert message.headers is not None
                reasons[message.message_id] = message.headers[REASON_HEADER]
            assert reasons == {
                "poison-1": "UNPARSEABLE",
                "poison-2": "UNKNOWN_COMMAND_TYPE",
                "poison-3": "INVALID_ARGUMENT",
            }
            reply = await reply_of(replies)
            assert reply.message_id == "poison-3"
            assert reply.error.code == 3  # INVALID_ARGUMENT
            # Acknowledged, not looping: the command queue is empty, nothing more is dead.
            commands = await channel.declare_queue(setup.queue, passive=True)
            assert commands.declaration_result.message_count == 0
            assert await dead.get(fail=False) is None
        assert await payments_of(setup.database_url, "order-x") == []
    finally:
        assert worker.stop() == 0, worker.log


@pytest.fixture
def localstripe(tmp_path: Path) -> Iterator[LocalStripe]:
    folder = tmp_path / "localstripe"
    folder.mkdir()
    fake = LocalStripe(folder).start()
    yield fake
    fake.stop()


async def test_a_consumer_killed_mid_command_charges_once_on_redelivery(
    setup: Setup, localstripe: LocalStripe
) -> None:
    """SIGKILL after Stripe charged, before the outcome was stored or the command acked."""
    stripe = {
        "PAYMENTS_PROVIDER": "stripe",
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_API_BASE": localstripe.url,
    }
    doomed = setup.worker(PAYMENTS_TEST_CRASH_AT="after_provider_call", **stripe).start()
    order = f"order-{uuid.uuid4().hex[:8]}"
    message_id = f"create-{order}"
    async with broker() as channel:
        replies = await channel.declare_queue(exclusive=True)
        envelope = command(message_id, create_payment=create_payment(order, manual=False))
        await send(channel, setup.queue, envelope.SerializeToString(), message_id, replies.name)
        assert doomed.wait(timeout=60) == -signal.SIGKILL
        stuck = await payments_of(setup.database_url, order)
        assert len(stuck) == 1
        assert len(intents_for(localstripe, stuck[0])) == 1, "Stripe was asked once"

        survivor = setup.worker(**stripe).start()
        try:
            reply = await reply_of(replies)
        finally:
            assert survivor.stop() == 0, survivor.log
    assert reply.message_id == message_id
    assert reply.payment.state == payments_pb2.PAYMENT_STATE_SUCCEEDED
    assert await payments_of(setup.database_url, order) == [reply.payment.id]
    intents = intents_for(localstripe, reply.payment.id)
    assert len(intents) == 1, "exactly one PaymentIntent at the provider"
    assert intents[0].status == "succeeded"
