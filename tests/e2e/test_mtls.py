"""Mutual TLS: a real server with a certificate and a client CA refuses clients without a
certificate from that CA, and serves those with one (tokens are still checked)."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from payments.v1 import payments_pb2, payments_pb2_grpc

from tests.e2e.test_auth_matrix import AUTH_ENV
from tests.support.auth import bearer, hs256_token
from tests.support.server_process import ServerProcess

Pem = tuple[bytes, bytes]  # certificate, private key


def issue(
    name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, usage: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=usage == "ca", path_length=None), critical=True)
    )
    if usage == "server":
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif usage == "client":
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    signer = issuer[1] if issuer else key
    return builder.sign(signer, hashes.SHA256()), key


def pem(pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> Pem:
    cert, key = pair
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


class TlsServer(ServerProcess):
    def __init__(self, cwd: Path, env: dict[str, str], ca: bytes, client: Pem) -> None:
        super().__init__(cwd, env=env)
        self.credentials = grpc.ssl_channel_credentials(ca, client[1], client[0])

    def ready(self) -> bool:
        with grpc.secure_channel(self.address, self.credentials) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=0.5
                )
            except grpc.RpcError:
                return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture(scope="module")
def pki() -> dict[str, Pem]:
    ca = issue("payments test CA", None, "ca")
    stranger_ca = issue("someone else's CA", None, "ca")
    return {
        "ca": pem(ca),
        "server": pem(issue("payments", ca, "server")),
        "client": pem(issue("checkout", ca, "client")),
        "stranger": pem(issue("checkout", stranger_ca, "client")),
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Pem]) -> Iterator[TlsServer]:
    folder = tmp_path_factory.mktemp("mtls")
    files = {}
    for name, content in (
        ("server.pem", pki["server"][0]),
        ("server.key", pki["server"][1]),
        ("ca.pem", pki["ca"][0]),
    ):
        (folder / name).write_bytes(content)
        files[name] = str(folder / name)
    env = {
        **AUTH_ENV,
        "PAYMENTS_TLS_CERT_FILE": files["server.pem"],
        "PAYMENTS_TLS_KEY_FILE": files["server.key"],
        "PAYMENTS_TLS_CLIENT_CA_FILE": files["ca.pem"],
    }
    server = TlsServer(folder, env, pki["ca"][0], pki["client"]).start()
    yield server
    assert server.stop() == 0, server.log


def list_payments(channel: grpc.Channel) -> int:
    stub = payments_pb2_grpc.PaymentServiceStub(channel)
    reply = stub.ListPayments(
        payments_pb2.ListPaymentsRequest(),
        metadata=bearer(hs256_token("ops", ("admin",))),
        timeout=5,
    )
    return len(reply.payments)


def test_a_client_with_a_certificate_from_the_ca_is_served(
    server: TlsServer, pki: dict[str, Pem]
) -> None:
    with grpc.secure_channel(server.address, server.credentials) as channel:
        assert list_payments(channel) == 0


@pytest.mark.parametrize("client", [None, "stranger"])
def test_a_client_without_a_good_certificate_is_refused(
    server: TlsServer, pki: dict[str, Pem], client: str | None
) -> None:
    cert, key = pki[client] if client else (None, None)
    credentials = grpc.ssl_channel_credentials(pki["ca"][0], key, cert)
    with (
        grpc.secure_channel(server.address, credentials) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        list_payments(channel)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


def test_plaintext_is_refused(server: TlsServer) -> None:
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as refused:
        list_payments(channel)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
