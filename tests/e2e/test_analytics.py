"""AnalyticsService on a real server: figures an operator reads with grpcurl."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from payments.v1 import analytics_pb2, analytics_pb2_grpc

from tests.support.server_process import ServerProcess, grpcurl

ANALYTICS = "payments.v1.AnalyticsService"


def call(server: ServerProcess, method: str, body: dict[str, Any]) -> dict[str, Any]:
    out = grpcurl("-plaintext", "-d", json.dumps(body), server.address, method)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def pay(server: ServerProcess, currency: str, minor_units: int, method: str) -> dict[str, Any]:
    body = {
        "request_id": str(uuid.uuid4()),
        "order_id": f"order-{uuid.uuid4().hex[:8]}",
        "user_id": "user-analytics",
        "amount": {"currency_code": currency, "minor_units": minor_units},
        "payment_method_id": method,
        "confirm": True,
    }
    return call(server, "payments.v1.PaymentService/CreatePayment", body)


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_stats_and_series_through_grpcurl(sqlite_server: ServerProcess) -> None:
    described = grpcurl("-plaintext", sqlite_server.address, "describe", ANALYTICS).stdout
    assert "rpc GetPaymentStats" in described
    assert "rpc GetRevenueSeries" in described
    paid = pay(sqlite_server, "JPY", 1200, "pm_card_visa")
    pay(sqlite_server, "JPY", 800, "pm_card_chargeDeclined")
    pay(sqlite_server, "BHD", 1250, "pm_card_visa")
    refund = {
        "request_id": str(uuid.uuid4()),
        "payment_id": paid["id"],
        "amount": {"currency_code": "JPY", "minor_units": 200},
    }
    call(sqlite_server, "payments.v1.RefundService/CreateRefund", refund)

    now = datetime.now(UTC).replace(microsecond=0)
    start, end = rfc3339(now - timedelta(days=1)), rfc3339(now + timedelta(days=1))
    stats = call(
        sqlite_server,
        f"{ANALYTICS}/GetPaymentStats",
        {"start_time": start, "end_time": end, "currency_code": "JPY"},
    )
    [jpy] = stats["currencies"]
    assert jpy["currency_code"] == "JPY"
    figures = jpy["figures"]
    # int64 fields are JSON strings in the protobuf JSON mapping.
    assert figures["payment_count"] == "2"
    assert figures["gross_volume"] == {"currency_code": "JPY", "minor_units": "1200"}
    assert figures["refunded_volume"] == {"currency_code": "JPY", "minor_units": "200"}
    assert figures["net_volume"] == {"currency_code": "JPY", "minor_units": "1000"}
    assert (figures["succeeded_count"], figures["failed_count"]) == ("1", "1")
    assert figures["success_rate"] == 0.5
    assert {s["state"] for s in jpy["state_counts"]} == {
        "PAYMENT_STATE_PARTIALLY_REFUNDED",
        "PAYMENT_STATE_FAILED",
    }
    assert [p["provider"] for p in jpy["providers"]] == ["mock"]

    series = call(
        sqlite_server,
        f"{ANALYTICS}/GetRevenueSeries",
        {
            "start_time": start,
            "end_time": end,
            "interval": "SERIES_INTERVAL_DAY",
            "time_zone": "Asia/Tokyo",
        },
    )
    assert series["time_zone"] == "Asia/Tokyo"
    revenue = [c for b in series["buckets"] for c in b.get("currencies", [])]
    assert sorted((c["currency_code"], c["net_volume"]["minor_units"]) for c in revenue) == [
        ("BHD", "1250"),
        ("JPY", "1000"),
    ]
    assert series["buckets"][0]["start_time"] == start
    assert series["buckets"][-1]["end_time"] == end


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (
            analytics_pb2.GetRevenueSeriesRequest(time_zone="Mars/Olympus"),
            {"start_time", "end_time", "interval", "time_zone"},
        ),
        (
            analytics_pb2.GetRevenueSeriesRequest(
                start_time=_stamp(datetime(2026, 1, 1)),
                end_time=_stamp(datetime(2028, 1, 1)),
                interval=analytics_pb2.SERIES_INTERVAL_HOUR,
            ),
            {"end_time"},
        ),
        (
            analytics_pb2.GetPaymentStatsRequest(
                start_time=_stamp(datetime(2026, 2, 1)),
                end_time=_stamp(datetime(2026, 1, 1)),
                currency_code="usd",
            ),
            {"end_time", "currency_code"},
        ),
    ],
)
def test_bad_requests_are_invalid_argument_with_every_field(
    sqlite_server: ServerProcess, request_: Any, fields: set[str]
) -> None:
    with grpc.insecure_channel(sqlite_server.address) as channel:
        stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        method = (
            stub.GetRevenueSeries
            if isinstance(request_, analytics_pb2.GetRevenueSeriesRequest)
            else stub.GetPaymentStats
        )
        with pytest.raises(grpc.RpcError) as raised:
            method(request_, timeout=10)
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    infos, found = [], set()
    for item in status.details:
        if item.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            item.Unpack(info)
            infos.append(info)
        elif item.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            item.Unpack(bad)
            found |= {v.field for v in bad.field_violations}
    assert [(i.domain, i.reason) for i in infos] == [("payments.v1", "INVALID_ARGUMENT")]
    assert found == fields
