"""The audit trail through a real server with HS256 tokens on PostgreSQL: what a service
did, what a customer was refused, an admin's refund window override, read back with
ListAuditEvents."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from payments.v1 import audit_pb2, money_pb2, payments_pb2, refunds_pb2

from tests.e2e.test_auth_matrix import AUTH_ENV, CALLERS
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.server_process import ServerProcess


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    url = create_postgres_database("payments_audit")
    env = {**AUTH_ENV, "PAYMENTS_DATABASE_URL": url, "PAYMENTS_REFUND_WINDOW_DAYS": "0"}
    server = ServerProcess(tmp_path, env=env).start()
    yield server
    assert server.stop() == 0, server.log
    drop_postgres_database(url)


def call(
    channel: grpc.Channel, method: str, request: object, response: type, caller: str
) -> object:
    rpc = channel.unary_unary(
        f"/payments.v1.{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,  # type: ignore[attr-defined]
    )
    return rpc(request, metadata=CALLERS[caller](), timeout=15)


def audit(channel: grpc.Channel, **filters: str) -> list[audit_pb2.AuditEvent]:
    reply = call(
        channel,
        "AuditService/ListAuditEvents",
        audit_pb2.ListAuditEventsRequest(**filters),  # type: ignore[arg-type]
        audit_pb2.ListAuditEventsResponse,
        "admin",
    )
    assert isinstance(reply, audit_pb2.ListAuditEventsResponse)
    return list(reply.audit_events)


def test_who_did_what_is_kept(server: ServerProcess) -> None:
    order = f"order-{uuid.uuid4().hex[:8]}"
    with grpc.insecure_channel(server.address) as channel:
        payment = call(
            channel,
            "PaymentService/CreatePayment",
            payments_pb2.CreatePaymentRequest(
                request_id=f"pay-{order}",
                order_id=order,
                user_id="user-a",
                amount=money_pb2.Money(currency_code="USD", minor_units=2500),
                payment_method_id="pm_card_visa",
                confirm=True,
            ),
            payments_pb2.Payment,
            "service",
        )
        assert isinstance(payment, payments_pb2.Payment)
        created = audit(channel, resource_id=payment.id)
        assert {e.reason for e in created} >= {"SUCCEEDED"}
        for event in created:
            assert (event.action, event.channel) == ("PaymentService/CreatePayment", "grpc")
            assert (event.subject, list(event.roles)) == ("checkout", ["service"])
            assert event.calling_service == "checkout"
            assert event.request_id == f"pay-{order}"
            assert event.outcome == "OK"

        refund = refunds_pb2.CreateRefundRequest(
            request_id=f"refund-{order}", payment_id=payment.id
        )
        with pytest.raises(grpc.RpcError) as denied:
            call(channel, "RefundService/CreateRefund", refund, refunds_pb2.Refund, "customer A")
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as closed:
            call(channel, "RefundService/CreateRefund", refund, refunds_pb2.Refund, "admin")
        assert closed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        refund.window_override.reason = "goodwill, ticket 4711"
        done = call(channel, "RefundService/CreateRefund", refund, refunds_pb2.Refund, "admin")
        assert isinstance(done, refunds_pb2.Refund)

        refusals = {
            e.outcome: e
            for e in audit(channel, action="RefundService/CreateRefund", resource_id=payment.id)
        }
        assert refusals["PERMISSION_DENIED"].subject == "user-a"
        assert refusals["PERMISSION_DENIED"].request_id == f"refund-{order}"
        assert refusals["FAILED_PRECONDITION"].reason == "REFUND_WINDOW_CLOSED"
        assert refusals["FAILED_PRECONDITION"].subject == "ops"
        overridden = audit(channel, resource_id=done.id)
        assert [e.reason for e in overridden] == ["SUCCEEDED", "PENDING"]
        assert overridden[0].details["window_override_reason"] == "goodwill, ticket 4711"
        assert overridden[0].subject == "ops"
        assert list(overridden[0].roles) == ["admin"]
