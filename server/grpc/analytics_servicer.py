"""AnalyticsService over gRPC: proto in, query to the service layer, proto out."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from payments.v1 import analytics_pb2, analytics_pb2_grpc

from server.adapters.analytics_codec import (
    interval_from_proto,
    payment_stats_to_proto,
    revenue_series_to_proto,
)
from server.domain.principal import Principal
from server.grpc import methods as rpc
from server.service.analytics import queries as payment_analytics
from server.service.analytics.queries import RevenueSeries, TimeInput
from server.service.dependencies import Dependencies


def _time(request: Any, field: str) -> TimeInput | None:
    if not request.HasField(field):
        return None
    stamp: Timestamp = getattr(request, field)
    return TimeInput(stamp.seconds, stamp.nanos)


async def _stats(
    deps: Dependencies, request: analytics_pb2.GetPaymentStatsRequest, _: Principal
) -> analytics_pb2.PaymentStats:
    query = payment_analytics.stats_query(
        _time(request, "start_time"), _time(request, "end_time"), request.currency_code
    )
    stats = await payment_analytics.get_payment_stats(deps.lagging_reads, query)
    return payment_stats_to_proto(query.start, query.end, stats)


def _series(
    deps: Dependencies, request: analytics_pb2.GetRevenueSeriesRequest, _: Principal
) -> Awaitable[RevenueSeries]:
    query = payment_analytics.series_query(
        _time(request, "start_time"),
        _time(request, "end_time"),
        request.currency_code,
        interval_from_proto(request.interval),
        request.time_zone,
    )
    return payment_analytics.get_revenue_series(deps.lagging_reads, query)


class AnalyticsServicer(rpc.Servicer, analytics_pb2_grpc.AnalyticsServiceServicer):
    GetPaymentStats = rpc.answered(_stats)
    GetRevenueSeries = rpc.read(_series, revenue_series_to_proto)
