"""Receipts and the refund window through a real server on PostgreSQL with its jobs and
the outbox relay to the real RabbitMQ: the refund window closes, an admin overrides it,
both receipts are numbered, read back as a PDF and announced as receipt.issued."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import grpc
import pytest
from payments.v1 import (
    events_pb2,
    money_pb2,
    payments_pb2,
    payments_pb2_grpc,
    receipts_pb2,
    receipts_pb2_grpc,
    refunds_pb2,
    refunds_pb2_grpc,
)
from pypdf import PdfReader

from server.adapters.broker.rabbitmq import EXCHANGE
from tests.e2e.test_auth_matrix import error_info
from tests.support.broker import BROKER_URL
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.server_process import ServerProcess


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    url = create_postgres_database("payments_receipts")
    server = ServerProcess(
        tmp_path,
        env={
            "PAYMENTS_DATABASE_URL": url,
            "PAYMENTS_BROKER_URL": BROKER_URL,
            # Every refund is past the window: only an admin's override gets through.
            "PAYMENTS_REFUND_WINDOW_DAYS": "0",
            "PAYMENTS_MERCHANT_NAME": "Acme Books GmbH",
            "PAYMENTS_RECEIPT_INTERVAL_SECONDS": "0.2",
        },
        args=("serve",),
    ).start()
    yield server
    assert server.stop() == 0, server.log
    drop_postgres_database(url)


async def _receipt_events(
    queue: aio_pika.abc.AbstractQueue, payment_id: str, count: int
) -> list[events_pb2.EventEnvelope]:
    found: list[events_pb2.EventEnvelope] = []
    async with asyncio.timeout(30), queue.iterator() as messages:
        async for message in messages:
            await message.ack()
            envelope = events_pb2.EventEnvelope.FromString(message.body)
            if envelope.receipt_issued.receipt.payment_id == payment_id:
                found.append(envelope)
                if len(found) == count:
                    return found
    return found


async def test_refund_window_override_and_receipts_end_to_end(server: ServerProcess) -> None:
    connection = await aio_pika.connect(BROKER_URL, timeout=10)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key="receipt.issued")
        order = f"order-{uuid.uuid4().hex[:8]}"
        async with grpc.aio.insecure_channel(server.address) as grpc_channel:
            payments = payments_pb2_grpc.PaymentServiceStub(grpc_channel)
            refunds = refunds_pb2_grpc.RefundServiceStub(grpc_channel)
            receipts = receipts_pb2_grpc.ReceiptServiceStub(grpc_channel)
            payment = await payments.CreatePayment(
                payments_pb2.CreatePaymentRequest(
                    request_id=f"pay-{order}",
                    order_id=order,
                    user_id="user-1",
                    amount=money_pb2.Money(currency_code="EUR", minor_units=4990),
                    payment_method_id="pm_card_visa",
                    confirm=True,
                    description="Gödel, Escher, Bach",
                )
            )
            assert payment.HasField("capture_time")

            late = refunds_pb2.CreateRefundRequest(
                request_id=f"refund-{order}", payment_id=payment.id, reason="arrived damaged"
            )
            with pytest.raises(grpc.aio.AioRpcError) as closed:
                await refunds.CreateRefund(late)
            assert closed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert error_info(closed.value).reason == "REFUND_WINDOW_CLOSED"

            late.window_override.reason = "goodwill: courier lost the parcel"
            refund = await refunds.CreateRefund(late)
            assert refund.state == refunds_pb2.REFUND_STATE_SUCCEEDED
            assert refund.window_override_reason == "goodwill: courier lost the parcel"

            events = await _receipt_events(queue, payment.id, 2)
            numbers = [e.receipt_issued.receipt.number for e in events]
            year = payment.capture_time.ToDatetime().year
            assert numbers == [f"R-{year}-000001", f"R-{year}-000002"]
            assert events[1].receipt_issued.receipt.id == refund.id

            receipt = await receipts.GetReceipt(
                receipts_pb2.GetReceiptRequest(id=payment.id, locale="de-DE", include_pdf=True)
            )
            assert receipt.number == numbers[0]
            assert receipt.merchant == "Acme Books GmbH"
            assert receipt.formatted_amount.replace("\xa0", " ") == "49,90 €"
            text = PdfReader(io.BytesIO(receipt.pdf)).pages[0].extract_text()
            assert numbers[0] in text
            assert "Gödel, Escher, Bach" in text
            assert "49,90" in text

            with pytest.raises(grpc.aio.AioRpcError) as bad_locale:
                await receipts.GetReceipt(
                    receipts_pb2.GetReceiptRequest(id=payment.id, locale="xx_NOPE")
                )
            assert bad_locale.value.code() == grpc.StatusCode.INVALID_ARGUMENT
