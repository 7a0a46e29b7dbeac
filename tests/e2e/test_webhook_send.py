"""`payments webhook send` against a real sidecar: localstripe, server and gateway processes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from payments.v1 import money_pb2, payments_pb2, payments_pb2_grpc

from tests.support.gateway_process import GatewayProcess
from tests.support.localstripe import LocalStripe
from tests.support.server_process import PAYMENTS, ServerProcess

API_KEY = "sk_test_webhook_send"
SECRET = "whsec_webhook_send"
THREE_D_SECURE_CARD = "4000002500003155"


class Stack:
    def __init__(self, env: dict[str, str], server: ServerProcess, gateway: GatewayProcess):
        self.env = {**env, "PAYMENTS_GATEWAY_ADDRESS": gateway.address}
        self.server = server
        self.gateway = gateway
        self.channel = grpc.insecure_channel(server.address)
        self.payments = payments_pb2_grpc.PaymentServiceStub(self.channel)

    def send(self, event_type: str, payment_id: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PAYMENTS, "webhook", "send", event_type, "--payment", payment_id],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def create(self, n: int, method: str) -> payments_pb2.Payment:
        reply: payments_pb2.Payment = self.payments.CreatePayment(
            payments_pb2.CreatePaymentRequest(
                request_id=f"send-{n}",
                order_id=f"send-order-{n}",
                user_id="user-1",
                amount=money_pb2.Money(currency_code="EUR", minor_units=4200),
                payment_method_id=method,
                confirm=True,
            ),
            timeout=10,
        )
        return reply

    def get(self, payment_id: str) -> payments_pb2.Payment:
        reply: payments_pb2.Payment = self.payments.GetPayment(
            payments_pb2.GetPaymentRequest(id=payment_id), timeout=10
        )
        return reply


def start_stack(folder: Path, env: dict[str, str]) -> Stack:
    env = {
        "PAYMENTS_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'payments.db'}",
        "STRIPE_WEBHOOK_SECRET": SECRET,
        **env,
    }
    server = ServerProcess(folder, env=env).start()
    gateway = GatewayProcess(folder, env=env).start()
    return Stack(env, server, gateway)


def stop_stack(stack: Stack) -> None:
    stack.channel.close()
    assert stack.gateway.stop() == 0, stack.gateway.log
    stack.server.stop()


@pytest.fixture
def stripe_stack(tmp_path: Path) -> Iterator[tuple[Stack, LocalStripe]]:
    fake = LocalStripe(tmp_path).start()
    env = {"PAYMENTS_PROVIDER": "stripe", "STRIPE_API_KEY": API_KEY, "STRIPE_API_BASE": fake.url}
    try:
        stack = start_stack(tmp_path, env)
        yield stack, fake
        stop_stack(stack)
    finally:
        fake.stop()


def test_a_sent_event_settles_a_stripe_payment(stripe_stack: tuple[Stack, LocalStripe]) -> None:
    stack, fake = stripe_stack
    created = stack.create(1, fake.card_method(API_KEY, THREE_D_SECURE_CARD))
    assert created.state == payments_pb2.PAYMENT_STATE_REQUIRES_ACTION

    sent = stack.send("payment_intent.succeeded", created.id)

    assert sent.returncode == 0, sent.stderr
    assert "HTTP 200" in sent.stdout
    assert '"outcome":"applied"' in sent.stdout
    assert stack.get(created.id).state == payments_pb2.PAYMENT_STATE_SUCCEEDED
    # A late failure cannot move a succeeded payment back.
    late = stack.send("payment_intent.payment_failed", created.id)
    assert '"outcome":"stale"' in late.stdout, late.stdout + late.stderr
    assert stack.get(created.id).state == payments_pb2.PAYMENT_STATE_SUCCEEDED
    log = stack.gateway.log
    assert "webhooks: applying" in log
    assert "payment_intent.succeeded" in log
    assert "\x1b" not in log
    assert "\\u001b" not in log


def test_the_mock_provider_sidecar_says_it_will_ignore_them_and_checks_signatures(
    tmp_path: Path,
) -> None:
    stack = start_stack(tmp_path, {})
    try:
        created = stack.create(2, "pm_card_authenticationRequired")
        sent = stack.send("payment_intent.succeeded", created.id)
        unknown = stack.send("payment_intent.succeeded", "pay_does_not_exist")
        wrong_type = stack.send("charge.dispute.created", created.id)
        stack.env["STRIPE_WEBHOOK_SECRET"] = "whsec_not_the_sidecars"
        forged = stack.send("payment_intent.succeeded", created.id)
    finally:
        stop_stack(stack)
    assert sent.returncode == 0, sent.stderr
    assert '"outcome":"ignored"' in sent.stdout
    assert "was made with the mock provider" in sent.stderr
    assert "PAYMENTS_PROVIDER=mock" in stack.gateway.log
    assert "will be stored as ignored" in stack.gateway.log
    assert unknown.returncode == 2
    assert "no payment pay_does_not_exist" in unknown.stderr
    assert wrong_type.returncode == 2
    assert "one of: payment_intent.amount_capturable_updated" in wrong_type.stderr
    assert forged.returncode == 1
    assert "HTTP 400" in forged.stdout
    assert "invalid signature" in forged.stdout
