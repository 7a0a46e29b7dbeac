"""A real RabbitMQ consumer for tests: an exclusive queue bound to an exchange with `#`."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from payments.v1 import events_pb2

# A missing broker must fail the run loudly, never skip: connecting raises.
BROKER_URL = os.environ.get("PAYMENTS_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")


def unique_exchange() -> str:
    return f"payments.events.test-{uuid.uuid4().hex[:8]}"


BARRIER_ROUTING_KEY = "test.barrier"


@dataclass
class Received:
    messages: list[AbstractIncomingMessage] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    barriers: set[str] = field(default_factory=set)
    exchange: aio_pika.abc.AbstractExchange | None = None

    def envelopes(self) -> list[events_pb2.EventEnvelope]:
        return [events_pb2.EventEnvelope.FromString(m.body) for m in self.messages]

    def ids(self) -> list[str]:
        return [m.message_id or "" for m in self.messages]

    async def wait_for_ids(self, ids: Sequence[str], within: float = 30.0) -> None:
        """Until every one of `ids` arrived at least once."""
        wanted = set(ids)
        async with asyncio.timeout(within):
            while not wanted <= set(self.ids()):
                self.arrived.clear()
                await self.arrived.wait()

    async def caught_up(self, within: float = 30.0) -> None:
        """Until everything the broker confirmed so far has arrived here.

        A marker published now is queued behind every message already confirmed,
        and one queue delivers in order: once the marker arrives, so has any
        earlier duplicate. The marker itself is not counted in `messages`.
        """
        assert self.exchange is not None
        marker = uuid.uuid4().hex
        await self.exchange.publish(
            aio_pika.Message(b"", message_id=marker), routing_key=BARRIER_ROUTING_KEY
        )
        async with asyncio.timeout(within):
            while marker not in self.barriers:
                self.arrived.clear()
                await self.arrived.wait()

    async def wait_for(self, count: int, within: float = 30.0) -> None:
        async with asyncio.timeout(within):
            while len(self.messages) < count:
                self.arrived.clear()
                await self.arrived.wait()


@asynccontextmanager
async def consume(exchange: str, *, delete_exchange: bool = True) -> AsyncIterator[Received]:
    """Collect every message the exchange routes while the context is open."""
    received = Received()

    async def on_message(message: AbstractIncomingMessage) -> None:
        if message.routing_key == BARRIER_ROUTING_KEY:
            received.barriers.add(message.message_id or "")
        else:
            received.messages.append(message)
        received.arrived.set()
        await message.ack()

    connection = await aio_pika.connect(BROKER_URL, timeout=10)
    try:
        channel = await connection.channel()
        target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(target, routing_key="#")
        await queue.consume(on_message)
        received.exchange = target
        yield received
        if delete_exchange:
            await target.delete()
    finally:
        await connection.close()
