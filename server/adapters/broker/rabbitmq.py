"""Publishes outbox records to a RabbitMQ topic exchange with publisher confirms (aio-pika).

A batch goes to the broker as one write: every record's three frames (method,
header, body) in one buffer, then the confirms are awaited together. aiormq's
`basic_publish` writes and waits per message, which cost the relay about 130 us
of CPU a message and the broker twice what one write costs it (docs/benchmarks.md,
"Outbox relay benchmark").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection
from aio_pika.connection import make_url
from aiormq.abc import ChannelFrame
from opentelemetry.trace import SpanKind
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from server.observability.tracing import (
    context_from,
    current_trace_headers,
    tracer,
    tracing_enabled,
)
from server.service.outbox import BrokerError, OutboxRecord

EXCHANGE = "payments.events"
MESSAGE_TYPE = "payments.v1.EventEnvelope"
CONTENT_TYPE = "application/x-protobuf"
_PERSISTENT = int(aio_pika.DeliveryMode.PERSISTENT)


def message_properties(
    record: OutboxRecord, trace_headers: Mapping[str, str]
) -> aiormq.spec.Basic.Properties:
    """Persistent; message_id = event_id, so consumers can drop redeliveries.

    `trace_headers` (W3C traceparent/tracestate) let a consumer continue the trace.
    """
    return aiormq.spec.Basic.Properties(
        content_type=CONTENT_TYPE,
        delivery_mode=_PERSISTENT,
        priority=0,
        correlation_id=record.correlation_id,
        message_id=record.event_id,
        timestamp=record.occurred_at,
        message_type=MESSAGE_TYPE,
        app_id="payments",
        headers={
            "proto-message": MESSAGE_TYPE,
            "aggregate-type": record.aggregate_type,
            "aggregate-id": record.aggregate_id,
            "sequence": record.sequence,
            **trace_headers,
        },
    )


async def publish_confirmed(
    channel: aiormq.abc.AbstractChannel,
    exchange: str,
    messages: Sequence[tuple[str, aiormq.spec.Basic.Properties, bytes]],
) -> None:
    """Publish (routing key, properties, body) in order as one write; return once all are acked.

    The same bookkeeping as aiormq's `Channel.basic_publish`, for many messages at once:
    under the channel's lock each message takes the next delivery tag and a confirmation
    future from the channel (so a closing channel fails them), then all frames go to the
    connection's writer together. Relies on attributes of aiormq's Channel that its own
    publish uses; constraints.txt pins aiormq, and tests/integration/jobs exercises it.
    """
    if not messages:
        return
    frames: list[object] = []
    confirmations: list[asyncio.Future[object]] = []
    limit = channel.max_content_size  # type: ignore[attr-defined]
    async with channel.lock:  # type: ignore[attr-defined]
        for routing_key, properties, body in messages:
            channel.delivery_tag += 1  # type: ignore[attr-defined]
            confirmation: asyncio.Future[object] = channel.create_future()
            channel.confirmations[channel.delivery_tag] = confirmation  # type: ignore[attr-defined]
            confirmations.append(confirmation)
            frames.append(aiormq.spec.Basic.Publish(exchange=exchange, routing_key=routing_key))
            frames.append(ContentHeader(properties=properties, body_size=len(body)))
            frames.extend(ContentBody(body[i : i + limit]) for i in range(0, len(body), limit))
        await channel.write_queue.put(  # type: ignore[attr-defined]
            ChannelFrame.marshall(channel_number=channel.number, frames=frames)  # type: ignore[arg-type]
        )
    for confirmation in confirmations:
        # A nack (DeliveryError) or a closed channel raises here; with mandatory unset
        # nothing is returned, so anything else is an ack.
        await confirmation


async def _connect(url: str, timeout_s: float) -> AbstractConnection:
    """aio_pika.connect, but a failed attempt is closed here rather than left to the GC
    (whose unawaited close warns, and holds the half-open socket meanwhile)."""
    connection = aio_pika.Connection(make_url(url))
    try:
        await connection.connect(timeout=timeout_s)
    except BaseException:
        with contextlib.suppress(Exception):
            await connection.close()
        raise
    return connection


class RabbitPublisher:
    """One connection and confirming channel, opened on first use and after a failure."""

    def __init__(self, url: str, exchange: str = EXCHANGE, *, timeout_s: float = 10.0) -> None:
        self._url = url
        self._exchange_name = exchange
        self._timeout_s = timeout_s
        self._connection: AbstractConnection | None = None
        self._channel: aiormq.abc.AbstractChannel | None = None
        # Batches in flight at once share one connection: only one of them opens it.
        self._opening = asyncio.Lock()

    async def _ready(self) -> aiormq.abc.AbstractChannel:
        if self._connection is not None and self._connection.is_closed:
            await self.close()
        if self._channel is not None:
            return self._channel
        async with self._opening:
            if self._channel is None:
                connection = await _connect(self._url, self._timeout_s)
                self._connection = connection
                channel: AbstractChannel = await connection.channel(publisher_confirms=True)
                await channel.declare_exchange(
                    self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
                self._channel = await channel.get_underlay_channel()
            return self._channel

    async def connect(self) -> None:
        try:
            await self._ready()
        except Exception as error:
            await self.close()
            raise BrokerError(f"{type(error).__name__}: {error}") from error

    async def publish(self, records: Sequence[OutboxRecord]) -> None:
        try:
            channel = await self._ready()
            async with asyncio.timeout(self._timeout_s):
                with contextlib.ExitStack() as spans:
                    messages = [
                        (r.event_type, message_properties(r, self._headers(spans, r)), r.payload)
                        for r in records
                    ]
                    await publish_confirmed(channel, self._exchange_name, messages)
        except Exception as error:
            await self.close()
            raise BrokerError(f"{type(error).__name__}: {error}") from error

    def _headers(self, spans: contextlib.ExitStack, record: OutboxRecord) -> Mapping[str, str]:
        """The trace context to send: the writer's, or a publish span's that lasts until
        the batch is confirmed (or failed)."""
        if not tracing_enabled():
            # Not exporting here: pass the writer's context on untouched.
            return record.trace_headers
        spans.enter_context(
            tracer().start_as_current_span(
                f"{self._exchange_name} publish",
                context=context_from(record.trace_headers),
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.destination.name": self._exchange_name,
                    "messaging.rabbitmq.destination.routing_key": record.event_type,
                    "messaging.message.id": record.event_id,
                    "payments.payment_id": record.aggregate_id,
                },
            )
        )
        return current_trace_headers()

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        self._channel = None
        if connection is not None and not connection.is_closed:
            # Already broken, perhaps: the next publish reconnects either way.
            with contextlib.suppress(Exception):
                await connection.close()
