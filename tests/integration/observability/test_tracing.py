"""One trace from CreatePayment through the database and the provider to the event's headers."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import grpc
from opentelemetry.trace import SpanKind
from payments.v1 import money_pb2, payments_pb2, payments_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.broker.rabbitmq import RabbitPublisher
from server.adapters.clock import SystemClock
from server.adapters.db.outbox_store import SqlOutboxStore
from server.adapters.db.unit_of_work import SqlUnitOfWork
from server.adapters.providers.mock import MockProvider
from server.adapters.providers.resilience import (
    CircuitBreaker,
    ResilientProvider,
)
from server.adapters.providers.stripe_provider import StripeProvider
from server.config import ResiliencePolicy
from server.grpc.app import GrpcServer
from server.jobs.outbox_relay import OutboxRelay
from server.observability.tracing import instrument_engine, instrument_http_clients, tracer
from server.service.dependencies import Dependencies
from server.service.payments.commands import create_payment
from server.service.payments.requests import AmountInput, CreatePayment
from tests.support.broker import BROKER_URL, consume, unique_exchange
from tests.support.tracing import in_trace, recording_spans

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"


async def test_one_trace_from_create_payment_to_the_published_event(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    spans = recording_spans()
    instrument_engine(engine)
    provider = ResilientProvider(
        MockProvider(ledger=tmp_path / "ledger.jsonl"), ResiliencePolicy(), CircuitBreaker(5, 30)
    )
    deps = Dependencies(uow=partial(SqlUnitOfWork, engine), provider=provider)
    server = GrpcServer(deps, "127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            payment = await payments_pb2_grpc.PaymentServiceStub(channel).CreatePayment(
                payments_pb2.CreatePaymentRequest(
                    request_id="trace-1",
                    order_id="trace-order-1",
                    user_id="user-1",
                    amount=money_pb2.Money(currency_code="USD", minor_units=1050),
                    payment_method_id="pm_card_visa",
                    confirm=True,
                ),
                metadata=(("traceparent", TRACEPARENT),),
            )
    finally:
        await server.server.stop(None)
    exchange = unique_exchange()
    publisher = RabbitPublisher(BROKER_URL, exchange)
    async with consume(exchange) as received:
        relay = OutboxRelay(SqlOutboxStore(engine), publisher, SystemClock())
        sent = await relay.relay_batch()
        assert sent >= 1
        await received.wait_for(sent)
        await publisher.close()

    trace_id = int(TRACE_ID, 16)
    ours = in_trace(spans.get_finished_spans(), trace_id)
    by_id = {s.context.span_id: s for s in ours if s.context is not None}

    def ancestors(span_id: int) -> list[str]:
        names, parent = [], by_id[span_id].parent
        while parent is not None and parent.span_id in by_id:
            names.append(by_id[parent.span_id].name)
            parent = by_id[parent.span_id].parent
        return names

    rpc = next(s for s in ours if s.kind is SpanKind.SERVER)
    assert rpc.name == "payments.v1.PaymentService/CreatePayment"
    assert rpc.parent is not None
    assert rpc.parent.span_id == int(CALLER_SPAN_ID, 16)
    attributes = dict(rpc.attributes or {})
    assert attributes["payments.payment_id"] == payment.id
    assert attributes["payments.order_id"] == "trace-order-1"
    assert attributes["payments.provider"] == "mock"
    assert attributes["payments.outcome"] == "SUCCEEDED"
    assert attributes["rpc.grpc.status_code"] == 0

    database = [s for s in ours if (s.attributes or {}).get("db.system")]
    assert database, [s.name for s in ours]
    assert all(rpc.name in ancestors(s.context.span_id) for s in database if s.context)
    provider_span = next(s for s in ours if s.name == "provider create_payment")
    assert provider_span.context is not None
    assert ancestors(provider_span.context.span_id)[-1] == rpc.name

    publishes = {
        f"00-{TRACE_ID}-{s.context.span_id:016x}-01": s
        for s in ours
        if s.kind is SpanKind.PRODUCER and s.context is not None
    }
    assert len(publishes) == sent
    for message in received.messages:
        # A consumer continues the trace from the header: its parent is our publish span.
        publish = publishes[str(message.headers["traceparent"])]
        assert publish.context is not None
        assert ancestors(publish.context.span_id)[-1] == rpc.name

    # No secret and no amount rides along on any span.
    for span in ours:
        for value in (span.attributes or {}).values():
            assert "_secret_" not in str(value)
            assert "1050" not in str(value)


async def test_stripe_http_calls_are_spans_under_the_provider_span(
    deps: Dependencies, localstripe_url: str
) -> None:
    spans = recording_spans()
    instrument_http_clients()
    provider = ResilientProvider(
        StripeProvider("sk_test_tracing", localstripe_url),
        ResiliencePolicy(),
        CircuitBreaker(5, 30),
    )
    stripe_deps = replace(deps, provider=provider, simulator=None)
    with tracer().start_as_current_span("caller") as caller:
        outcome = await create_payment(
            stripe_deps,
            "orders-service",
            CreatePayment(
                request_id="trace-stripe-1",
                order_id="trace-stripe-order-1",
                user_id="user-1",
                amount=AmountInput("EUR", 1000),
                payment_method_id="pm_card_visa",
                confirm=True,
            ),
        )
    assert outcome.resource.provider_payment_id.startswith("pi_")
    ours = in_trace(spans.get_finished_spans(), caller.get_span_context().trace_id)
    by_id = {s.context.span_id: s for s in ours if s.context is not None}
    http = [s for s in ours if s.kind is SpanKind.CLIENT and s.name.startswith("POST")]
    assert http, [s.name for s in ours]
    for span in http:
        assert span.parent is not None
        assert by_id[span.parent.span_id].name.startswith("provider ")
        # The URL names the intent; the key and the client secret never appear.
        rendered = str(dict(span.attributes or {}))
        assert "sk_test_tracing" not in rendered
        assert "_secret_" not in rendered
