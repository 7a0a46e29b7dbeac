"""Modes: production refuses to start open and has no SimulatePayment; development warns;
rate limits answer RESOURCE_EXHAUSTED with RetryInfo, per principal, in process or in Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from payments.v1 import money_pb2, payments_pb2, payments_pb2_grpc

from tests.e2e.test_auth_matrix import AUTH_ENV
from tests.support.auth import PAGE_TOKEN_KEY, bearer, hs256_token
from tests.support.server_process import ServerProcess

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_production_refuses_to_start_without_auth(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path, env={"PAYMENTS_DATABASE_URL": "", "PAYMENTS_ENV": "production"}
    )
    server.start(wait=False)
    assert server.wait() == 2
    assert "PAYMENTS_ENV=production refuses to start without authentication" in server.log


def test_a_short_jwt_secret_is_refused(tmp_path: Path) -> None:
    env = {**AUTH_ENV, "PAYMENTS_AUTH_JWT_SECRET": "short"}
    server = ServerProcess(tmp_path, env=env).start(wait=False)
    assert server.wait() == 2
    assert "at least 32 bytes" in server.log
    assert "short" not in server.log.replace("at least", "")


def test_development_without_auth_warns_loudly(sqlite_server: ServerProcess) -> None:
    assert "AUTHENTICATION IS OFF" in sqlite_server.log


def test_the_jwt_secret_can_come_from_a_file_and_production_has_no_simulation(
    tmp_path: Path,
) -> None:
    secret_file = tmp_path / "jwt-secret"
    secret_file.write_text(AUTH_ENV["PAYMENTS_AUTH_JWT_SECRET"] + "\n")
    env = {
        **{k: v for k, v in AUTH_ENV.items() if k != "PAYMENTS_AUTH_JWT_SECRET"},
        "PAYMENTS_ENV": "production",
        "PAYMENTS_AUTH_JWT_SECRET_FILE": str(secret_file),
        "PAYMENTS_PAGE_TOKEN_KEY": PAGE_TOKEN_KEY,
    }
    server = ServerProcess(tmp_path, env=env).start()
    try:
        admin = bearer(hs256_token("ops", ("admin",)))
        with grpc.insecure_channel(server.address) as channel:
            stub = payments_pb2_grpc.PaymentServiceStub(channel)
            listed = stub.ListPayments(payments_pb2.ListPaymentsRequest(), metadata=admin)
            assert list(listed.payments) == []
            with pytest.raises(grpc.RpcError) as missing:
                stub.SimulatePayment(
                    payments_pb2.SimulatePaymentRequest(id="pay_x", request_id="s-1"),
                    metadata=admin,
                )
            assert missing.value.code() is grpc.StatusCode.UNIMPLEMENTED
    finally:
        assert server.stop() == 0, server.log


def limited_env(redis: bool) -> dict[str, str]:
    env = {
        **AUTH_ENV,
        # 2 at once, then one per 100 s: the third call in a row is always refused.
        "PAYMENTS_RATE_LIMIT_PER_SECOND": "0.01",
        "PAYMENTS_RATE_LIMIT_BURST": "2",
    }
    if redis:
        env["PAYMENTS_REDIS_URL"] = REDIS_URL
    return env


@pytest.fixture(params=["in-process", "redis"])
def limited_servers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[list[ServerProcess]]:
    """One server in process mode; two sharing Redis (and a database) in Redis mode."""
    redis = request.param == "redis"
    env = {**limited_env(redis), "PAYMENTS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/p.db"}
    servers = [ServerProcess(tmp_path, env=env).start() for _ in range(2 if redis else 1)]
    yield servers
    for server in servers:
        assert server.stop() == 0, server.log


def create(channel: grpc.Channel, caller: str, n: int) -> payments_pb2.Payment:
    stub = payments_pb2_grpc.PaymentServiceStub(channel)
    request = payments_pb2.CreatePaymentRequest(
        request_id=f"{caller}-{n}",
        order_id=f"{caller}-order-{n}",
        amount=money_pb2.Money(currency_code="USD", minor_units=100),
    )
    return stub.CreatePayment(request, metadata=bearer(hs256_token(caller)), timeout=15)


def test_rate_limits_answer_resource_exhausted_with_retry_info(
    limited_servers: list[ServerProcess],
) -> None:
    caller, other = f"user-{uuid.uuid4().hex[:8]}", f"user-{uuid.uuid4().hex[:8]}"
    channels = [grpc.insecure_channel(server.address) for server in limited_servers]
    try:
        first = create(channels[0], caller, 1)
        create(channels[-1], caller, 2)  # the other instance, in Redis mode
        for channel in channels:
            with pytest.raises(grpc.RpcError) as refused:
                create(channel, caller, 3)
            error = refused.value
            assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            status = rpc_status.from_call(error)  # type: ignore[arg-type]
            assert status is not None
            retry = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
            assert len(retry) == 1
            info = error_details_pb2.RetryInfo()
            retry[0].Unpack(info)
            assert 0 < info.retry_delay.ToTimedelta().total_seconds() <= 100
            reasons = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
            assert len(reasons) == 1
        # Reads are not limited, and other callers have buckets of their own.
        stub = payments_pb2_grpc.PaymentServiceStub(channels[0])
        again = stub.GetPayment(
            payments_pb2.GetPaymentRequest(id=first.id), metadata=bearer(hs256_token(caller))
        )
        assert again.id == first.id
        assert create(channels[0], other, 1).user_id == other
    finally:
        for channel in channels:
            channel.close()
