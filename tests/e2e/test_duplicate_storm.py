"""50 identical CreatePayment calls over two server processes on one PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from grpc import aio
from payments.v1 import money_pb2, payments_pb2, payments_pb2_grpc

from server.adapters.db.engine import create_engine
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.server_process import ServerProcess

REQUEST = payments_pb2.CreatePaymentRequest(
    request_id="storm-1",
    order_id="order-storm",
    user_id="user-1",
    amount=money_pb2.Money(currency_code="USD", minor_units=4200),
    payment_method_id="pm_card_visa",
    confirm=True,
)


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess, str, Path]]:
    url = create_postgres_database("payments_storm")
    ledger = tmp_path / "ledger.jsonl"
    env = {
        "PAYMENTS_DATABASE_URL": url,
        "PAYMENTS_MOCK_LEDGER": str(ledger),
        # The provider is slow enough that every caller arrives while the first is in flight.
        "PAYMENTS_MOCK_LATENCY_MS": "200",
    }
    servers = [ServerProcess(tmp_path, env) for _ in range(2)]
    try:
        for server in servers:
            server.start()
        yield servers[0], servers[1], url, ledger
    finally:
        for server in servers:
            server.stop()
        drop_postgres_database(url)


async def call_until_answered(address: str) -> tuple[bytes, bool]:
    """A well-behaved client: ABORTED (key in use) is retried with backoff."""
    async with aio.insecure_channel(address) as channel:
        # Raw bytes, to compare the responses byte for byte.
        create = channel.unary_unary(
            "/payments.v1.PaymentService/CreatePayment",
            request_serializer=payments_pb2.CreatePaymentRequest.SerializeToString,
            response_deserializer=None,
        )
        delay = 0.02
        for _ in range(100):
            call = create(REQUEST, timeout=10)
            try:
                body = await call
            except aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.ABORTED:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 0.3)
                continue
            trailers = await call.trailing_metadata()
            replayed = ("idempotent-replayed", "true") in tuple(trailers or ())
            assert isinstance(body, bytes)
            return body, replayed
    raise AssertionError("never answered")


async def test_storm_creates_one_payment_and_one_charge(
    two_servers: tuple[ServerProcess, ServerProcess, str, Path],
) -> None:
    first, second, url, ledger = two_servers
    addresses = [first.address, second.address] * 25
    answers = await asyncio.gather(*(call_until_answered(a) for a in addresses))
    bodies = {body for body, _ in answers}
    assert len(bodies) == 1, "all 50 callers see the same payment, byte for byte"
    payment = payments_pb2.Payment.FromString(bodies.pop())
    assert payment.state == payments_pb2.PAYMENT_STATE_SUCCEEDED
    assert sum(not replayed for _, replayed in answers) == 1
    assert len(ledger.read_text().splitlines()) == 1, "exactly one provider charge"
    engine = create_engine(url)
    async with engine.connect() as connection:
        count = await connection.execute(sa.text("SELECT count(*) FROM payments"))
        assert count.scalar_one() == 1
    await engine.dispose()
    async with aio.insecure_channel(second.address) as channel:
        stub = payments_pb2_grpc.PaymentServiceStub(channel)
        got = await stub.GetPayment(payments_pb2.GetPaymentRequest(id=payment.id))
    assert got == payment
