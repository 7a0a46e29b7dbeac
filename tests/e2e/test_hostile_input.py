"""Odd and hostile input through a real server on PostgreSQL with tracing on, and a real
webhook sidecar: each case once answered INTERNAL, UNKNOWN or a traceback."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa
from google.protobuf import message, timestamp_pb2
from payments.v1 import (
    analytics_pb2,
    money_pb2,
    payment_methods_pb2,
    payments_pb2,
    refunds_pb2,
    subscriptions_pb2,
)
from prometheus_client.parser import text_string_to_metric_families

from server.adapters.db.engine import create_engine
from server.adapters.db.tables import outbox, payments
from tests.support.databases import create_postgres_database, drop_postgres_database, run_in_thread
from tests.support.gateway_process import GatewayProcess
from tests.support.otlp_sink import OtlpSink
from tests.support.rich_status import field_violations
from tests.support.server_process import ServerProcess, free_port

Code = grpc.StatusCode
FIRST_DAY = timestamp_pb2.Timestamp(seconds=-62_135_596_800)  # 0001-01-01T00:00:00Z
LAST_SECOND = timestamp_pb2.Timestamp(seconds=253_402_300_799)  # 9999-12-31T23:59:59Z


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = create_postgres_database("payments_hostile")
    yield url
    drop_postgres_database(url)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[ServerProcess]:
    with OtlpSink() as sink:
        env = {
            "PAYMENTS_DATABASE_URL": database,
            "PAYMENTS_ENV": "test",
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        server = ServerProcess(tmp_path_factory.mktemp("hostile"), env=env).start()
        yield server
        assert server.stop() == 0, server.log
    assert "Traceback" not in server.log


@pytest.fixture(scope="module")
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as channel:
        yield channel


def call(
    channel: grpc.Channel,
    method: str,
    request: message.Message,
    response: type[message.Message],
    metadata: tuple[tuple[str, str], ...] = (),
) -> tuple[Code, Any, grpc.RpcError | None]:
    rpc = channel.unary_unary(
        f"/payments.v1.{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,
    )
    try:
        return Code.OK, rpc(request, metadata=metadata, timeout=15), None
    except grpc.RpcError as error:
        return error.code(), None, error


def assert_invalid(result: tuple[Code, Any, grpc.RpcError | None], field: str) -> None:
    code, _, error = result
    assert code is Code.INVALID_ARGUMENT, error
    assert error is not None
    assert field in field_violations(error), error


def create(n: str, **fields: Any) -> payments_pb2.CreatePaymentRequest:
    values: dict[str, Any] = {
        "request_id": f"hostile-{n}",
        "order_id": f"hostile-order-{n}",
        "user_id": "user-hostile",
        "amount": money_pb2.Money(currency_code="USD", minor_units=1000),
        "payment_method_id": "pm_card_visa",
        "confirm": True,
        **fields,
    }
    return payments_pb2.CreatePaymentRequest(**values)


@pytest.mark.parametrize("zone", ["America", "Etc", "Europe/", "x" * 300, "../../etc/passwd"])
def test_a_time_zone_that_is_not_a_zone_is_invalid_argument(
    channel: grpc.Channel, zone: str
) -> None:
    request = analytics_pb2.GetRevenueSeriesRequest(
        start_time=timestamp_pb2.Timestamp(seconds=1_700_000_000),
        end_time=timestamp_pb2.Timestamp(seconds=1_700_086_400),
        interval=analytics_pb2.SERIES_INTERVAL_DAY,
        time_zone=zone,
    )
    assert_invalid(
        call(channel, "AnalyticsService/GetRevenueSeries", request, analytics_pb2.RevenueSeries),
        "time_zone",
    )


@pytest.mark.parametrize(
    ("start", "end", "zone", "interval"),
    [
        (FIRST_DAY, timestamp_pb2.Timestamp(seconds=-62_135_596_800 + 86_400), "Asia/Tokyo", 2),
        (
            FIRST_DAY,
            timestamp_pb2.Timestamp(seconds=-62_135_596_800 + 3600),
            "Pacific/Kiritimati",
            1,
        ),
        (timestamp_pb2.Timestamp(seconds=253_402_300_799 - 86_400), LAST_SECOND, "UTC", 3),
        (timestamp_pb2.Timestamp(seconds=253_402_300_799 - 3600), LAST_SECOND, "America/Adak", 2),
    ],
    ids=["year-1-east-day", "year-1-east-hour", "year-9999-month", "year-9999-west-day"],
)
def test_a_revenue_series_at_the_ends_of_time_never_overflows(
    channel: grpc.Channel,
    start: timestamp_pb2.Timestamp,
    end: timestamp_pb2.Timestamp,
    zone: str,
    interval: int,
) -> None:
    request = analytics_pb2.GetRevenueSeriesRequest(start_time=start, end_time=end, time_zone=zone)
    request.interval = interval  # type: ignore[assignment]
    code, _, error = call(
        channel, "AnalyticsService/GetRevenueSeries", request, analytics_pb2.RevenueSeries
    )
    assert code in (Code.OK, Code.INVALID_ARGUMENT), error


@pytest.mark.parametrize(
    "filter_text",
    [
        'create_time > "0001-01-01T00:00:00+14:00"',
        'create_time < "9999-12-31T23:59:59-14:00"',
        'create_time >= "0001-01-01T00:00:00+00:01"',
        'user_id = "nul\\\\\x00here"',
        'order_id = "\x00"',
        'user_id = "bidi\u202eevil"',
    ],
)
def test_list_filters_at_the_range_ends_or_with_nul_are_invalid_argument(
    channel: grpc.Channel, filter_text: str
) -> None:
    request = payments_pb2.ListPaymentsRequest(filter=filter_text)
    assert_invalid(
        call(channel, "PaymentService/ListPayments", request, payments_pb2.ListPaymentsResponse),
        "filter",
    )


def _rewrite(token: str, change: Any) -> list[str]:
    """What a client could make of a token: the unsigned JSON of old, rewritten, with and
    without the tag it came with."""
    body, _, tag = token.partition(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    rewritten = base64.urlsafe_b64encode(json.dumps({**data, "v": change}).encode())
    text = rewritten.decode().rstrip("=")
    return [text, f"{text}.{tag}"]


PAGED: dict[str, tuple[Any, type[message.Message]]] = {
    "PaymentService/ListPayments": (
        lambda t: payments_pb2.ListPaymentsRequest(page_size=1, page_token=t),
        payments_pb2.ListPaymentsResponse,
    ),
    "PaymentService/ListPayments amount": (
        lambda t: payments_pb2.ListPaymentsRequest(page_size=1, order_by="amount", page_token=t),
        payments_pb2.ListPaymentsResponse,
    ),
    "RefundService/ListRefunds": (
        lambda t: refunds_pb2.ListRefundsRequest(payment_id="", page_size=1, page_token=t),
        refunds_pb2.ListRefundsResponse,
    ),
    "PaymentMethodService/ListPaymentMethods": (
        lambda t: payment_methods_pb2.ListPaymentMethodsRequest(
            user_id="user-hostile", page_size=1, page_token=t
        ),
        payment_methods_pb2.ListPaymentMethodsResponse,
    ),
    "SubscriptionService/ListPlans": (
        lambda t: subscriptions_pb2.ListPlansRequest(page_size=1, page_token=t),
        subscriptions_pb2.ListPlansResponse,
    ),
    "SubscriptionService/ListSubscriptions": (
        lambda t: subscriptions_pb2.ListSubscriptionsRequest(
            user_id="user-hostile", page_size=1, page_token=t
        ),
        subscriptions_pb2.ListSubscriptionsResponse,
    ),
}


@pytest.fixture(scope="module")
def seeded(channel: grpc.Channel) -> dict[str, str]:
    """Two of everything a List RPC pages through; the ids that the requests need."""
    ids: dict[str, str] = {}
    for n in ("seed-1", "seed-2"):
        code, payment, error = call(
            channel, "PaymentService/CreatePayment", create(n), payments_pb2.Payment
        )
        assert code is Code.OK, error
        ids["payment"] = payment.id
        attach = payment_methods_pb2.AttachPaymentMethodRequest(
            request_id=f"hostile-pm-{n}",
            user_id="user-hostile",
            provider_payment_method_id="pm_card_visa",
        )
        code, method, error = call(
            channel,
            "PaymentMethodService/AttachPaymentMethod",
            attach,
            payment_methods_pb2.PaymentMethod,
        )
        assert code is Code.OK, error
        plan = subscriptions_pb2.CreatePlanRequest(
            request_id=f"hostile-plan-{n}",
            name="Premium",
            price=money_pb2.Money(currency_code="USD", minor_units=999),
            interval=subscriptions_pb2.PLAN_INTERVAL_MONTH,
            interval_count=1,
        )
        code, made, error = call(
            channel, "SubscriptionService/CreatePlan", plan, subscriptions_pb2.Plan
        )
        assert code is Code.OK, error
        subscribe = subscriptions_pb2.CreateSubscriptionRequest(
            request_id=f"hostile-sub-{n}",
            user_id="user-hostile",
            plan_id=made.id,
            payment_method_id=method.id,
        )
        code, _, error = call(
            channel,
            "SubscriptionService/CreateSubscription",
            subscribe,
            subscriptions_pb2.Subscription,
        )
        assert code is Code.OK, error
    for n in ("refund-1", "refund-2"):
        refund = refunds_pb2.CreateRefundRequest(
            request_id=f"hostile-{n}",
            payment_id=ids["payment"],
            amount=money_pb2.Money(currency_code="USD", minor_units=10),
        )
        assert call(channel, "RefundService/CreateRefund", refund, refunds_pb2.Refund)[0] is Code.OK
    return ids


@pytest.mark.parametrize("rpc", list(PAGED))
def test_an_altered_page_token_is_invalid_argument_on_every_list(
    channel: grpc.Channel, seeded: dict[str, str], rpc: str
) -> None:
    make, response = PAGED[rpc]
    method = rpc.split()[0]

    def request(token: str) -> message.Message:
        built = make(token)
        if method == "RefundService/ListRefunds":
            built.payment_id = seeded["payment"]
        return built  # type: ignore[no-any-return]

    code, first, error = call(channel, method, request(""), response)
    assert code is Code.OK, error
    token = first.next_page_token
    assert token
    assert call(channel, method, request(token), response)[0] is Code.OK
    changes = [2**64, -(2**70), "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
    altered = [t for change in changes for t in _rewrite(token, change)]
    raw_nested = '{"v": ' + "[" * 5000 + "]" * 5000 + "}"
    altered += [
        base64.urlsafe_b64encode(raw_nested.encode()).decode(),
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        token + "x" * 5000,
        "\u202e" + token,
    ]
    for bad in altered:
        assert_invalid(call(channel, method, request(bad), response), "page_token")


def test_a_long_tracestate_never_breaks_a_payment(
    channel: grpc.Channel, database: str, server: ServerProcess
) -> None:
    members = [f"vendor{n}=" + "v" * 40 for n in range(12)] + ["big=" + "x" * 200]
    tracestate = ",".join(members)
    assert len(tracestate) > 600
    metadata = (
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("tracestate", tracestate),
    )
    code, payment, error = call(
        channel,
        "PaymentService/CreatePayment",
        create("tracestate"),
        payments_pb2.Payment,
        metadata,
    )
    assert code is Code.OK, error

    async def stored() -> list[str | None]:
        engine = create_engine(database)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    sa.select(outbox.c.tracestate).where(outbox.c.aggregate_id == payment.id)
                )
                return list(rows.scalars())
        finally:
            await engine.dispose()

    kept = run_in_thread(stored)
    assert kept
    for value in kept:
        assert value is not None
        assert len(value) <= 512
        assert "big=" not in value  # an entry over 128 characters goes first (W3C)
        assert value.startswith("vendor0=")


def count_rows(database: str) -> int:
    async def count() -> int:
        engine = create_engine(database)
        try:
            async with engine.connect() as connection:
                return int(
                    (
                        await connection.execute(sa.select(sa.func.count()).select_from(payments))
                    ).scalar_one()
                )
        finally:
            await engine.dispose()

    return run_in_thread(count)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"order_id": "4242424242424242"}, "order_id"),
        ({"user_id": "4000-0566-5566-5556"}, "user_id"),
        ({"request_id": "req-4242424242424242"}, "request_id"),
        ({"description": "Premium\u202eplan"}, "description"),
        ({"description": "zero\u200bwidth"}, "description"),
        ({"description": "ansi \x1b[31mred"}, "description"),
    ],
)
def test_card_numbers_in_identifiers_and_unsafe_text_are_refused_and_nothing_stored(
    channel: grpc.Channel, database: str, fields: dict[str, str], field: str
) -> None:
    before = count_rows(database)
    result = call(
        channel,
        "PaymentService/CreatePayment",
        create(f"odd-{field}", **fields),
        payments_pb2.Payment,
    )
    assert_invalid(result, field)
    assert count_rows(database) == before


def test_a_client_that_leaves_mid_body_is_counted_not_a_traceback(tmp_path: Path) -> None:
    metrics_port = free_port()
    gateway = GatewayProcess(
        tmp_path,
        env={
            "PAYMENTS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
            "STRIPE_WEBHOOK_SECRET": "whsec_hostile",
            "PAYMENTS_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}",
        },
    )
    from server.adapters.db.migrations import upgrade

    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    gateway.start()
    try:
        host, port = gateway.address.rsplit(":", 1)
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /webhooks/stripe HTTP/1.1\r\nHost: gateway\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            )
        deadline = time.monotonic() + 20
        counted = 0.0
        while time.monotonic() < deadline and counted < 1:
            scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
            counted = sum(
                sample.value
                for family in text_string_to_metric_families(scraped)
                for sample in family.samples
                if sample.name == "payments_webhook_intake_total"
                and sample.labels.get("result") == "client_disconnected"
            )
            time.sleep(0.1)
        assert counted == 1, gateway.log
    finally:
        assert gateway.stop() == 0, gateway.log
    assert "Traceback" not in gateway.log
    assert "Exception in ASGI application" not in gateway.log
