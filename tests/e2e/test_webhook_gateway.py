"""Real `payments gateway` and `payments serve` on one database, with localstripe sending webhooks.

A payment reaches its final state from the webhook alone; the same signed
delivery twice and events out of order leave the same end state; forged,
wrongly signed, stale and oversized requests are refused and change nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa
import stripe
from payments.v1 import money_pb2, payments_pb2, payments_pb2_grpc

from server.adapters.db.engine import create_engine
from tests.support.databases import run_in_thread
from tests.support.gateway_process import GatewayProcess
from tests.support.localstripe import LocalStripe
from tests.support.server_process import ServerProcess
from tests.support.stored_data import webhook_event_rows
from tests.support.stripe_events import event_body, intent_object, signed_headers

API_KEY = "sk_test_gateway_e2e"
SECRET = "whsec_e2e_current"
OLD_SECRET = "whsec_e2e_previous"
THREE_D_SECURE_CARD = "4000002500003155"
SUCCEEDED = payments_pb2.PAYMENT_STATE_SUCCEEDED
REQUIRES_ACTION = payments_pb2.PAYMENT_STATE_REQUIRES_ACTION


class Stack:
    def __init__(self, fake: LocalStripe, server: ServerProcess, gateway: GatewayProcess, url: str):
        self.fake = fake
        self.server = server
        self.gateway = gateway
        self.database_url = url
        self.stripe = stripe.StripeClient(API_KEY, base_addresses={"api": fake.url})
        self.channel = grpc.insecure_channel(server.address)
        self.payments = payments_pb2_grpc.PaymentServiceStub(self.channel)

    def webhook(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{self.gateway.url}/webhooks/stripe", content=body, headers=headers)

    def get(self, payment_id: str) -> payments_pb2.Payment:
        reply: payments_pb2.Payment = self.payments.GetPayment(
            payments_pb2.GetPaymentRequest(id=payment_id), timeout=10
        )
        return reply

    def create_3ds_payment(self, n: int) -> payments_pb2.Payment:
        method = self.stripe.v1.payment_methods.create(
            {
                "type": "card",
                "card": {
                    "number": THREE_D_SECURE_CARD,
                    "exp_month": 12,
                    "exp_year": 2030,
                    "cvc": "123",
                },
            }
        )
        reply: payments_pb2.Payment = self.payments.CreatePayment(
            payments_pb2.CreatePaymentRequest(
                request_id=f"gw-e2e-{n}",
                order_id=f"gw-e2e-order-{n}",
                user_id="user-1",
                amount=money_pb2.Money(currency_code="EUR", minor_units=4200),
                payment_method_id=method.id,
                confirm=True,
            ),
            timeout=10,
        )
        assert reply.state == REQUIRES_ACTION
        return reply

    def rows(self) -> list[dict[str, Any]]:
        return webhook_event_rows(self.database_url)

    def outbox_count(self) -> int:
        async def count() -> int:
            engine = create_engine(self.database_url)
            try:
                async with engine.connect() as connection:
                    return int(
                        (
                            await connection.execute(sa.text("SELECT count(*) FROM outbox"))
                        ).scalar_one()
                    )
            finally:
                await engine.dispose()

        return run_in_thread(count)


def wait_for_state(stack: Stack, payment_id: str, state: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.get(payment_id).state == state:
            return
        time.sleep(0.1)
    raise AssertionError(
        f"payment {payment_id} is {stack.get(payment_id).state}, not {state}:\n"
        f"{stack.gateway.log}\n{stack.fake.log[-3000:]}"
    )


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    fake = LocalStripe(tmp_path).start()
    url = f"sqlite+aiosqlite:///{tmp_path / 'payments.db'}"
    env = {
        "PAYMENTS_DATABASE_URL": url,
        "PAYMENTS_PROVIDER": "stripe",
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_API_BASE": fake.url,
        "PAYMENTS_ENV": "test",
        "PAYMENTS_LOG_LEVEL": "DEBUG",
    }
    server = ServerProcess(tmp_path, env=env).start()
    gateway = GatewayProcess(
        tmp_path, env={**env, "STRIPE_WEBHOOK_SECRET": f"{SECRET}, {OLD_SECRET}"}
    ).start()
    try:
        registered = httpx.post(
            f"{fake.url}/_config/webhooks/payments-gateway",
            data={"url": f"{gateway.url}/webhooks/stripe", "secret": SECRET},
        )
        registered.raise_for_status()
        built = Stack(fake, server, gateway, url)
        yield built
        built.channel.close()
    finally:
        gateway_code = gateway.stop()
        server.stop()
        fake.stop()
    assert gateway_code == 0, gateway.log
    for secret in (SECRET, OLD_SECRET, API_KEY, "_secret_"):
        assert secret not in gateway.log


def test_payment_settles_from_webhooks_alone(stack: Stack) -> None:
    created = stack.create_3ds_payment(1)
    intent = stack.stripe.v1.payment_intents.retrieve(created.provider_payment_id)
    # The customer passes 3-D Secure in the browser; nobody tells the gRPC path.
    answer = httpx.post(
        f"{stack.fake.url}/v1/payment_intents/{intent.id}/_authenticate",
        data={"client_secret": intent.client_secret, "success": "true"},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    answer.raise_for_status()
    wait_for_state(stack, created.id, SUCCEEDED)
    settled = stack.get(created.id)
    assert settled.amount_captured.minor_units == 4200
    [row] = [r for r in stack.rows() if r["type"] == "payment_intent.succeeded"]
    assert row["status"] == "applied"
    assert row["payment_id"] == created.id
    outbox = stack.outbox_count()

    # The very same signed delivery again, twice: acknowledged, nothing done.
    payload = row["payload"].encode()
    created_at = json.loads(payload)["created"]
    same = signed_headers(payload, SECRET, created_at)
    for _ in range(2):
        reply = stack.webhook(payload, same)
        assert reply.status_code == 200
        assert reply.json()["outcome"] == "duplicate"

    # Out of order: a failure and a 3-D Secure request that Stripe sent before the success.
    for event_type, status in [
        ("payment_intent.payment_failed", "requires_payment_method"),
        ("payment_intent.requires_action", "requires_action"),
    ]:
        late = event_body(
            event_type,
            intent_object(intent.id, status, payment_id=created.id, decline_code="card_declined"),
        )
        reply = stack.webhook(late, signed_headers(late, OLD_SECRET))
        assert reply.status_code == 200
        assert reply.json()["outcome"] == "stale"
    assert stack.get(created.id) == settled
    assert stack.outbox_count() == outbox


def test_forged_stale_and_oversized_requests_change_nothing(stack: Stack) -> None:
    waiting = stack.create_3ds_payment(2)
    rows, outbox = stack.rows(), stack.outbox_count()
    forged = event_body(
        "payment_intent.succeeded",
        intent_object(waiting.provider_payment_id, "succeeded", payment_id=waiting.id),
    )
    now = int(time.time())
    attempts = [
        (forged, {"Content-Type": "application/json"}, 400),
        (
            forged,
            {**signed_headers(forged, SECRET), "Stripe-Signature": f"t={now},v1={'a' * 64}"},
            400,
        ),
        (forged, signed_headers(forged, "whsec_attacker"), 400),
        (forged, signed_headers(forged, SECRET, now - 3600), 400),
        (forged, signed_headers(forged, SECRET, now + 3600), 400),
        (forged + b" " * (1024 * 1024), signed_headers(forged + b" " * (1024 * 1024), SECRET), 413),
        (forged, {**signed_headers(forged, SECRET), "Content-Type": "text/plain"}, 415),
    ]
    for body, headers, status in attempts:
        reply = stack.webhook(body, headers)
        assert reply.status_code == status, reply.text
        assert SECRET not in reply.text
    assert stack.get(waiting.id).state == REQUIRES_ACTION
    assert stack.rows() == rows
    assert stack.outbox_count() == outbox
    assert httpx.get(f"{stack.gateway.url}/readyz").status_code == 200


def test_gateway_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    gateway = GatewayProcess(
        tmp_path,
        env={
            "PAYMENTS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
            "STRIPE_WEBHOOK_SECRET": "",
        },
    ).start(wait=False)
    assert gateway.wait(30) == 2
    assert "STRIPE_WEBHOOK_SECRET" in gateway.log


def test_gateway_on_port_zero_logs_its_address_and_stops_cleanly(tmp_path: Path) -> None:
    gateway = GatewayProcess(
        tmp_path,
        env={
            "PAYMENTS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "PAYMENTS_GATEWAY_ADDRESS": "127.0.0.1:0",
        },
    ).start(wait=False)
    try:
        deadline = time.monotonic() + 30
        while "gateway listening on http://" not in gateway.log:
            assert time.monotonic() < deadline, gateway.log
            assert gateway.process is not None
            assert gateway.process.poll() is None, gateway.log
            time.sleep(0.1)
        # Logs are JSON lines: the address is in the message of one of them.
        messages = [json.loads(line)["message"] for line in gateway.log.splitlines()]
        listening = next(m for m in messages if m.startswith("gateway listening on "))
        url = listening.removeprefix("gateway listening on ")
        assert not url.endswith(":0")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    finally:
        code = gateway.stop()
    assert code == 0, gateway.log
