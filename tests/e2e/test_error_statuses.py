"""Every failure is a clear status with one ErrorInfo, never UNKNOWN or INTERNAL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from functools import partial

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payments.v1 import money_pb2, payments_pb2, payments_pb2_grpc

from tests.support.server_process import ServerProcess

Stub = payments_pb2_grpc.PaymentServiceStub


@pytest.fixture(scope="module")
def stub(sqlite_server: ServerProcess) -> Iterator[Stub]:
    with grpc.insecure_channel(sqlite_server.address) as channel:
        yield payments_pb2_grpc.PaymentServiceStub(channel)


def details(error: grpc.RpcError) -> tuple[error_details_pb2.ErrorInfo, list[str]]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert isinstance(status, status_pb2.Status)
    infos, fields = [], []
    for item in status.details:
        if item.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            item.Unpack(info)
            infos.append(info)
        elif item.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            item.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    assert len(infos) == 1, "exactly one ErrorInfo"
    assert infos[0].domain == "payments.v1"
    return infos[0], fields


def expect(
    call: Callable[[], object], code: grpc.StatusCode, reason: str, fields: set[str] | None = None
) -> error_details_pb2.ErrorInfo:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    error = raised.value
    assert error.code() == code, error.details()
    info, found = details(error)
    assert info.reason == reason
    if fields is not None:
        assert set(found) == fields
    return info


def create_request(**changes: object) -> payments_pb2.CreatePaymentRequest:
    request = payments_pb2.CreatePaymentRequest(
        request_id=str(uuid.uuid4()),
        order_id=f"o-{uuid.uuid4().hex[:8]}",
        user_id="u-1",
        amount=money_pb2.Money(currency_code="JPY", minor_units=500),
        payment_method_id="pm_card_visa",
        confirm=True,
    )
    for name, value in changes.items():
        if isinstance(value, money_pb2.Money):
            request.amount.CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


INVALID = grpc.StatusCode.INVALID_ARGUMENT


def test_validation_errors_name_their_fields(stub: Stub) -> None:
    cases = [
        (
            create_request(amount=money_pb2.Money(currency_code="XXX", minor_units=5)),
            {"amount.currency_code"},
        ),
        (
            create_request(amount=money_pb2.Money(currency_code="USD", minor_units=-1)),
            {"amount.minor_units"},
        ),
        (
            create_request(amount=money_pb2.Money(currency_code="USD", minor_units=2**63 - 1)),
            {"amount.minor_units"},
        ),
        (create_request(request_id=""), {"request_id"}),
        (create_request(order_id="has space"), {"order_id"}),
        (create_request(payment_method_id="visa"), {"payment_method_id"}),
        (create_request(capture_method=7), {"capture_method"}),
    ]
    for request, fields in cases:
        expect(partial(stub.CreatePayment, request), INVALID, "INVALID_ARGUMENT", fields)
    no_amount = create_request()
    no_amount.ClearField("amount")
    expect(lambda: stub.CreatePayment(no_amount), INVALID, "INVALID_ARGUMENT", {"amount"})


def test_malformed_ids_and_list_parameters(stub: Stub) -> None:
    for bad_id in ("", "pay_123", "ord_01JD0000000000000000000000", "x" * 500):
        expect(
            partial(stub.GetPayment, payments_pb2.GetPaymentRequest(id=bad_id)),
            INVALID,
            "INVALID_ARGUMENT",
            {"id"},
        )
    for request, field in [
        (payments_pb2.ListPaymentsRequest(page_size=-1), "page_size"),
        (payments_pb2.ListPaymentsRequest(filter="amount > 3"), "filter"),
        (payments_pb2.ListPaymentsRequest(filter='state = "LOST"'), "filter"),
        (payments_pb2.ListPaymentsRequest(filter='create_time > "yesterday"'), "filter"),
        (payments_pb2.ListPaymentsRequest(order_by="user_id"), "order_by"),
    ]:
        expect(partial(stub.ListPayments, request), INVALID, "INVALID_ARGUMENT", {field})
    expect(
        lambda: stub.ListPayments(payments_pb2.ListPaymentsRequest(page_token="bm9wZQ")),
        INVALID,
        "INVALID_PAGE_TOKEN",
        {"page_token"},
    )


def test_conflicts_and_states(stub: Stub) -> None:
    request = create_request(confirm=False)
    first = stub.CreatePayment(request)
    reused = create_request(request_id=request.request_id, order_id="other-order")
    expect(lambda: stub.CreatePayment(reused), INVALID, "IDEMPOTENCY_KEY_REUSED")
    second = create_request(order_id=request.order_id)
    info = expect(
        lambda: stub.CreatePayment(second), grpc.StatusCode.ALREADY_EXISTS, "ORDER_HAS_LIVE_PAYMENT"
    )
    assert info.metadata["payment_id"] == first.id
    expect(
        lambda: stub.CapturePayment(payments_pb2.CapturePaymentRequest(id=first.id)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_PAYMENT_STATE",
    )
    expect(
        lambda: stub.GetPayment(
            payments_pb2.GetPaymentRequest(id="pay_01JD0000000000000000000000")
        ),
        grpc.StatusCode.NOT_FOUND,
        "PAYMENT_NOT_FOUND",
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    request_id=st.text(max_size=300),
    order_id=st.text(max_size=300),
    currency=st.text(max_size=5),
    minor_units=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    method=st.text(max_size=30),
    description=st.text(max_size=1200),
)
def test_arbitrary_create_requests_never_fail_as_unknown_or_internal(
    stub: Stub,
    request_id: str,
    order_id: str,
    currency: str,
    minor_units: int,
    method: str,
    description: str,
) -> None:
    user_id = f"fuzz-{uuid.uuid4().hex}"
    request = payments_pb2.CreatePaymentRequest(
        request_id=request_id,
        order_id=order_id,
        user_id=user_id,
        amount=money_pb2.Money(currency_code=currency, minor_units=minor_units),
        payment_method_id=method,
        description=description,
    )
    try:
        stub.CreatePayment(request, timeout=10)
    except grpc.RpcError as error:
        failure = error
    else:
        return
    assert failure.code() in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS}
    details(failure)
    # A refused request changed nothing.
    listed = stub.ListPayments(
        payments_pb2.ListPaymentsRequest(filter=f'user_id = "{user_id}"'), timeout=10
    )
    assert list(listed.payments) == []
