"""Who may do what, through a real server with HS256 auth: every RPC x every kind of caller.

The table below must name every method the server offers (read by reflection), so a new
RPC cannot ship without saying who may call it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, field_mask_pb2, message, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status
from payments.v1 import (
    analytics_pb2,
    audit_pb2,
    money_pb2,
    payment_methods_pb2,
    payments_pb2,
    receipts_pb2,
    refunds_pb2,
    subscriptions_pb2,
)

from tests.support.auth import AUDIENCE, ISSUER, JWT_SECRET, bearer, hs256_token
from tests.support.server_process import ServerProcess

Code = grpc.StatusCode
OK, PD, NF, UNAUTH = Code.OK, Code.PERMISSION_DENIED, Code.NOT_FOUND, Code.UNAUTHENTICATED
AUTH_ENV = {
    "PAYMENTS_DATABASE_URL": "",
    "PAYMENTS_ENV": "test",
    "PAYMENTS_AUTH_JWT_SECRET": JWT_SECRET,
    "PAYMENTS_AUTH_ISSUER": ISSUER,
    "PAYMENTS_AUTH_AUDIENCE": AUDIENCE,
}
CALLERS: dict[str, Callable[[], tuple[tuple[str, str], ...]]] = {
    "no token": lambda: (),
    "bad token": lambda: bearer(hs256_token("user-a", secret="not-the-server-secret-0123456789ab")),
    "expired token": lambda: bearer(hs256_token("user-a", ttl=-300)),
    "customer A": lambda: bearer(hs256_token("user-a")),
    "customer B": lambda: bearer(hs256_token("user-b")),
    "service": lambda: bearer(hs256_token("checkout", ("service",))),
    "admin": lambda: bearer(hs256_token("ops", ("admin",))),
}
ADMIN = CALLERS["admin"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("auth"), env=AUTH_ENV).start()
    yield server
    assert server.stop() == 0, server.log


def usd(minor: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", minor_units=minor)


@dataclass
class World:
    """Customer A's payments, refunds and saved methods, made fresh where a call uses one up."""

    channel: grpc.Channel
    counter: Iterator[int] = field(default_factory=itertools.count)

    def call(
        self, method: str, request: message.Message, metadata: tuple[tuple[str, str], ...]
    ) -> tuple[Code, Any, grpc.RpcError | None]:
        response_type = RESPONSES[method]
        rpc = self.channel.unary_unary(
            f"/payments.v1.{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_type.FromString,
        )
        try:
            return OK, rpc(request, metadata=metadata, timeout=15), None
        except grpc.RpcError as error:
            return error.code(), None, error

    def admin(self, method: str, request: message.Message) -> Any:
        code, response, error = self.call(method, request, ADMIN())
        assert code is OK, error
        return response

    def uid(self, prefix: str) -> str:
        return f"{prefix}-{next(self.counter)}"

    def payment(
        self, *, confirm: bool = True, manual: bool = False, pm: str = "pm_card_visa"
    ) -> str:
        request = payments_pb2.CreatePaymentRequest(
            request_id=self.uid("seed"),
            order_id=self.uid("order"),
            user_id="user-a",
            amount=usd(2500),
            payment_method_id=pm,
            confirm=confirm,
            capture_method=payments_pb2.CAPTURE_METHOD_MANUAL
            if manual
            else payments_pb2.CAPTURE_METHOD_AUTOMATIC,
        )
        return str(self.admin("PaymentService/CreatePayment", request).id)

    def refund(self, payment_id: str) -> str:
        request = refunds_pb2.CreateRefundRequest(
            request_id=self.uid("seed-refund"), payment_id=payment_id, amount=usd(100)
        )
        return str(self.admin("RefundService/CreateRefund", request).id)

    def method(self) -> str:
        request = payment_methods_pb2.AttachPaymentMethodRequest(
            request_id=self.uid("seed-method"),
            user_id="user-a",
            provider_payment_method_id="pm_card_visa",
        )
        return str(self.admin("PaymentMethodService/AttachPaymentMethod", request).id)

    def plan(self) -> str:
        request = subscriptions_pb2.CreatePlanRequest(
            request_id=self.uid("seed-plan"),
            name="Premium",
            price=usd(999),
            interval=subscriptions_pb2.PLAN_INTERVAL_MONTH,
            interval_count=1,
        )
        return str(self.admin("SubscriptionService/CreatePlan", request).id)

    def subscription(self) -> str:
        request = subscriptions_pb2.CreateSubscriptionRequest(
            request_id=self.uid("seed-subscription"),
            user_id="user-a",
            plan_id=self.plan(),
            payment_method_id=self.method(),
        )
        return str(self.admin("SubscriptionService/CreateSubscription", request).id)


RESPONSES: dict[str, type[message.Message]] = {
    "PaymentService/CreatePayment": payments_pb2.Payment,
    "PaymentService/GetPayment": payments_pb2.Payment,
    "PaymentService/ListPayments": payments_pb2.ListPaymentsResponse,
    "PaymentService/ConfirmPayment": payments_pb2.Payment,
    "PaymentService/CapturePayment": payments_pb2.Payment,
    "PaymentService/CancelPayment": payments_pb2.Payment,
    "PaymentService/SimulatePayment": payments_pb2.Payment,
    "PaymentService/ReconcilePayments": payments_pb2.ReconcilePaymentsResponse,
    "RefundService/CreateRefund": refunds_pb2.Refund,
    "RefundService/GetRefund": refunds_pb2.Refund,
    "RefundService/ListRefunds": refunds_pb2.ListRefundsResponse,
    "PaymentMethodService/AttachPaymentMethod": payment_methods_pb2.PaymentMethod,
    "PaymentMethodService/GetPaymentMethod": payment_methods_pb2.PaymentMethod,
    "PaymentMethodService/ListPaymentMethods": payment_methods_pb2.ListPaymentMethodsResponse,
    "PaymentMethodService/UpdatePaymentMethod": payment_methods_pb2.PaymentMethod,
    "PaymentMethodService/DetachPaymentMethod": payment_methods_pb2.PaymentMethod,
    "SubscriptionService/CreatePlan": subscriptions_pb2.Plan,
    "SubscriptionService/GetPlan": subscriptions_pb2.Plan,
    "SubscriptionService/ListPlans": subscriptions_pb2.ListPlansResponse,
    "SubscriptionService/ArchivePlan": subscriptions_pb2.Plan,
    "SubscriptionService/CreateSubscription": subscriptions_pb2.Subscription,
    "SubscriptionService/GetSubscription": subscriptions_pb2.Subscription,
    "SubscriptionService/ListSubscriptions": subscriptions_pb2.ListSubscriptionsResponse,
    "SubscriptionService/UpdateSubscription": subscriptions_pb2.Subscription,
    "SubscriptionService/CancelSubscription": subscriptions_pb2.Subscription,
    "AnalyticsService/GetPaymentStats": analytics_pb2.PaymentStats,
    "AnalyticsService/GetRevenueSeries": analytics_pb2.RevenueSeries,
    "ReceiptService/GetReceipt": receipts_pb2.Receipt,
    "AuditService/ListAuditEvents": audit_pb2.ListAuditEventsResponse,
    "AuditService/ListProviderExchanges": audit_pb2.ListProviderExchangesResponse,
}

Request = Callable[[World], message.Message]
# RPC -> (a request on customer A's data, expected code for A, B, service, admin).
CASES: dict[str, tuple[Request, tuple[Code, Code, Code, Code]]] = {
    "PaymentService/CreatePayment": (
        lambda w: payments_pb2.CreatePaymentRequest(
            request_id=w.uid("create"),
            order_id=w.uid("order"),
            user_id="user-a",
            amount=usd(1000),
            payment_method_id="pm_card_visa",
            confirm=True,
        ),
        (OK, PD, OK, OK),  # B may not pay on A's behalf
    ),
    "PaymentService/GetPayment": (
        lambda w: payments_pb2.GetPaymentRequest(id=w.payment()),
        (OK, NF, OK, OK),
    ),
    "PaymentService/ListPayments": (
        lambda w: payments_pb2.ListPaymentsRequest(),
        (OK, OK, PD, OK),  # B's list simply holds none of A's payments
    ),
    "PaymentService/ConfirmPayment": (
        lambda w: payments_pb2.ConfirmPaymentRequest(
            id=w.payment(confirm=False), request_id=w.uid("confirm")
        ),
        (OK, NF, OK, OK),
    ),
    "PaymentService/CapturePayment": (
        lambda w: payments_pb2.CapturePaymentRequest(
            id=w.payment(manual=True), request_id=w.uid("capture")
        ),
        (OK, NF, OK, OK),
    ),
    "PaymentService/CancelPayment": (
        lambda w: payments_pb2.CancelPaymentRequest(
            id=w.payment(confirm=False), request_id=w.uid("cancel")
        ),
        (OK, NF, OK, OK),
    ),
    "PaymentService/SimulatePayment": (
        lambda w: payments_pb2.SimulatePaymentRequest(
            id=w.payment(pm="pm_card_authenticationRequired"),
            request_id=w.uid("simulate"),
            outcome=payments_pb2.SIMULATED_OUTCOME_SUCCEEDED,
        ),
        (PD, PD, PD, OK),
    ),
    "PaymentService/ReconcilePayments": (
        lambda w: payments_pb2.ReconcilePaymentsRequest(),
        (PD, PD, PD, OK),
    ),
    "RefundService/CreateRefund": (
        lambda w: refunds_pb2.CreateRefundRequest(
            request_id=w.uid("refund"), payment_id=w.payment(), amount=usd(500)
        ),
        (PD, PD, PD, OK),
    ),
    "RefundService/GetRefund": (
        lambda w: refunds_pb2.GetRefundRequest(id=w.refund(w.payment())),
        (OK, NF, PD, OK),
    ),
    "RefundService/ListRefunds": (
        lambda w: refunds_pb2.ListRefundsRequest(payment_id=w.payment()),
        (OK, NF, PD, OK),
    ),
    "PaymentMethodService/AttachPaymentMethod": (
        lambda w: payment_methods_pb2.AttachPaymentMethodRequest(
            request_id=w.uid("attach"), user_id="user-a", provider_payment_method_id="pm_card_visa"
        ),
        (OK, PD, PD, OK),
    ),
    "PaymentMethodService/GetPaymentMethod": (
        lambda w: payment_methods_pb2.GetPaymentMethodRequest(id=w.method()),
        (OK, NF, PD, OK),
    ),
    "PaymentMethodService/ListPaymentMethods": (
        lambda w: payment_methods_pb2.ListPaymentMethodsRequest(user_id="user-a"),
        (OK, PD, PD, OK),
    ),
    "PaymentMethodService/UpdatePaymentMethod": (
        lambda w: payment_methods_pb2.UpdatePaymentMethodRequest(
            payment_method=payment_methods_pb2.PaymentMethod(id=w.method(), default=True),
            update_mask=field_mask_pb2.FieldMask(paths=["default"]),
            request_id=w.uid("update"),
        ),
        (OK, NF, PD, OK),
    ),
    "PaymentMethodService/DetachPaymentMethod": (
        lambda w: payment_methods_pb2.DetachPaymentMethodRequest(
            id=w.method(), request_id=w.uid("detach")
        ),
        (OK, NF, PD, OK),
    ),
    "SubscriptionService/CreatePlan": (
        lambda w: subscriptions_pb2.CreatePlanRequest(
            request_id=w.uid("plan"),
            name="Basic",
            price=usd(499),
            interval=subscriptions_pb2.PLAN_INTERVAL_MONTH,
            interval_count=1,
        ),
        (PD, PD, PD, OK),
    ),
    "SubscriptionService/ArchivePlan": (
        lambda w: subscriptions_pb2.ArchivePlanRequest(id=w.plan(), request_id=w.uid("archive")),
        (PD, PD, PD, OK),
    ),
    "SubscriptionService/GetPlan": (
        lambda w: subscriptions_pb2.GetPlanRequest(id=w.plan()),
        (OK, OK, OK, OK),
    ),
    "SubscriptionService/ListPlans": (
        lambda w: subscriptions_pb2.ListPlansRequest(),
        (OK, OK, OK, OK),
    ),
    "SubscriptionService/CreateSubscription": (
        lambda w: subscriptions_pb2.CreateSubscriptionRequest(
            request_id=w.uid("subscribe"),
            user_id="user-a",
            plan_id=w.plan(),
            payment_method_id=w.method(),
        ),
        (OK, PD, PD, OK),
    ),
    "SubscriptionService/GetSubscription": (
        lambda w: subscriptions_pb2.GetSubscriptionRequest(id=w.subscription()),
        (OK, NF, PD, OK),
    ),
    "SubscriptionService/ListSubscriptions": (
        lambda w: subscriptions_pb2.ListSubscriptionsRequest(user_id="user-a"),
        (OK, PD, PD, OK),
    ),
    "SubscriptionService/UpdateSubscription": (
        lambda w: subscriptions_pb2.UpdateSubscriptionRequest(
            id=w.subscription(), request_id=w.uid("update-sub"), cancel_at_period_end=True
        ),
        (OK, NF, PD, OK),
    ),
    "SubscriptionService/CancelSubscription": (
        lambda w: subscriptions_pb2.CancelSubscriptionRequest(
            id=w.subscription(), request_id=w.uid("cancel-sub")
        ),
        (OK, NF, PD, OK),
    ),
    "AnalyticsService/GetPaymentStats": (
        lambda w: analytics_pb2.GetPaymentStatsRequest(
            start_time=timestamp_pb2.Timestamp(seconds=1_700_000_000),
            end_time=timestamp_pb2.Timestamp(seconds=1_900_000_000),
        ),
        (PD, PD, PD, OK),
    ),
    "AnalyticsService/GetRevenueSeries": (
        lambda w: analytics_pb2.GetRevenueSeriesRequest(
            start_time=timestamp_pb2.Timestamp(seconds=1_700_000_000),
            end_time=timestamp_pb2.Timestamp(seconds=1_700_000_000 + 30 * 86_400),
            interval=analytics_pb2.SERIES_INTERVAL_DAY,
            time_zone="Europe/Berlin",
        ),
        (PD, PD, PD, OK),
    ),
    "ReceiptService/GetReceipt": (
        lambda w: receipts_pb2.GetReceiptRequest(id=w.payment()),
        (OK, NF, OK, OK),
    ),
    "AuditService/ListAuditEvents": (
        lambda w: audit_pb2.ListAuditEventsRequest(page_size=5),
        (PD, PD, PD, OK),
    ),
    # The matrix's server keeps no exchanges (mock provider, no keys): the admin is
    # let through and told so.
    "AuditService/ListProviderExchanges": (
        lambda w: audit_pb2.ListProviderExchangesRequest(payment_id=w.payment()),
        (PD, PD, PD, Code.FAILED_PRECONDITION),
    ),
}


def expected(method: str, caller: str) -> Code:
    if caller in ("no token", "bad token", "expired token"):
        return UNAUTH
    a, b, service, admin = CASES[method][1]
    return {"customer A": a, "customer B": b, "service": service, "admin": admin}[caller]


@pytest.fixture(scope="module")
def world(server: ServerProcess) -> Iterator[World]:
    with grpc.insecure_channel(server.address) as channel:
        yield World(channel)


def test_the_table_covers_every_method_the_server_offers(world: World) -> None:
    database = ProtoReflectionDescriptorDatabase(world.channel)
    pool = descriptor_pool.DescriptorPool(database)
    offered = {
        f"{service.rsplit('.', 1)[-1]}/{method.name}"
        for service in database.get_services()
        if service.startswith("payments.")
        for method in pool.FindServiceByName(service).methods
    }
    assert offered == set(CASES)


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    infos = [item for item in status.details if item.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    assert info.domain == "payments.v1"
    return info


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("method", list(CASES))
def test_who_may_call_what(world: World, method: str, caller: str) -> None:
    request = CASES[method][0](world)
    code, response, error = world.call(method, request, CALLERS[caller]())
    assert code is expected(method, caller), error
    if error is not None:
        info = error_info(error)
        assert code is not PD or info.reason in ("PERMISSION_DENIED", "USER_ID_NOT_CALLER")
    if method == "PaymentService/ListPayments" and caller == "customer B":
        assert list(response.payments) == []


def list_payments(world: World, caller: str, filter: str = "") -> list[payments_pb2.Payment]:
    code, response, error = world.call(
        "PaymentService/ListPayments",
        payments_pb2.ListPaymentsRequest(filter=filter, page_size=100),
        CALLERS[caller](),
    )
    assert code is OK, error
    return list(response.payments)


def test_a_customer_sees_only_their_own_payments_by_list_or_filter(world: World) -> None:
    world.payment()
    mine = payments_pb2.CreatePaymentRequest(
        request_id="b-own-1", order_id="b-order-1", user_id="", amount=usd(700)
    )
    code, own, error = world.call("PaymentService/CreatePayment", mine, CALLERS["customer B"]())
    assert code is OK, error
    assert own.user_id == "user-b"  # an empty user_id is the caller's own
    assert {p.user_id for p in list_payments(world, "customer A")} == {"user-a"}
    assert [p.id for p in list_payments(world, "customer B")] == [own.id]
    assert list_payments(world, "customer B", 'user_id = "user-a"') == []
    assert [p.id for p in list_payments(world, "customer B", 'user_id = "user-b"')] == [own.id]
    everyone = {p.user_id for p in list_payments(world, "admin")}
    assert {"user-a", "user-b"} <= everyone


def test_a_customer_lists_only_their_own_payment_methods(world: World) -> None:
    method_id = world.method()
    code, response, error = world.call(
        "PaymentMethodService/ListPaymentMethods",
        payment_methods_pb2.ListPaymentMethodsRequest(),
        CALLERS["customer B"](),
    )
    assert code is OK, error
    assert list(response.payment_methods) == []
    code, response, error = world.call(
        "PaymentMethodService/ListPaymentMethods",
        payment_methods_pb2.ListPaymentMethodsRequest(page_size=100),
        CALLERS["customer A"](),
    )
    assert code is OK, error
    assert method_id in {m.id for m in response.payment_methods}


def test_a_customer_cannot_pay_with_another_customers_saved_method(world: World) -> None:
    request = payments_pb2.CreatePaymentRequest(
        request_id="b-steal-1",
        order_id="b-steal-order-1",
        amount=usd(900),
        payment_method_id=world.method(),
        confirm=True,
    )
    code, _, error = world.call("PaymentService/CreatePayment", request, CALLERS["customer B"]())
    assert code is NF, error


def test_idempotency_keys_are_scoped_per_caller(world: World) -> None:
    def create(caller: str, order: str) -> tuple[str, bool]:
        request = payments_pb2.CreatePaymentRequest(
            request_id="shared-key", order_id=order, amount=usd(1200)
        )
        rpc = world.channel.unary_unary(
            "/payments.v1.PaymentService/CreatePayment",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=payments_pb2.Payment.FromString,
        )
        response, call = rpc.with_call(request, metadata=CALLERS[caller](), timeout=15)
        replayed = ("idempotent-replayed", "true") in (call.trailing_metadata() or ())
        return str(response.id), replayed

    a_first, a_replayed = create("customer A", "shared-order-a")
    b_first, b_replayed = create("customer B", "shared-order-b")
    assert a_first != b_first
    assert not a_replayed
    assert not b_replayed  # B never gets A's response for the same key
    assert create("customer A", "shared-order-a") == (a_first, True)


def test_an_order_id_belongs_to_its_user_so_no_customer_learns_or_blocks_anothers(
    world: World,
) -> None:
    def create(caller: str, key: str, order: str) -> tuple[Code, Any, grpc.RpcError | None]:
        request = payments_pb2.CreatePaymentRequest(
            request_id=key, order_id=order, amount=usd(1500), payment_method_id="pm_card_visa"
        )
        return world.call("PaymentService/CreatePayment", request, CALLERS[caller]())

    # B pays first under the id A's renewal will use: that is B's own order, not A's.
    order = world.uid("sub_guessable:renewal:2026-12-01T00:00:00+00:00")
    code, squatter, error = create("customer B", world.uid("squat"), order)
    assert code is OK, error
    code, own, error = create("customer A", world.uid("own"), order)
    assert code is OK, error
    assert own.user_id == "user-a"
    assert own.id != squatter.id
    # A second live payment for A's order names A's own payment, and only to A.
    code, _, error = create("customer A", world.uid("again"), order)
    assert code is Code.ALREADY_EXISTS
    assert error is not None
    assert error_info(error).metadata["payment_id"] == own.id
    code, _, error = create("customer B", world.uid("again"), order)
    assert code is Code.ALREADY_EXISTS
    assert error is not None
    assert error_info(error).metadata["payment_id"] == squatter.id
    assert own.id not in str(error.details()) + str(error_info(error))


@pytest.mark.parametrize("caller", ["no token", "bad token", "customer A", "admin"])
def test_bytes_that_do_not_parse_answer_after_authentication_never_unknown(
    server: ServerProcess, world: World, caller: str
) -> None:
    for method in CASES:
        rpc = world.channel.unary_unary(
            f"/payments.v1.{method}",
            request_serializer=lambda raw: raw,
            response_deserializer=lambda raw: raw,
        )
        for garbage in (b"\xff\xff\xff\xff", b"\x0a\x05ab", b"\x08" + b"\x80" * 11):
            with pytest.raises(grpc.RpcError) as caught:
                rpc(garbage, metadata=CALLERS[caller](), timeout=15)
            code = caught.value.code()
            if caller in ("no token", "bad token"):
                assert code is UNAUTH, (method, caught.value)
            elif expected(method, caller) is PD:
                assert code is PD, (method, caught.value)
            else:
                assert code is Code.INVALID_ARGUMENT, (method, caught.value)
                assert error_info(caught.value).reason == "MALFORMED_REQUEST"
            assert "Error" not in (caught.value.details() or ""), caught.value
    assert "Traceback" not in server.log
    assert "Unexpected" not in server.log
