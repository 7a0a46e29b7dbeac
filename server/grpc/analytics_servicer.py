"""AnalyticsService over gRPC: proto in, query to the service layer, proto out."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio
from payments.v1 import analytics_pb2, analytics_pb2_grpc

from server.adapters.analytics_codec import (
    interval_from_proto,
    payment_stats_to_proto,
    revenue_series_to_proto,
)
from server.service.analytics import queries as payment_analytics
from server.service.analytics.queries import TimeInput
from server.service.dependencies import Dependencies

Context = aio.ServicerContext[Any, Any]


def _time(request: Any, field: str) -> TimeInput | None:
    if not request.HasField(field):
        return None
    stamp: Timestamp = getattr(request, field)
    return TimeInput(stamp.seconds, stamp.nanos)


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    async def GetPaymentStats(
        self, request: analytics_pb2.GetPaymentStatsRequest, context: Context
    ) -> analytics_pb2.PaymentStats:
        query = payment_analytics.stats_query(
            _time(request, "start_time"), _time(request, "end_time"), request.currency_code
        )
        stats = await payment_analytics.get_payment_stats(self._deps.lagging_reads, query)
        return payment_stats_to_proto(query.start, query.end, stats)

    async def GetRevenueSeries(
        self, request: analytics_pb2.GetRevenueSeriesRequest, context: Context
    ) -> analytics_pb2.RevenueSeries:
        query = payment_analytics.series_query(
            _time(request, "start_time"),
            _time(request, "end_time"),
            request.currency_code,
            interval_from_proto(request.interval),
            request.time_zone,
        )
        series = await payment_analytics.get_revenue_series(self._deps.lagging_reads, query)
        return revenue_series_to_proto(series)
