"""Scale-out as deploy/kubernetes runs it: three servers and a worker on one database and broker.

A client balances calls over the three with `round_robin`, as one does over the
headless Service's addresses. One server is killed (SIGKILL, no drain) while calls
are in flight: no call fails for good, because the client retries UNAVAILABLE and
ABORTED with the same request_id, and every payment is recorded once.
The provider is localstripe, one for all servers as Stripe is: a retry that another
server resumes finds the PaymentIntent the killed one made.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import stripe
from grpc import aio
from payments.v1 import money_pb2, payments_pb2, payments_pb2_grpc
from payments_client import PaymentsClient, connect

from server.adapters.db.engine import create_engine
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.localstripe import LocalStripe
from tests.support.polling import until
from tests.support.server_process import PaymentsProcess, ServerProcess

API_KEY = "sk_test_scale_out"
PAYMENTS = 80
CALLERS = 8
KILL_AFTER = 25
RETRIED = ("UNAVAILABLE", "ABORTED")


class WorkerProcess(PaymentsProcess):
    """`payments worker`: up once it says its jobs run."""

    kind = "worker"

    def ready(self) -> bool:
        return "worker running background jobs" in self.log


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[list[ServerProcess], str, LocalStripe]]:
    url = create_postgres_database("payments_scale")
    stripe_fake = LocalStripe(tmp_path).start()
    env = {
        "PAYMENTS_DATABASE_URL": url,
        "PAYMENTS_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/",
        "PAYMENTS_PROVIDER": "stripe",
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_API_BASE": stripe_fake.url,
        "PAYMENTS_ENV": "test",
        # A key held by the killed server frees up soon, so the retry can take it over.
        "PAYMENTS_IDEMPOTENCY_LEASE_SECONDS": "2",
    }
    servers = [ServerProcess(tmp_path, env) for _ in range(3)]
    worker = WorkerProcess(tmp_path, ("worker",), env)
    try:
        for process in (*servers, worker):
            process.start()
        yield servers, url, stripe_fake
        assert worker.stop() == 0, worker.log
    finally:
        for process in (*servers, worker):
            process.stop()
        stripe_fake.stop()
        drop_postgres_database(url)


def request(number: int) -> payments_pb2.CreatePaymentRequest:
    return payments_pb2.CreatePaymentRequest(
        request_id=f"scale-{number}-{uuid.uuid4().hex[:8]}",
        order_id=f"scale-order-{number}",
        user_id="scale-user",
        amount=money_pb2.Money(currency_code="USD", minor_units=100 + number),
        payment_method_id="pm_card_visa",
        confirm=True,
    )


async def pay(
    stub: payments_pb2_grpc.PaymentServiceAsyncStub, call: payments_pb2.CreatePaymentRequest
) -> payments_pb2.Payment:
    """What a client does beyond the channel's own retries: keep the same request_id."""
    async with asyncio.timeout(60):
        while True:
            try:
                return await stub.CreatePayment(call)
            except aio.AioRpcError as error:
                if error.code().name not in RETRIED:
                    raise
                await asyncio.sleep(0.2)


async def test_a_killed_replica_loses_no_call_and_records_every_payment_once(
    cluster: tuple[list[ServerProcess], str, LocalStripe],
) -> None:
    servers, url, stripe_fake = cluster
    # The client package's channel: round_robin over the three, and gRPC's own retries of
    # UNAVAILABLE and ABORTED, which resend the same bytes (the same request_id).
    target = "ipv4:" + ",".join(server.address for server in servers)
    done = 0
    enough_done = asyncio.Event()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(PAYMENTS):
        queue.put_nowait(number)
    answers: dict[str, payments_pb2.Payment] = {}
    served_by_victim = False

    async with PaymentsClient(connect(target)) as client:
        stub = client.payments

        async def caller() -> None:
            nonlocal done
            while not queue.empty():
                call = request(queue.get_nowait())
                answers[call.order_id] = await pay(stub, call)
                done += 1
                if done == KILL_AFTER:
                    enough_done.set()

        callers = [asyncio.create_task(caller()) for _ in range(CALLERS)]
        async with asyncio.timeout(60):
            await enough_done.wait()
        victim = servers[0]
        # Its log line per money-moving step: it did take its share of the calls.
        served_by_victim = " at stripe" in victim.log
        victim.signal(signal.SIGKILL)
        await asyncio.gather(*callers)

    assert victim.wait() == -signal.SIGKILL
    assert served_by_victim
    assert len(answers) == PAYMENTS
    assert {p.state for p in answers.values()} == {payments_pb2.PAYMENT_STATE_SUCCEEDED}
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    sa.text("SELECT order_id, id, provider_payment_id FROM payments")
                )
            ).all()
            assert len(rows) == PAYMENTS
            assert {row.order_id: row.id for row in rows} == {
                order: payment.id for order, payment in answers.items()
            }

            async def all_published() -> bool:
                unpublished = await connection.execute(
                    sa.text("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                )
                await connection.commit()
                return int(unpublished.scalar_one()) == 0

            await until(all_published, within=30)
    finally:
        await engine.dispose()
    stripe_client = stripe.StripeClient(API_KEY, base_addresses={"api": stripe_fake.url})
    intents = list(stripe_client.v1.payment_intents.list({"limit": 100}).auto_paging_iter())
    recorded = {row.provider_payment_id: row.id for row in rows}
    # Every recorded provider payment took the money, for the payment that records it.
    by_id = {intent.id: intent for intent in intents}
    assert set(recorded) <= set(by_id)
    for provider_id, payment_id in recorded.items():
        assert by_id[provider_id].status == "succeeded"
        assert by_id[provider_id].metadata.to_dict()["payment_id"] == payment_id
    # A server killed after sending a create but before recording its answer leaves the
    # retry to send that create again with the same Idempotency-Key. Stripe answers it
    # with the first PaymentIntent; localstripe ignores the key and makes a second one.
    # So extra intents may only belong to payments that were in flight at the kill.
    extra = Counter(i.metadata.to_dict()["payment_id"] for i in intents if i.id not in recorded)
    assert set(extra) <= set(recorded.values())
    assert sum(extra.values()) <= CALLERS
