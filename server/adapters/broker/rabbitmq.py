"""Publishes outbox records to a RabbitMQ topic exchange with publisher confirms (aio-pika)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aio_pika.connection import make_url
from opentelemetry.trace import SpanKind

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


def to_message(record: OutboxRecord, trace_headers: Mapping[str, str]) -> aio_pika.Message:
    """Persistent; message_id = event_id, so consumers can drop redeliveries.

    `trace_headers` (W3C traceparent/tracestate) let a consumer continue the trace.
    """
    return aio_pika.Message(
        record.payload,
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=record.event_id,
        correlation_id=record.correlation_id,
        type=MESSAGE_TYPE,
        timestamp=record.occurred_at,
        app_id="payments",
        headers={
            "proto-message": MESSAGE_TYPE,
            "aggregate-type": record.aggregate_type,
            "aggregate-id": record.aggregate_id,
            "sequence": record.sequence,
            **trace_headers,
        },
    )


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
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def _ready(self) -> AbstractExchange:
        if self._connection is not None and self._connection.is_closed:
            await self.close()
        if self._exchange is None:
            self._connection = await _connect(self._url, self._timeout_s)
            self._channel = await self._connection.channel(publisher_confirms=True)
            self._exchange = await self._channel.declare_exchange(
                self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        return self._exchange

    async def connect(self) -> None:
        try:
            await self._ready()
        except Exception as error:
            await self.close()
            raise BrokerError(f"{type(error).__name__}: {error}") from error

    async def publish(self, records: Sequence[OutboxRecord]) -> None:
        try:
            exchange = await self._ready()
            # One channel lock orders the frames as the tasks start: in record order.
            results = await asyncio.gather(
                *(self._publish(exchange, record) for record in records),
                return_exceptions=True,
            )
            failed = next((r for r in results if isinstance(r, BaseException)), None)
            if failed is not None:
                raise failed
        except Exception as error:
            await self.close()
            raise BrokerError(f"{type(error).__name__}: {error}") from error

    async def _publish(self, exchange: AbstractExchange, record: OutboxRecord) -> None:
        if not tracing_enabled():
            # Not exporting here: pass the writer's context on untouched.
            await self._send(exchange, record, record.trace_headers)
            return
        with tracer().start_as_current_span(
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
        ):
            await self._send(exchange, record, current_trace_headers())

    async def _send(
        self, exchange: AbstractExchange, record: OutboxRecord, trace_headers: Mapping[str, str]
    ) -> None:
        await exchange.publish(
            to_message(record, trace_headers),
            routing_key=record.event_type,
            mandatory=False,
            timeout=self._timeout_s,
        )

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        self._channel = self._exchange = None
        if connection is not None and not connection.is_closed:
            # Already broken, perhaps: the next publish reconnects either way.
            with contextlib.suppress(Exception):
                await connection.close()
