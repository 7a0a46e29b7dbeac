"""Consumes the command queue (RabbitMQ quorum queue with a dead-letter queue).

A command is acknowledged only once its outcome is stored and its reply sent,
so a consumer that dies mid-command leaves it to be delivered again; the
service layer's idempotency turns that redelivery into a replay or a resumption
with the same provider key, never a second charge. A command that can never
succeed is copied to the dead-letter queue with a reason header and then
acknowledged, so it never loops. docs/commands.md is the contract.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from server.adapters.broker.command_dispatch import CommandDispatcher, Handled

_log = logging.getLogger(__name__)
REPLY_TYPE = "payments.v1.CommandReply"
CONTENT_TYPE = "application/x-protobuf"
REASON_HEADER = "x-payments-reason"
# Backoff before a retryable command goes back to the queue: 1 s, 2 s, 4 s ... 30 s.
MAX_RETRY_DELAY_S = 30.0
RECONNECT_DELAY_S = 5.0


@dataclass(frozen=True, slots=True)
class CommandQueueSettings:
    queue: str = "payments.commands"
    prefetch: int = 10
    consumers: int = 1
    # Deliveries after which a command that keeps failing for a passing reason is
    # dead-lettered by RabbitMQ itself (quorum queues count them).
    delivery_limit: int = 20
    retry_delay_s: float = 1.0

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dead"


async def declare_queues(channel: AbstractChannel, settings: CommandQueueSettings) -> None:
    """Both quorum queues: durable, replicated, and the command queue dead-letters to the other."""
    await channel.declare_queue(
        settings.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await channel.declare_queue(
        settings.queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": settings.dead_letter_queue,
            "x-delivery-limit": settings.delivery_limit,
        },
    )


class CommandConsumer:
    def __init__(
        self, url: str, dispatcher: CommandDispatcher, settings: CommandQueueSettings
    ) -> None:
        self._url = url
        self._dispatcher = dispatcher
        self._settings = settings
        self._channel: AbstractChannel | None = None

    async def run(self) -> None:
        """Consume until cancelled; a broker that is not there yet is tried again."""
        while True:
            try:
                await self._consume()
            except (OSError, aio_pika.exceptions.AMQPError) as error:
                _log.warning("command queue unreachable (%s); retrying", type(error).__name__)
                await asyncio.sleep(RECONNECT_DELAY_S)

    async def _consume(self) -> None:
        # The robust connection itself reconnects after an outage once it was up.
        connection: AbstractRobustConnection = await aio_pika.connect_robust(self._url, timeout=10)
        try:
            self._channel = await connection.channel(publisher_confirms=True)
            await self._channel.set_qos(prefetch_count=self._settings.prefetch)
            await declare_queues(self._channel, self._settings)
            queue = await self._channel.get_queue(self._settings.queue)
            for _ in range(self._settings.consumers):
                await queue.consume(self._on_message)
            _log.info(
                "consuming commands from %s (prefetch %d, consumers %d)",
                self._settings.queue,
                self._settings.prefetch,
                self._settings.consumers,
            )
            await asyncio.Event().wait()
        finally:
            await connection.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            handled = await self._dispatcher.handle(message.body, message.message_id)
        except Exception as error:
            # A database or programming failure: try again later, never lose the command.
            _log.warning("command %s failed: %s", message.message_id, type(error).__name__)
            handled = Handled(retry=True)
        if handled.retry:
            await asyncio.sleep(self._retry_delay(message))
            await message.nack(requeue=True)
            return
        if handled.reply is not None and message.reply_to:
            await self._publish(
                aio_pika.Message(
                    handled.reply.SerializeToString(),
                    content_type=CONTENT_TYPE,
                    type=REPLY_TYPE,
                    correlation_id=handled.reply.message_id,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    app_id="payments",
                ),
                message.reply_to,
            )
        if handled.dead_reason:
            await self._publish(
                aio_pika.Message(
                    message.body,
                    content_type=message.content_type,
                    type=message.type,
                    message_id=message.message_id,
                    correlation_id=message.correlation_id,
                    reply_to=message.reply_to,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    headers={**(message.headers or {}), REASON_HEADER: handled.dead_reason},
                ),
                self._settings.dead_letter_queue,
            )
            _log.warning("command %s dead-lettered: %s", message.message_id, handled.dead_reason)
        await message.ack()

    def _retry_delay(self, message: AbstractIncomingMessage) -> float:
        deliveries = message.headers.get("x-delivery-count") if message.headers else None
        count = deliveries if isinstance(deliveries, int) else 0
        return float(min(self._settings.retry_delay_s * 2 ** min(count, 10), MAX_RETRY_DELAY_S))

    async def _publish(self, message: aio_pika.Message, queue: str) -> None:
        assert self._channel is not None
        await self._channel.default_exchange.publish(message, routing_key=queue, timeout=10)
