"""The mock provider remembers across a SIGKILL, so crash recovery is tested without Stripe."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from payments.v1 import money_pb2, payments_pb2, payments_pb2_grpc

from server.adapters.providers.mock_store import MockStore
from tests.support.server_process import ServerProcess


def mock_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PAYMENTS_DATABASE_URL": "",
        "PAYMENTS_ENV": "test",
        "PAYMENTS_MOCK_STORE": str(tmp_path / "mock.sqlite"),
        "PAYMENTS_IDEMPOTENCY_LEASE_SECONDS": "1",
        **extra,
    }


REQUEST = payments_pb2.CreatePaymentRequest(
    request_id="crash-1",
    order_id="crash-order-1",
    user_id="user-1",
    amount=money_pb2.Money(currency_code="USD", minor_units=2500),
    payment_method_id="pm_card_visa",
    confirm=True,
)


def retry_until_answered(stub: payments_pb2_grpc.PaymentServiceStub) -> payments_pb2.Payment:
    """Retry as callers are told to: ABORTED while the dead attempt's 1 s lease runs out."""
    deadline = time.monotonic() + 30
    while True:
        try:
            reply: payments_pb2.Payment = stub.CreatePayment(REQUEST, timeout=10)
            return reply
        except grpc.RpcError as error:
            if error.code() is not grpc.StatusCode.ABORTED or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_retry_after_sigkill_finds_the_charge_at_the_mock(tmp_path: Path) -> None:
    doomed = ServerProcess(
        tmp_path, mock_env(tmp_path, PAYMENTS_TEST_CRASH_AT="after_provider_call")
    ).start()
    with grpc.insecure_channel(doomed.address) as channel:
        stub = payments_pb2_grpc.PaymentServiceStub(channel)
        with pytest.raises(grpc.RpcError) as cut:
            stub.CreatePayment(REQUEST, timeout=20)
    assert cut.value.code() == grpc.StatusCode.UNAVAILABLE
    assert doomed.wait() == -9

    server = ServerProcess(tmp_path, mock_env(tmp_path)).start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = payments_pb2_grpc.PaymentServiceStub(channel)
            retried = retry_until_answered(stub)
    finally:
        assert server.stop() == 0
    assert retried.state == payments_pb2.PAYMENT_STATE_SUCCEEDED
    movements = MockStore(tmp_path / "mock.sqlite").movements()
    assert [kind for kind, _, _ in movements] == ["charge"], "charged exactly once"
