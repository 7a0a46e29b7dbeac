"""Outages map to UNAVAILABLE or ABORTED with one ErrorInfo and a RetryInfo, never INTERNAL."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from server.domain import errors
from server.grpc.errors import ERROR_DOMAIN, status_for


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        (errors.DatabaseUnavailable("down"), grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE"),
        (errors.TransactionConflict("40001"), grpc.StatusCode.ABORTED, "TRANSACTION_CONFLICT"),
        (errors.ProviderUnavailable("down"), grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE"),
        (errors.IdempotencyKeyInUse("busy"), grpc.StatusCode.ABORTED, "IDEMPOTENCY_KEY_IN_USE"),
    ],
)
def test_an_outage_is_retryable_with_a_delay(
    error: errors.DomainError, code: grpc.StatusCode, reason: str
) -> None:
    status = status_for(error)
    assert status.code == code.value[0]
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    assert (info.reason, info.domain) == (reason, ERROR_DOMAIN)
    retries = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    assert len(retries) == 1
    retry = error_details_pb2.RetryInfo()
    retries[0].Unpack(retry)
    assert retry.retry_delay.ToNanoseconds() > 0
