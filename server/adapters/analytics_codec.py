"""Payment analytics to their protobuf form."""

from __future__ import annotations

from datetime import datetime

from payments.v1 import analytics_pb2 as pb
from payments.v1 import money_pb2

from server.adapters.codec import state_to_proto, timestamp
from server.domain.analytics import CurrencyStats, Figures, SeriesInterval
from server.service.analytics.queries import RevenueSeries

_INTERVAL_TO_PROTO = {
    SeriesInterval.HOUR: pb.SERIES_INTERVAL_HOUR,
    SeriesInterval.DAY: pb.SERIES_INTERVAL_DAY,
    SeriesInterval.MONTH: pb.SERIES_INTERVAL_MONTH,
}
_INTERVAL_FROM_PROTO: dict[int, SeriesInterval] = {v: k for k, v in _INTERVAL_TO_PROTO.items()}


def interval_from_proto(value: int) -> SeriesInterval | None:
    return _INTERVAL_FROM_PROTO.get(value)


def _money(currency_code: str, minor_units: int) -> money_pb2.Money:
    # Sums may exceed the per-payment limit of domain Money, so no Money object here.
    return money_pb2.Money(currency_code=currency_code, minor_units=minor_units)


def figures_to_proto(currency_code: str, figures: Figures) -> pb.PaymentFigures:
    message = pb.PaymentFigures(
        payment_count=figures.payment_count,
        gross_volume=_money(currency_code, figures.gross),
        refunded_volume=_money(currency_code, figures.refunded),
        net_volume=_money(currency_code, figures.net),
        succeeded_count=figures.succeeded_count,
        failed_count=figures.failed_count,
    )
    if (rate := figures.success_rate) is not None:
        message.success_rate = rate
    return message


def payment_stats_to_proto(
    start: datetime, end: datetime, stats: list[CurrencyStats]
) -> pb.PaymentStats:
    return pb.PaymentStats(
        start_time=timestamp(start),
        end_time=timestamp(end),
        currencies=[
            pb.CurrencyPaymentStats(
                currency_code=s.currency_code,
                figures=figures_to_proto(s.currency_code, s.figures),
                state_counts=[
                    pb.PaymentStateCount(state=state_to_proto(state), payment_count=n)
                    for state, n in s.state_counts
                ],
                providers=[
                    pb.ProviderPaymentStats(
                        provider=provider, figures=figures_to_proto(s.currency_code, figures)
                    )
                    for provider, figures in s.providers
                ],
            )
            for s in stats
        ],
    )


def _set_money(message: money_pb2.Money, currency_code: str, minor_units: int) -> None:
    message.currency_code = currency_code
    message.minor_units = minor_units


def revenue_series_to_proto(series: RevenueSeries) -> pb.RevenueSeries:
    # Filled in place: a year of days is ~7,000 messages, built faster this way than
    # with nested constructors.
    message = pb.RevenueSeries(
        time_zone=series.time_zone, interval=_INTERVAL_TO_PROTO[series.interval]
    )
    for bucket in series.buckets:
        entry = message.buckets.add()
        entry.start_time.FromDatetime(bucket.start)
        entry.end_time.FromDatetime(bucket.end)
        for revenue in bucket.revenue:
            code = revenue.currency_code
            item = entry.currencies.add(currency_code=code, payment_count=revenue.payment_count)
            _set_money(item.gross_volume, code, revenue.gross)
            _set_money(item.refunded_volume, code, revenue.refunded)
            _set_money(item.net_volume, code, revenue.net)
    return message
