"""client_secret reaches the payment's owner only, with Stripe (localstripe) and HS256 auth.

A checkout service creates a payment that needs 3-D Secure: its answer carries no
secret; the customer's own GetPayment fetches it while the payment waits for them;
another customer and an admin never see it.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from payments.v1 import money_pb2, payments_pb2, payments_pb2_grpc

from tests.support.auth import AUDIENCE, ISSUER, JWT_SECRET, bearer, hs256_token
from tests.support.localstripe import LocalStripe
from tests.support.server_process import ServerProcess

API_KEY = "sk_test_client_secret_e2e"
THREE_D_SECURE_CARD = "4000002500003155"
CUSTOMER_A = bearer(hs256_token("user-a"))
CUSTOMER_B = bearer(hs256_token("user-b"))
SERVICE = bearer(hs256_token("checkout", ("service",)))
ADMIN = bearer(hs256_token("ops", ("admin",)))


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    fake = LocalStripe(tmp_path_factory.mktemp("localstripe")).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake: LocalStripe) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("client-secret")
    server = ServerProcess(
        folder,
        env={
            "PAYMENTS_DATABASE_URL": "",
            "PAYMENTS_ENV": "test",
            "PAYMENTS_PROVIDER": "stripe",
            "STRIPE_API_KEY": API_KEY,
            "STRIPE_API_BASE": fake.url,
            "PAYMENTS_AUTH_JWT_SECRET": JWT_SECRET,
            "PAYMENTS_AUTH_ISSUER": ISSUER,
            "PAYMENTS_AUTH_AUDIENCE": AUDIENCE,
        },
    ).start()
    yield server
    assert server.stop() == 0, server.log


def three_d_secure_card(fake: LocalStripe) -> str:
    return fake.card_method(API_KEY, THREE_D_SECURE_CARD)


def create(
    stub: payments_pb2_grpc.PaymentServiceStub,
    caller: tuple[tuple[str, str], ...],
    n: int,
    method: str,
) -> payments_pb2.Payment:
    reply: payments_pb2.Payment = stub.CreatePayment(
        payments_pb2.CreatePaymentRequest(
            request_id=f"secret-{n}",
            order_id=f"secret-order-{n}",
            user_id="user-a",
            amount=money_pb2.Money(currency_code="EUR", minor_units=1999),
            payment_method_id=method,
            confirm=True,
        ),
        metadata=caller,
        timeout=15,
    )
    return reply


def get(
    stub: payments_pb2_grpc.PaymentServiceStub,
    caller: tuple[tuple[str, str], ...],
    payment_id: str,
) -> payments_pb2.Payment:
    reply: payments_pb2.Payment = stub.GetPayment(
        payments_pb2.GetPaymentRequest(id=payment_id), metadata=caller, timeout=15
    )
    return reply


def test_only_the_owner_gets_the_client_secret(server: ServerProcess, fake: LocalStripe) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = payments_pb2_grpc.PaymentServiceStub(channel)
        by_service = create(stub, SERVICE, 1, three_d_secure_card(fake))
        assert by_service.state == payments_pb2.PAYMENT_STATE_REQUIRES_ACTION
        assert by_service.client_secret == ""

        for_owner = get(stub, CUSTOMER_A, by_service.id)
        assert for_owner.client_secret.startswith(by_service.provider_payment_id + "_secret_")
        assert get(stub, ADMIN, by_service.id).client_secret == ""
        assert get(stub, SERVICE, by_service.id).client_secret == ""
        with pytest.raises(grpc.RpcError) as other:
            get(stub, CUSTOMER_B, by_service.id)
        assert other.value.code() == grpc.StatusCode.NOT_FOUND

        by_owner = create(stub, CUSTOMER_A, 2, three_d_secure_card(fake))
        assert by_owner.client_secret.startswith(by_owner.provider_payment_id + "_secret_")


def test_a_settled_payment_gives_no_secret_even_to_its_owner(
    server: ServerProcess, fake: LocalStripe
) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = payments_pb2_grpc.PaymentServiceStub(channel)
        paid = create(stub, SERVICE, 3, "pm_card_visa")
        assert paid.state == payments_pb2.PAYMENT_STATE_SUCCEEDED
        assert get(stub, CUSTOMER_A, paid.id).client_secret == ""
