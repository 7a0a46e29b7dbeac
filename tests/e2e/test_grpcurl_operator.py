"""What an operator does with grpcurl, against a real server with no .proto files."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.support.server_process import ServerProcess, grpcurl

SERVICE = "payments.v1.PaymentService"


def call(server: ServerProcess, method: str, body: dict[str, Any]) -> dict[str, Any]:
    out = grpcurl("-plaintext", "-d", json.dumps(body), server.address, f"{SERVICE}/{method}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def new_payment(**changes: Any) -> dict[str, Any]:
    body = {
        "request_id": str(uuid.uuid4()),
        "order_id": f"order-{uuid.uuid4().hex[:8]}",
        "user_id": "user-7",
        "amount": {"currency_code": "USD", "minor_units": 1999},
        "payment_method_id": "pm_card_visa",
    }
    body.update(changes)
    return body


def test_list_and_describe_through_reflection(sqlite_server: ServerProcess) -> None:
    listed = grpcurl("-plaintext", sqlite_server.address, "list").stdout.split()
    assert {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= set(
        listed
    )
    described = grpcurl("-plaintext", sqlite_server.address, "describe", SERVICE).stdout
    for method in ("CreatePayment", "ListPayments", "CapturePayment", "SimulatePayment"):
        assert f"rpc {method}" in described
    message = grpcurl("-plaintext", sqlite_server.address, "describe", "payments.v1.Money").stdout
    assert "int64 minor_units" in message


def test_health_overall_and_per_service(sqlite_server: ServerProcess) -> None:
    for service in ("", SERVICE):
        out = grpcurl(
            "-plaintext",
            "-d",
            json.dumps({"service": service}),
            sqlite_server.address,
            "grpc.health.v1.Health/Check",
        )
        assert json.loads(out.stdout) == {"status": "SERVING"}


def test_create_confirm_get(sqlite_server: ServerProcess) -> None:
    created = call(sqlite_server, "CreatePayment", new_payment())
    assert created["state"] == "PAYMENT_STATE_REQUIRES_CONFIRMATION"
    confirmed = call(
        sqlite_server, "ConfirmPayment", {"id": created["id"], "request_id": str(uuid.uuid4())}
    )
    assert confirmed["state"] == "PAYMENT_STATE_SUCCEEDED"
    assert confirmed["amount_captured"]["minor_units"] == "1999"
    assert call(sqlite_server, "GetPayment", {"id": created["id"]}) == confirmed


def test_manual_capture_and_cancel(sqlite_server: ServerProcess) -> None:
    held = call(
        sqlite_server,
        "CreatePayment",
        new_payment(confirm=True, capture_method="CAPTURE_METHOD_MANUAL"),
    )
    assert held["state"] == "PAYMENT_STATE_REQUIRES_CAPTURE"
    captured = call(
        sqlite_server,
        "CapturePayment",
        {"id": held["id"], "amount_to_capture": {"currency_code": "USD", "minor_units": 1500}},
    )
    assert captured["state"] == "PAYMENT_STATE_SUCCEEDED"
    assert captured["amount_captured"]["minor_units"] == "1500"
    other = call(sqlite_server, "CreatePayment", new_payment())
    canceled = call(sqlite_server, "CancelPayment", {"id": other["id"], "reason": "out of stock"})
    assert canceled["state"] == "PAYMENT_STATE_CANCELED"


def test_list_with_filter(sqlite_server: ServerProcess) -> None:
    user = f"lister-{uuid.uuid4().hex[:6]}"
    ids = [call(sqlite_server, "CreatePayment", new_payment(user_id=user))["id"] for _ in range(3)]
    page = call(
        sqlite_server,
        "ListPayments",
        {"filter": f'user_id = "{user}"', "page_size": 2, "order_by": "create_time"},
    )
    assert [p["id"] for p in page["payments"]] == ids[:2]
    rest = call(
        sqlite_server,
        "ListPayments",
        {
            "filter": f'user_id = "{user}"',
            "page_size": 2,
            "order_by": "create_time",
            "page_token": page["next_page_token"],
        },
    )
    assert [p["id"] for p in rest["payments"]] == ids[2:]
    assert "next_page_token" not in rest


def test_retry_replays_with_trailer(sqlite_server: ServerProcess) -> None:
    body = json.dumps(new_payment(confirm=True))
    target = f"{SERVICE}/CreatePayment"
    first = grpcurl("-plaintext", "-v", "-d", body, sqlite_server.address, target).stdout
    again = grpcurl("-plaintext", "-v", "-d", body, sqlite_server.address, target).stdout
    assert "idempotent-replayed: true" not in first
    assert "idempotent-replayed: true" in again

    def payment(out: str) -> str:
        return out.split("Response contents:")[1].split("Response trailers")[0]

    assert payment(first) == payment(again)


def test_bad_request_is_invalid_argument_with_field_violations(
    sqlite_server: ServerProcess,
) -> None:
    body = new_payment(amount={"currency_code": "usd", "minor_units": 0}, request_id="")
    out = grpcurl(
        "-plaintext",
        "-d",
        json.dumps(body),
        sqlite_server.address,
        f"{SERVICE}/CreatePayment",
        check=False,
    )
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "Code: InvalidArgument" in text
    assert '"reason":"INVALID_ARGUMENT"' in text.replace(" ", "")
    for field in ("request_id", "amount.currency_code", "amount.minor_units"):
        assert f'"field":"{field}"' in text.replace(" ", "")
