"""SubscriptionService through a real server process, driven by grpcurl as an operator would."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.support.server_process import ServerProcess, grpcurl

SERVICE = "payments.v1.SubscriptionService"


def call(server: ServerProcess, method: str, body: dict[str, Any]) -> dict[str, Any]:
    out = grpcurl("-plaintext", "-d", json.dumps(body), server.address, method)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_create_a_plan_subscribe_and_read_it_back(sqlite_server: ServerProcess) -> None:
    address = sqlite_server.address
    assert SERVICE in grpcurl("-plaintext", address, "list").stdout.split()
    health = grpcurl(
        "-plaintext", "-d", json.dumps({"service": SERVICE}), address, "grpc.health.v1.Health/Check"
    ).stdout
    assert "SERVING" in health
    n = uuid.uuid4().hex[:8]
    plan = call(
        sqlite_server,
        f"{SERVICE}/CreatePlan",
        {
            "request_id": f"e2e-plan-{n}",
            "name": "Premium monthly",
            "price": {"currency_code": "EUR", "minor_units": 990},
            "interval": "PLAN_INTERVAL_MONTH",
            "interval_count": 1,
        },
    )
    assert plan["id"].startswith("pln_")
    assert plan["state"] == "PLAN_STATE_ACTIVE"
    method = call(
        sqlite_server,
        "payments.v1.PaymentMethodService/AttachPaymentMethod",
        {
            "request_id": f"e2e-card-{n}",
            "user_id": f"user-{n}",
            "provider_payment_method_id": "pm_card_visa",
        },
    )
    body = json.dumps(
        {
            "request_id": f"e2e-sub-{n}",
            "user_id": f"user-{n}",
            "plan_id": plan["id"],
            "payment_method_id": method["id"],
        }
    )
    target = f"{SERVICE}/CreateSubscription"
    first = grpcurl("-plaintext", "-v", "-d", body, address, target).stdout
    again = grpcurl("-plaintext", "-v", "-d", body, address, target).stdout
    assert "idempotent-replayed" not in first
    assert "idempotent-replayed: true" in again
    created = json.loads(first.split("Response contents:")[1].split("Response trailers")[0])
    assert created["state"] == "SUBSCRIPTION_STATE_ACTIVE"
    assert created["latest_payment_id"].startswith("pay_")
    got = call(sqlite_server, f"{SERVICE}/GetSubscription", {"id": created["id"]})
    assert got == created
    payment = call(
        sqlite_server, "payments.v1.PaymentService/GetPayment", {"id": got["latest_payment_id"]}
    )
    assert payment["state"] == "PAYMENT_STATE_SUCCEEDED"
    assert payment["order_id"] == f"{created['id']}:renewal:{created['current_period_start'][:19]}Z"


def test_bad_and_unknown_requests_get_precise_statuses(sqlite_server: ServerProcess) -> None:
    address = sqlite_server.address
    bad = grpcurl(
        "-plaintext",
        "-d",
        json.dumps({"request_id": "e2e-bad-sub", "plan_id": "nope"}),
        address,
        f"{SERVICE}/CreateSubscription",
        check=False,
    )
    assert bad.returncode != 0
    assert "InvalidArgument" in bad.stderr
    for field in ("user_id", "plan_id", "payment_method_id"):
        assert field in bad.stderr
    unknown = grpcurl(
        "-plaintext",
        "-d",
        json.dumps({"id": "sub_01JD0000000000000000000000"}),
        address,
        f"{SERVICE}/GetSubscription",
        check=False,
    )
    assert "NotFound" in unknown.stderr
    assert "SUBSCRIPTION_NOT_FOUND" in unknown.stderr
