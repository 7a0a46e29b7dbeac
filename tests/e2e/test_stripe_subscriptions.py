"""A Stripe subscription through real processes: `payments serve` and `payments gateway`
with PAYMENTS_PROVIDER=stripe, and localstripe charging it and sending its own signed webhooks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from payments.v1 import (
    money_pb2,
    payment_methods_pb2,
    payment_methods_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
)

from tests.support.gateway_process import GatewayProcess
from tests.support.localstripe import LocalStripe
from tests.support.server_process import ServerProcess
from tests.support.stored_data import webhook_event_rows

API_KEY = "sk_test_subscriptions_e2e"
SECRET = "whsec_subscriptions_e2e"


class Stack:
    def __init__(self, fake: LocalStripe, server: ServerProcess, gateway: GatewayProcess, url: str):
        self.fake = fake
        self.gateway = gateway
        self.database_url = url
        self.channel = grpc.insecure_channel(server.address)
        self.subscriptions = subscriptions_pb2_grpc.SubscriptionServiceStub(self.channel)
        self.methods = payment_methods_pb2_grpc.PaymentMethodServiceStub(self.channel)

    def rows(self) -> list[dict[str, Any]]:
        return webhook_event_rows(self.database_url)

    def wait_for_event(self, event_type: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [row for row in self.rows() if row["type"] == event_type]
            if found:
                return found[-1]
            time.sleep(0.1)
        raise AssertionError(f"no {event_type} arrived:\n{self.gateway.log}")


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
    }
    server = ServerProcess(tmp_path, env=env).start()
    gateway = GatewayProcess(tmp_path, env={**env, "STRIPE_WEBHOOK_SECRET": SECRET}).start()
    try:
        httpx.post(
            f"{fake.url}/_config/webhooks/payments-gateway",
            data={"url": f"{gateway.url}/webhooks/stripe", "secret": SECRET},
        ).raise_for_status()
        built = Stack(fake, server, gateway, url)
        yield built
        built.channel.close()
    finally:
        gateway_code = gateway.stop()
        server.stop()
        fake.stop()
    assert gateway_code == 0, gateway.log


def test_localstripe_bills_and_its_webhooks_keep_the_subscription_in_step(stack: Stack) -> None:
    method = stack.methods.AttachPaymentMethod(
        payment_methods_pb2.AttachPaymentMethodRequest(
            request_id="e2e-stripe-card",
            user_id="user-s",
            provider_payment_method_id="pm_card_visa",
        ),
        timeout=10,
    )
    plan = stack.subscriptions.CreatePlan(
        subscriptions_pb2.CreatePlanRequest(
            request_id="e2e-stripe-plan",
            name="Premium",
            price=money_pb2.Money(currency_code="EUR", minor_units=1500),
            interval=subscriptions_pb2.PLAN_INTERVAL_MONTH,
            interval_count=1,
        ),
        timeout=10,
    )
    created = stack.subscriptions.CreateSubscription(
        subscriptions_pb2.CreateSubscriptionRequest(
            request_id="e2e-stripe-sub",
            user_id="user-s",
            plan_id=plan.id,
            payment_method_id=method.id,
        ),
        timeout=20,
    )
    assert created.state == subscriptions_pb2.SUBSCRIPTION_STATE_ACTIVE
    assert created.provider == "stripe"
    assert created.provider_subscription_id.startswith("sub_")
    # localstripe sends these itself, signed, to the sidecar.
    for event_type in ("customer.subscription.created", "invoice.payment_succeeded"):
        row = stack.wait_for_event(event_type)
        assert row["status"] in ("applied", "stale", "ignored"), row
    canceled = stack.subscriptions.CancelSubscription(
        subscriptions_pb2.CancelSubscriptionRequest(id=created.id, request_id="e2e-stripe-end"),
        timeout=20,
    )
    assert canceled.state == subscriptions_pb2.SUBSCRIPTION_STATE_CANCELED
    deleted = stack.wait_for_event("customer.subscription.deleted")
    assert deleted["status"] == "applied"
    assert not [row for row in stack.rows() if row["status"] == "failed"]
    after = stack.subscriptions.GetSubscription(
        subscriptions_pb2.GetSubscriptionRequest(id=created.id), timeout=10
    )
    assert after.state == subscriptions_pb2.SUBSCRIPTION_STATE_CANCELED
    assert after.end_reason == "requested"
