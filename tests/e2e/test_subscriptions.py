"""SubscriptionService through a real server process, driven by grpcurl as an operator would."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payments.v1 import money_pb2
from payments.v1 import subscriptions_pb2 as pb
from payments.v1 import subscriptions_pb2_grpc as pb_grpc

from tests.support.server_process import ServerProcess, grpcurl

SERVICE = "payments.v1.SubscriptionService"


def call(server: ServerProcess, method: str, body: dict[str, Any]) -> dict[str, Any]:
    out = grpcurl("-plaintext", "-d", json.dumps(body), server.address, method)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_create_a_plan_subscribe_and_read_it_back(sqlite_server: ServerProcess) -> None:
    address = sqlite_server.address
    assert SERVICE in grpcurl("-plaintext", address, "list").stdout.split()
    health = grpcurl(
        "-plaintext", "-d", json.dumps({"service": SERVICE}), address, "grpc.health.v1.Health/Check"
    ).stdout
    assert "SERVING" in health
    n = uuid.uuid4().hex[:8]
    plan = call(
        sqlite_server,
        f"{SERVICE}/CreatePlan",
        {
            "request_id": f"e2e-plan-{n}",
            "name": "Premium monthly",
            "price": {"currency_code": "EUR", "minor_units": 990},
            "interval": "PLAN_INTERVAL_MONTH",
            "interval_count": 1,
        },
    )
    assert plan["id"].startswith("pln_")
    assert plan["state"] == "PLAN_STATE_ACTIVE"
    method = call(
        sqlite_server,
        "payments.v1.PaymentMethodService/AttachPaymentMethod",
        {
            "request_id": f"e2e-card-{n}",
            "user_id": f"user-{n}",
            "provider_payment_method_id": "pm_card_visa",
        },
    )
    body = json.dumps(
        {
            "request_id": f"e2e-sub-{n}",
            "user_id": f"user-{n}",
            "plan_id": plan["id"],
            "payment_method_id": method["id"],
        }
    )
    target = f"{SERVICE}/CreateSubscription"
    first = grpcurl("-plaintext", "-v", "-d", body, address, target).stdout
    again = grpcurl("-plaintext", "-v", "-d", body, address, target).stdout
    assert "idempotent-replayed" not in first
    assert "idempotent-replayed: true" in again
    created = json.loads(first.split("Response contents:")[1].split("Response trailers")[0])
    assert created["state"] == "SUBSCRIPTION_STATE_ACTIVE"
    assert created["latest_payment_id"].startswith("pay_")
    got = call(sqlite_server, f"{SERVICE}/GetSubscription", {"id": created["id"]})
    assert got == created
    payment = call(
        sqlite_server, "payments.v1.PaymentService/GetPayment", {"id": got["latest_payment_id"]}
    )
    assert payment["state"] == "PAYMENT_STATE_SUCCEEDED"
    assert payment["order_id"] == f"{created['id']}:renewal:{created['current_period_start'][:19]}Z"


def test_bad_and_unknown_requests_get_precise_statuses(sqlite_server: ServerProcess) -> None:
    address = sqlite_server.address
    bad = grpcurl(
        "-plaintext",
        "-d",
        json.dumps({"request_id": "e2e-bad-sub", "plan_id": "nope"}),
        address,
        f"{SERVICE}/CreateSubscription",
        check=False,
    )
    assert bad.returncode != 0
    assert "InvalidArgument" in bad.stderr
    for field in ("user_id", "plan_id", "payment_method_id"):
        assert field in bad.stderr
    unknown = grpcurl(
        "-plaintext",
        "-d",
        json.dumps({"id": "sub_01JD0000000000000000000000"}),
        address,
        f"{SERVICE}/GetSubscription",
        check=False,
    )
    assert "NotFound" in unknown.stderr
    assert "SUBSCRIPTION_NOT_FOUND" in unknown.stderr


def one_error_info(error: grpc.RpcError) -> tuple[str, list[str]]:
    """The single ErrorInfo's reason and the BadRequest fields of a failed call."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert isinstance(status, status_pb2.Status)
    reasons, fields = [], []
    for item in status.details:
        if item.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            item.Unpack(info)
            assert info.domain == "payments.v1"
            reasons.append(info.reason)
        elif item.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            item.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    assert len(reasons) == 1, "exactly one ErrorInfo"
    return reasons[0], fields


@pytest.fixture(scope="module")
def stub(sqlite_server: ServerProcess) -> Iterator[pb_grpc.SubscriptionServiceStub]:
    with grpc.insecure_channel(sqlite_server.address) as channel:
        yield pb_grpc.SubscriptionServiceStub(channel)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(max_size=220),
    currency=st.text(max_size=4),
    minor_units=st.integers(-(2**63), 2**63 - 1),
    interval=st.integers(-1, 6),
    interval_count=st.integers(-(2**31), 2**31 - 1),
    trial_days=st.integers(-(2**31), 2**31 - 1),
)
def test_arbitrary_plans_are_created_or_refused_with_their_fields_named(
    stub: pb_grpc.SubscriptionServiceStub,
    name: str,
    currency: str,
    minor_units: int,
    interval: int,
    interval_count: int,
    trial_days: int,
) -> None:
    request = pb.CreatePlanRequest(
        request_id=f"fuzz-{uuid.uuid4().hex}",
        name=name,
        price=money_pb2.Money(currency_code=currency, minor_units=minor_units),
        interval=interval,  # type: ignore[arg-type]
        interval_count=interval_count,
        trial_days=trial_days,
    )
    try:
        created = stub.CreatePlan(request, timeout=10)
    except grpc.RpcError as error:
        failure = error
    else:
        assert created.name == name
        return
    assert failure.code() == grpc.StatusCode.INVALID_ARGUMENT, failure.details()
    reason, fields = one_error_info(failure)
    assert reason == "INVALID_ARGUMENT"
    assert fields


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    user_id=st.text(max_size=260),
    plan_id=st.text(max_size=40),
    method=st.text(max_size=40),
    trial_days=st.none() | st.integers(-(2**31), 2**31 - 1),
)
def test_arbitrary_subscriptions_never_fail_as_unknown_or_internal(
    stub: pb_grpc.SubscriptionServiceStub,
    user_id: str,
    plan_id: str,
    method: str,
    trial_days: int | None,
) -> None:
    request = pb.CreateSubscriptionRequest(
        request_id=f"fuzz-{uuid.uuid4().hex}",
        user_id=user_id,
        plan_id=plan_id,
        payment_method_id=method,
        trial_days=trial_days,
    )
    with pytest.raises(grpc.RpcError) as raised:
        stub.CreateSubscription(request, timeout=10)
    assert raised.value.code() in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
    one_error_info(raised.value)
