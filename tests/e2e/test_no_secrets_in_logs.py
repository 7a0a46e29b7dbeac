"""A full scripted run through a real server with auth, on Stripe (localstripe), logging at
DEBUG: tokens, the JWT secret, client secrets, the Stripe key and card numbers sent in
requests never appear in what the server writes."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import grpc
import httpx
import pytest
from payments.v1 import (
    money_pb2,
    payment_methods_pb2,
    payment_methods_pb2_grpc,
    payments_pb2,
    payments_pb2_grpc,
    refunds_pb2,
    refunds_pb2_grpc,
)

from server.domain.card_numbers import contains_card_number
from tests.e2e.test_auth_matrix import AUTH_ENV
from tests.support.auth import JWT_SECRET, bearer, hs256_token
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.gateway_process import GatewayProcess
from tests.support.server_process import ServerProcess, grpcurl
from tests.support.stripe_events import event_body, intent_object, signed_headers

API_KEY = "sk_test_logcheck_51Hx"
CARDS = ("4242424242424242", "4000 0566 5566 5556", "3782-822463-10005")


def usd(minor: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", minor_units=minor)


def refused(call: object) -> grpc.StatusCode:
    assert callable(call)
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code()


def test_nothing_secret_reaches_the_logs(tmp_path: Path, localstripe_url: str) -> None:
    env = {
        **AUTH_ENV,
        "PAYMENTS_PROVIDER": "stripe",
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_API_BASE": localstripe_url,
        "PAYMENTS_LOG_LEVEL": "DEBUG",
        "PAYMENTS_RATE_LIMIT_PER_SECOND": "50",
    }
    customer = hs256_token("user-logs")
    service = hs256_token("checkout", ("service",))
    admin = hs256_token("ops", ("admin",))
    forged = hs256_token("ops", ("admin",), secret="forged-secret-0123456789abcdef0123456")
    expired = hs256_token("user-logs", ttl=-300)
    secrets: list[str] = [JWT_SECRET, API_KEY, customer, service, admin, forged, expired]
    server = ServerProcess(tmp_path, env=env).start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            payments = payments_pb2_grpc.PaymentServiceStub(channel)
            methods = payment_methods_pb2_grpc.PaymentMethodServiceStub(channel)
            refunds = refunds_pb2_grpc.RefundServiceStub(channel)

            def create(n: int, token: str, **fields: object) -> payments_pb2.Payment:
                request = payments_pb2.CreatePaymentRequest(
                    request_id=f"logs-{n}",
                    order_id=f"logs-order-{n}",
                    user_id="user-logs",
                    amount=usd(1500),
                    **fields,  # type: ignore[arg-type]
                )
                reply: payments_pb2.Payment = payments.CreatePayment(
                    request, metadata=bearer(token), timeout=20
                )
                return reply

            # Client secrets go to the owner only: in the answer, or from GetPayment.
            owned = create(1, customer, payment_method_id="pm_card_visa", confirm=True)
            for_service = create(2, service, payment_method_id="pm_card_visa")
            by_admin = create(3, admin, payment_method_id="pm_card_visa")
            assert owned.client_secret
            assert not for_service.client_secret
            assert not by_admin.client_secret
            fetched = payments.GetPayment(
                payments_pb2.GetPaymentRequest(id=for_service.id),
                metadata=bearer(customer),
                timeout=20,
            ).client_secret
            assert fetched
            secrets += [owned.client_secret, fetched]
            # Card numbers in free text are refused and not echoed in the log.
            for n, card in enumerate(CARDS, start=10):
                assert (
                    refused(lambda c=card, n=n: create(n, customer, description=f"card {c}"))
                    is grpc.StatusCode.INVALID_ARGUMENT
                )
                assert (
                    refused(lambda c=card, n=n: create(n + 10, service, metadata={"pan": c}))
                    is grpc.StatusCode.INVALID_ARGUMENT
                )
            attach = payment_methods_pb2.AttachPaymentMethodRequest(
                request_id="logs-attach-1",
                provider_payment_method_id="pm_card_visa",
                billing_details=payment_methods_pb2.BillingDetails(name=f"A {CARDS[0]}"),
            )
            assert (
                refused(lambda: methods.AttachPaymentMethod(attach, metadata=bearer(customer)))
                is grpc.StatusCode.INVALID_ARGUMENT
            )
            # Bad tokens are refused without being repeated.
            for token in (forged, expired, "eyJhbGciOiJIUzI1NiJ9.garbage.sig"):
                assert refused(lambda t=token: create(40, t)) is grpc.StatusCode.UNAUTHENTICATED
            refunds.CreateRefund(
                refunds_pb2.CreateRefundRequest(
                    request_id="logs-refund-1", payment_id=owned.id, reason="returned"
                ),
                metadata=bearer(admin),
            )
            payments.GetPayment(
                payments_pb2.GetPaymentRequest(id=owned.id), metadata=bearer(customer)
            )
        # grpcurl with a token, as an operator would.
        listed = grpcurl(
            "-plaintext",
            "-H",
            f"authorization: Bearer {admin}",
            "-d",
            "{}",
            server.address,
            "payments.v1.PaymentService/ListPayments",
        )
        assert len(json.loads(listed.stdout)["payments"]) == 3
    finally:
        assert server.stop() == 0
    log = server.log
    # The log is really there, with every call and every refusal in it.
    assert "CreatePayment by https://sso.example.test/realms/shop|checkout (service)" in log
    assert "refused /payments.v1.PaymentService/CreatePayment: token expired" in log
    for secret in secrets:
        assert secret not in log
    assert "eyJ" not in log  # no JWT at all, not even a piece of one
    assert not re.search(r"_secret_|sk_test", log)
    assert not contains_card_number(log), [
        line for line in log.splitlines() if contains_card_number(line)
    ]


# Values a client sends that are payload, not identifiers: none may reach any log line.
MARKERS = {
    "description": "Descr-Marker-7c1f",
    "metadata": "Meta-Marker-51d0",
    "filter": "Filter-Marker-9a2b",
    "billing": "Billing.Marker.44e1@example.com",
    "webhook": "Webhook.Marker.e0f3@example.com",
    "address": "Street-Marker-2b8c",
}
WEBHOOK_SECRET = "whsec_logcheck_payloads"


def _webhook_bodies(payment_id: str) -> list[bytes]:
    """Events Stripe could sign that carry personal data, some of which cannot be applied."""
    billing = {"email": MARKERS["webhook"], "address": {"line1": MARKERS["address"]}}
    intent = intent_object(f"pi_{payment_id[-12:]}", "succeeded", payment_id=payment_id)
    intent["billing_details"] = billing
    bodies = [event_body("customer.updated", {"id": "cus_1", **billing})]
    bodies.append(event_body("payment_intent.succeeded", intent))
    nul_id = json.loads(event_body("payment_intent.succeeded", intent))
    nul_id["id"] = "evt_\x00" + MARKERS["webhook"]
    bodies.append(json.dumps(nul_id).encode())
    nul_object = json.loads(event_body("payment_intent.succeeded", intent))
    nul_object["data"]["object"]["id"] = "pi_\x00" + MARKERS["webhook"]
    bodies.append(json.dumps(nul_object).encode())
    wrong_amount = dict(intent, amount_received=MARKERS["webhook"])
    bodies.append(event_body("payment_intent.succeeded", wrong_amount))
    deep = b'{"id": "evt_deep", "type": "x", "email": "' + MARKERS["webhook"].encode() + b'", '
    bodies.append(deep + b'"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    return bodies


def test_no_payload_or_bound_parameter_reaches_the_logs_at_debug(tmp_path: Path) -> None:
    database = create_postgres_database("payments_logs")
    env = {
        "PAYMENTS_DATABASE_URL": database,
        "PAYMENTS_ENV": "test",
        "PAYMENTS_LOG_LEVEL": "DEBUG",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    server = ServerProcess(tmp_path, env=env).start()
    gateway = GatewayProcess(tmp_path, env=env).start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            payments = payments_pb2_grpc.PaymentServiceStub(channel)
            methods = payment_methods_pb2_grpc.PaymentMethodServiceStub(channel)
            paid = payments.CreatePayment(
                payments_pb2.CreatePaymentRequest(
                    request_id="payloads-1",
                    order_id="payloads-order-1",
                    user_id="user-payloads",
                    amount=usd(1500),
                    payment_method_id="pm_card_visa",
                    confirm=True,
                    description=MARKERS["description"],
                    metadata={"note": MARKERS["metadata"]},
                ),
                timeout=20,
            )
            methods.AttachPaymentMethod(
                payment_methods_pb2.AttachPaymentMethodRequest(
                    request_id="payloads-attach-1",
                    user_id="user-payloads",
                    provider_payment_method_id="pm_card_visa",
                    billing_details=payment_methods_pb2.BillingDetails(
                        email=MARKERS["billing"],
                        address=payment_methods_pb2.Address(line1=MARKERS["address"]),
                    ),
                ),
                timeout=20,
            )
            marker = MARKERS["filter"]
            for filter_text in (
                f'order_id = "{marker}"',
                f'user_id = "{marker}\x00"',
                f'create_time > "0001-01-01T00:00:00+14:00" AND order_id = "{marker}"',
            ):
                with contextlib.suppress(grpc.RpcError):
                    payments.ListPayments(
                        payments_pb2.ListPaymentsRequest(filter=filter_text), timeout=20
                    )
            garbage = channel.unary_unary(
                "/payments.v1.PaymentService/CreatePayment",
                request_serializer=lambda raw: raw,
                response_deserializer=lambda raw: raw,
            )
            assert (
                refused(lambda: garbage(b"\x0a\xff" + marker.encode(), timeout=20))
                is grpc.StatusCode.INVALID_ARGUMENT
            )
        for body in _webhook_bodies(paid.id):
            reply = httpx.post(
                f"{gateway.url}/webhooks/stripe",
                content=body,
                headers=signed_headers(body, WEBHOOK_SECRET),
                timeout=20,
            )
            assert reply.status_code == 200, reply.text
    finally:
        gateway_code, server_code = gateway.stop(), server.stop()
        drop_postgres_database(database)
    assert (gateway_code, server_code) == (0, 0), gateway.log + server.log
    assert '"level": "DEBUG"' in server.log  # really written at DEBUG
    assert "rejected" in gateway.log  # and the events that cannot be applied were handled
    for name, log in (("server", server.log), ("gateway", gateway.log)):
        for field, value in MARKERS.items():
            assert value not in log, f"{field} payload in the {name} log"
        assert "[parameters:" not in log, name
        assert "Traceback" not in log, name
