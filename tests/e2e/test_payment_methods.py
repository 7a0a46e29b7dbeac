"""Saved payment methods through a real server process: Python stubs, raw bytes and grpcurl."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from payments.v1 import (
    money_pb2,
    payment_methods_pb2,
    payment_methods_pb2_grpc,
    payments_pb2,
    payments_pb2_grpc,
)

from tests.support.server_process import ServerProcess, grpcurl

SERVICE = "payments.v1.PaymentMethodService"
Methods = payment_methods_pb2_grpc.PaymentMethodServiceStub
Payments = payments_pb2_grpc.PaymentServiceStub


@pytest.fixture(scope="module")
def channel(sqlite_server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(sqlite_server.address) as channel:
        yield channel


@pytest.fixture(scope="module")
def methods(channel: grpc.Channel) -> Methods:
    return payment_methods_pb2_grpc.PaymentMethodServiceStub(channel)


@pytest.fixture(scope="module")
def payments(channel: grpc.Channel) -> Payments:
    return payments_pb2_grpc.PaymentServiceStub(channel)


def new_user() -> str:
    return f"e2e-user-{uuid.uuid4().hex[:8]}"


def attach_request(
    user_id: str, **changes: object
) -> payment_methods_pb2.AttachPaymentMethodRequest:
    request = payment_methods_pb2.AttachPaymentMethodRequest(
        request_id=str(uuid.uuid4()),
        user_id=user_id,
        provider_payment_method_id="pm_card_visa",
        billing_details=payment_methods_pb2.BillingDetails(
            name="Ada Lovelace", address=payment_methods_pb2.Address(country="GB")
        ),
    )
    for name, value in changes.items():
        setattr(request, name, value)
    return request


def error_info(error: grpc.RpcError) -> tuple[error_details_pb2.ErrorInfo, list[str]]:
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
    assert len(infos) == 1
    assert infos[0].domain == "payments.v1"
    return infos[0], fields


def test_the_service_is_served_healthy_and_reflected(sqlite_server: ServerProcess) -> None:
    assert SERVICE in grpcurl("-plaintext", sqlite_server.address, "list").stdout.split()
    described = grpcurl("-plaintext", sqlite_server.address, "describe", SERVICE).stdout
    for rpc in ("Attach", "Get", "List", "Update", "Detach"):
        assert f"rpc {rpc}PaymentMethod" in described
    health = grpcurl(
        "-plaintext",
        "-d",
        json.dumps({"service": SERVICE}),
        sqlite_server.address,
        "grpc.health.v1.Health/Check",
    )
    assert json.loads(health.stdout) == {"status": "SERVING"}


def test_save_pay_update_and_detach_with_the_python_stubs(
    methods: Methods, payments: Payments
) -> None:
    user = new_user()
    visa = methods.AttachPaymentMethod(attach_request(user, set_default=True), timeout=10)
    assert visa.id.startswith("pmt_")
    assert visa.default
    assert visa.state == payment_methods_pb2.PAYMENT_METHOD_STATE_ATTACHED
    assert (visa.card.brand, visa.card.last4, visa.card.exp_year) == ("visa", "4242", 2030)
    assert (
        methods.GetPaymentMethod(
            payment_methods_pb2.GetPaymentMethodRequest(id=visa.id), timeout=10
        )
        == visa
    )

    payment = payments.CreatePayment(
        payments_pb2.CreatePaymentRequest(
            request_id=str(uuid.uuid4()),
            order_id=f"e2e-order-{uuid.uuid4().hex[:8]}",
            user_id=user,
            amount=money_pb2.Money(currency_code="USD", minor_units=1999),
            payment_method_id=visa.id,
            confirm=True,
        ),
        timeout=10,
    )
    assert payment.state == payments_pb2.PAYMENT_STATE_SUCCEEDED
    assert payment.payment_method_id == visa.id

    amex = methods.AttachPaymentMethod(
        attach_request(user, provider_payment_method_id="pm_card_amex"), timeout=10
    )
    changed = methods.UpdatePaymentMethod(
        payment_methods_pb2.UpdatePaymentMethodRequest(
            payment_method=payment_methods_pb2.PaymentMethod(
                id=amex.id,
                default=True,
                billing_details=payment_methods_pb2.BillingDetails(email="ada@example.com"),
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["default", "billing_details.email"]),
            request_id=str(uuid.uuid4()),
        ),
        timeout=10,
    )
    assert changed.default
    assert changed.billing_details.email == "ada@example.com"
    assert changed.billing_details.name == "Ada Lovelace"

    listed = methods.ListPaymentMethods(
        payment_methods_pb2.ListPaymentMethodsRequest(user_id=user, page_size=1), timeout=10
    )
    assert [m.id for m in listed.payment_methods] == [amex.id]
    rest = methods.ListPaymentMethods(
        payment_methods_pb2.ListPaymentMethodsRequest(
            user_id=user, page_size=1, page_token=listed.next_page_token
        ),
        timeout=10,
    )
    assert [(m.id, m.default) for m in rest.payment_methods] == [(visa.id, False)]
    assert rest.next_page_token == ""

    gone = methods.DetachPaymentMethod(
        payment_methods_pb2.DetachPaymentMethodRequest(id=amex.id), timeout=10
    )
    assert gone.state == payment_methods_pb2.PAYMENT_METHOD_STATE_DETACHED
    assert gone.HasField("detach_time")
    remaining = methods.ListPaymentMethods(
        payment_methods_pb2.ListPaymentMethodsRequest(user_id=user), timeout=10
    )
    assert [m.id for m in remaining.payment_methods] == [visa.id]


def test_a_retry_replays_the_same_bytes_with_the_trailer(channel: grpc.Channel) -> None:
    # No response deserializer: the test sees the bytes on the wire.
    call = channel.unary_unary(
        f"/{SERVICE}/AttachPaymentMethod",
        request_serializer=payment_methods_pb2.AttachPaymentMethodRequest.SerializeToString,
        response_deserializer=None,
    )
    request = attach_request(new_user(), set_default=True)
    first, first_call = call.with_call(request, timeout=10)
    again, again_call = call.with_call(request, timeout=10)
    assert isinstance(first, bytes)
    assert again == first
    assert ("idempotent-replayed", "true") not in tuple(first_call.trailing_metadata() or ())
    assert ("idempotent-replayed", "true") in tuple(again_call.trailing_metadata() or ())


def test_errors_are_rich_statuses(methods: Methods, payments: Payments) -> None:
    user = new_user()
    with pytest.raises(grpc.RpcError) as declined:
        methods.AttachPaymentMethod(
            attach_request(user, provider_payment_method_id="pm_card_visa_chargeDeclined"),
            timeout=10,
        )
    assert declined.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info, _ = error_info(declined.value)
    assert info.reason == "CARD_DECLINED"
    assert info.metadata["decline_code"] == "card_declined"

    with pytest.raises(grpc.RpcError) as unknown:
        methods.AttachPaymentMethod(
            attach_request(user, provider_payment_method_id="pm_card_unheardof"), timeout=10
        )
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(unknown.value)[1] == ["provider_payment_method_id"]

    with pytest.raises(grpc.RpcError) as missing:
        methods.GetPaymentMethod(
            payment_methods_pb2.GetPaymentMethodRequest(id="pmt_01JD0000000000000000000000"),
            timeout=10,
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(missing.value)[0].reason == "PAYMENT_METHOD_NOT_FOUND"

    theirs = methods.AttachPaymentMethod(attach_request(new_user()), timeout=10)
    with pytest.raises(grpc.RpcError) as foreign:
        payments.CreatePayment(
            payments_pb2.CreatePaymentRequest(
                request_id=str(uuid.uuid4()),
                order_id=f"e2e-order-{uuid.uuid4().hex[:8]}",
                user_id=user,
                amount=money_pb2.Money(currency_code="USD", minor_units=100),
                payment_method_id=theirs.id,
                confirm=True,
            ),
            timeout=10,
        )
    # Another user's method looks exactly like a missing one: no existence leak.
    assert foreign.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(foreign.value)[0].reason == "PAYMENT_METHOD_NOT_FOUND"

    with pytest.raises(grpc.RpcError) as bad_mask:
        methods.UpdatePaymentMethod(
            payment_methods_pb2.UpdatePaymentMethodRequest(
                payment_method=payment_methods_pb2.PaymentMethod(id=theirs.id),
                update_mask=field_mask_pb2.FieldMask(paths=["card.last4"]),
            ),
            timeout=10,
        )
    assert bad_mask.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(bad_mask.value)[1] == ["update_mask"]


def test_an_operator_saves_a_card_with_grpcurl(sqlite_server: ServerProcess) -> None:
    body = json.dumps(
        {
            "request_id": str(uuid.uuid4()),
            "user_id": new_user(),
            "provider_payment_method_id": "pm_card_mastercard",
            "set_default": True,
            "billing_details": {"name": "Grace Hopper", "address": {"country": "US"}},
        }
    )
    target = f"{SERVICE}/AttachPaymentMethod"
    first = grpcurl("-plaintext", "-v", "-d", body, sqlite_server.address, target).stdout
    again = grpcurl("-plaintext", "-v", "-d", body, sqlite_server.address, target).stdout
    assert "idempotent-replayed: true" not in first
    assert "idempotent-replayed: true" in again

    def method(out: str) -> dict[str, object]:
        text = out.split("Response contents:")[1].split("Response trailers")[0]
        parsed: dict[str, object] = json.loads(text)
        return parsed

    saved = method(first)
    assert saved == method(again)
    assert saved["card"] == {
        "brand": "mastercard",
        "last4": "4444",
        "exp_month": 12,
        "exp_year": 2030,
    }
    assert saved["default"] is True
    update = json.dumps(
        {
            "payment_method": {"id": saved["id"], "billing_details": {"phone": "+1 555 0100"}},
            "update_mask": {"paths": ["billing_details.phone"]},
        }
    )
    out = grpcurl(
        "-plaintext", "-d", update, sqlite_server.address, f"{SERVICE}/UpdatePaymentMethod"
    )
    updated = json.loads(out.stdout)
    assert updated["billing_details"] == {
        "name": "Grace Hopper",
        "phone": "+1 555 0100",
        "address": {"country": "US"},
    }
