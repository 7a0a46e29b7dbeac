"""A real server verifying Keycloak-shaped RS256 and ES256 tokens against a JWKS URL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from payments.v1 import money_pb2, payments_pb2, payments_pb2_grpc

from tests.support.auth import AUDIENCE, ISSUER, PAGE_TOKEN_KEY, JwksServer, SigningKey, bearer
from tests.support.server_process import ServerProcess

KEYS = [SigningKey("RS256"), SigningKey("ES256")]


@pytest.fixture(scope="module")
def stub(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[payments_pb2_grpc.PaymentServiceStub]:
    with JwksServer(KEYS) as jwks:
        env = {
            "PAYMENTS_DATABASE_URL": "",
            "PAYMENTS_ENV": "production",
            "PAYMENTS_PAGE_TOKEN_KEY": PAGE_TOKEN_KEY,
            "PAYMENTS_AUTH_JWKS_URL": jwks.url,
            "PAYMENTS_AUTH_ISSUER": ISSUER,
            "PAYMENTS_AUTH_AUDIENCE": AUDIENCE,
        }
        server = ServerProcess(tmp_path_factory.mktemp("keycloak"), env=env).start()
        with grpc.insecure_channel(server.address) as channel:
            yield payments_pb2_grpc.PaymentServiceStub(channel)
        assert server.stop() == 0, server.log


@pytest.mark.parametrize("key", KEYS, ids=lambda key: key.algorithm)
def test_keycloak_customer_and_admin_tokens(
    stub: payments_pb2_grpc.PaymentServiceStub, key: SigningKey
) -> None:
    subject = str(uuid.uuid4())  # Keycloak's sub is the user's UUID
    created = stub.CreatePayment(
        payments_pb2.CreatePaymentRequest(
            request_id=f"kc-{subject}",
            order_id=f"kc-order-{subject}",
            amount=money_pb2.Money(currency_code="EUR", minor_units=990),
        ),
        metadata=bearer(key.keycloak_token(subject)),
    )
    assert created.user_id == subject
    listed = stub.ListPayments(
        payments_pb2.ListPaymentsRequest(filter=f'user_id = "{subject}"'),
        metadata=bearer(key.keycloak_token("ops-uuid", ("admin",))),
    )
    assert [p.id for p in listed.payments] == [created.id]
    with pytest.raises(grpc.RpcError) as denied:
        stub.ListPayments(
            payments_pb2.ListPaymentsRequest(),
            metadata=bearer(key.keycloak_token("svc", ("service",))),
        )
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    "token",
    [
        KEYS[0].keycloak_token("u", issuer="https://sso.example.test/realms/other"),
        KEYS[1].keycloak_token("u", audience="another-api"),
        KEYS[0].keycloak_token("u", ttl=-300),
        SigningKey("ES256").keycloak_token("u"),
    ],
    ids=["other-realm", "other-audience", "expired", "unknown-key"],
)
def test_tokens_the_server_must_not_trust(
    stub: payments_pb2_grpc.PaymentServiceStub, token: str
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        stub.ListPayments(payments_pb2.ListPaymentsRequest(), metadata=bearer(token))
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
