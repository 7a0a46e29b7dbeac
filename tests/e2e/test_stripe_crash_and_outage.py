"""A real server on Stripe (localstripe): killed mid-payment, and cut off from the provider."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import stripe
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status
from payments.v1 import money_pb2, payments_pb2, payments_pb2_grpc

from server.adapters.db.engine import create_engine
from tests.support.localstripe import LocalStripe
from tests.support.server_process import ServerProcess, health_status
from tests.support.stored_data import card_numbers_in, dump_database, secrets_in

API_KEY = "sk_test_e2e"


@pytest.fixture
def localstripe(tmp_path: Path) -> Iterator[LocalStripe]:
    """A localstripe of this test's own, which the test may stop and start again."""
    fake = LocalStripe(tmp_path).start()
    yield fake
    fake.stop()


def stripe_env(fake: LocalStripe, **extra: str) -> dict[str, str]:
    return {
        "PAYMENTS_DATABASE_URL": "",
        "PAYMENTS_PROVIDER": "stripe",
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_API_BASE": fake.url,
        "PAYMENTS_ENV": "test",
        # Everything the service and the SDK say, to prove none of it is secret.
        "PAYMENTS_LOG_LEVEL": "DEBUG",
        **extra,
    }


def create_request(n: int) -> payments_pb2.CreatePaymentRequest:
    return payments_pb2.CreatePaymentRequest(
        request_id=f"e2e-{n}",
        order_id=f"e2e-order-{n}",
        user_id="user-1",
        amount=money_pb2.Money(currency_code="USD", minor_units=2500),
        payment_method_id="pm_card_visa",
        confirm=True,
    )


def intents_for(fake: LocalStripe, payment_id: str) -> list[stripe.PaymentIntent]:
    client = stripe.StripeClient(API_KEY, base_addresses={"api": fake.url})
    listed = client.v1.payment_intents.list({"limit": 100})
    return [i for i in listed.data if i.metadata.to_dict().get("payment_id") == payment_id]


def retry_until_answered(
    stub: payments_pb2_grpc.PaymentServiceStub, request: payments_pb2.CreatePaymentRequest
) -> payments_pb2.Payment:
    for _ in range(100):
        try:
            reply: payments_pb2.Payment = stub.CreatePayment(request, timeout=10)
        except grpc.RpcError as error:
            last = error
            if error.code() not in (grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE):
                raise
            time.sleep(0.1)
            continue
        return reply
    raise AssertionError(f"no answer: {last}")


def test_killed_after_the_provider_call(tmp_path: Path, localstripe: LocalStripe) -> None:
    doomed = ServerProcess(
        tmp_path,
        stripe_env(
            localstripe,
            PAYMENTS_TEST_CRASH_AT="after_provider_call",
            PAYMENTS_IDEMPOTENCY_LEASE_SECONDS="1",
        ),
    ).start()
    with grpc.insecure_channel(doomed.address) as channel:
        stub = payments_pb2_grpc.PaymentServiceStub(channel)
        with pytest.raises(grpc.RpcError) as cut:
            stub.CreatePayment(create_request(1), timeout=20)
    assert cut.value.code() == grpc.StatusCode.UNAVAILABLE
    assert doomed.wait() == -9, "the server was SIGKILLed between the charge and its record"

    server = ServerProcess(
        tmp_path, stripe_env(localstripe, PAYMENTS_IDEMPOTENCY_LEASE_SECONDS="1")
    ).start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = payments_pb2_grpc.PaymentServiceStub(channel)
            stuck = stub.ListPayments(payments_pb2.ListPaymentsRequest()).payments
            assert [p.state for p in stuck] == [payments_pb2.PAYMENT_STATE_PROCESSING]
            report = stub.ReconcilePayments(
                payments_pb2.ReconcilePaymentsRequest(include_not_due=True)
            )
            assert list(report.changed_payment_ids) == [stuck[0].id]
            finished = stub.GetPayment(payments_pb2.GetPaymentRequest(id=stuck[0].id))
            assert finished.state == payments_pb2.PAYMENT_STATE_SUCCEEDED
            # The client's retry with the same request_id gets that same payment.
            retried = retry_until_answered(stub, create_request(1))
            assert retried.id == finished.id
            assert retried.state == payments_pb2.PAYMENT_STATE_SUCCEEDED
    finally:
        assert server.stop() == 0
    intents = intents_for(localstripe, finished.id)
    assert len(intents) == 1, "exactly one PaymentIntent at the provider"
    assert intents[0].status == "succeeded"
    assert_nothing_secret(doomed.log + server.log)
    assert_nothing_secret(asyncio.run(dump_sqlite(tmp_path / "payments.db")))


def test_provider_outage_opens_the_breaker_and_loses_nothing(
    tmp_path: Path, localstripe: LocalStripe
) -> None:
    server = ServerProcess(
        tmp_path,
        stripe_env(
            localstripe,
            PAYMENTS_PROVIDER_ATTEMPTS="2",
            PAYMENTS_PROVIDER_TIMEOUT_SECONDS="1",
            PAYMENTS_BREAKER_THRESHOLD="2",
            PAYMENTS_BREAKER_RESET_SECONDS="2",
        ),
    ).start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = payments_pb2_grpc.PaymentServiceStub(channel)
            before = stub.CreatePayment(create_request(1))
            assert before.state == payments_pb2.PAYMENT_STATE_SUCCEEDED
            localstripe.stop()
            reasons = []
            for n in range(2, 6):
                with pytest.raises(grpc.RpcError) as down:
                    stub.CreatePayment(create_request(n), timeout=30)
                assert down.value.code() == grpc.StatusCode.UNAVAILABLE
                status = rpc_status.from_call(down.value)  # type: ignore[arg-type]
                assert status is not None
                reasons.append(status.message)
            # The first calls tried and timed out; then the open breaker answered at once.
            assert "did not answer" in reasons[0]
            assert "calls resume in" in reasons[-1]
            assert (
                health_status(server.address, "payments.provider")
                == health_pb2.HealthCheckResponse.NOT_SERVING
            )
            assert health_status(server.address) == health_pb2.HealthCheckResponse.SERVING
            # Nothing was lost: the earlier payment is intact, and the refused ones
            # complete on retry once the provider is back.
            kept = stub.GetPayment(payments_pb2.GetPaymentRequest(id=before.id))
            assert before.client_secret
            before.client_secret = ""  # only the create response carries it
            assert kept == before
            localstripe.start()
            time.sleep(2)
            after = [retry_until_answered(stub, create_request(n)) for n in range(2, 6)]
            assert all(p.state == payments_pb2.PAYMENT_STATE_SUCCEEDED for p in after)
            assert (
                health_status(server.address, "payments.provider")
                == health_pb2.HealthCheckResponse.SERVING
            )
            listed = stub.ListPayments(payments_pb2.ListPaymentsRequest(page_size=100))
            assert len(listed.payments) == 5
    finally:
        assert server.stop() == 0
    assert_nothing_secret(server.log)


def assert_nothing_secret(text: str) -> None:
    assert text
    assert card_numbers_in(text) == []
    assert secrets_in(text) == []
    assert API_KEY not in text


async def dump_sqlite(path: Path) -> str:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        return await dump_database(engine)
    finally:
        await engine.dispose()
