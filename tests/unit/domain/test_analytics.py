"""Analytics definitions: figures, calendar buckets in a zone, and the hour split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from server.domain.analytics import (
    Figures,
    SeriesInterval,
    StatsCell,
    TooManyBuckets,
    bucket_boundaries,
    currency_stats,
    split_by_hours,
)
from server.domain.payment_states import PaymentState

HOUR = timedelta(hours=1)
ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe")
moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)


def test_success_rate_is_undefined_without_decided_payments() -> None:
    assert Figures(payment_count=3).success_rate is None
    assert Figures(succeeded_count=3, failed_count=1).success_rate == 0.75


def test_currencies_never_mix_and_refunds_count_as_success() -> None:
    cells = [
        StatsCell("USD", "mock", PaymentState.REFUNDED, 2, 500, 500),
        StatsCell("JPY", "stripe", PaymentState.FAILED, 1, 0, 0),
        StatsCell("USD", "stripe", PaymentState.CANCELED, 4, 0, 0),
    ]
    jpy, usd = currency_stats(cells)
    assert (jpy.currency_code, jpy.figures.success_rate, jpy.figures.gross) == ("JPY", 0.0, 0)
    assert (usd.figures.gross, usd.figures.net, usd.figures.success_rate) == (500, 0, 1.0)
    assert usd.state_counts == ((PaymentState.CANCELED, 4), (PaymentState.REFUNDED, 2))
    assert [p for p, _ in usd.providers] == ["mock", "stripe"]


@given(
    start=moments,
    length=st.integers(1, 24 * 40 * 3600),
    interval=st.sampled_from(list(SeriesInterval)),
    zone=st.sampled_from(ZONES),
)
@example(  # Lord Howe moves its clocks by half an hour
    datetime(2020, 9, 14, 15, 51, tzinfo=UTC), 1640341, SeriesInterval.HOUR, "Australia/Lord_Howe"
)
@example(datetime(2026, 11, 1, tzinfo=UTC), 86400, SeriesInterval.HOUR, "America/New_York")
@example(datetime(2026, 3, 1, tzinfo=UTC), 86400 * 40, SeriesInterval.DAY, "America/New_York")
def test_buckets_tile_the_range_on_the_zone_calendar(
    start: datetime, length: int, interval: SeriesInterval, zone: str
) -> None:
    end = start + timedelta(seconds=length)
    boundaries = bucket_boundaries(start, end, interval, ZoneInfo(zone), 10_000)
    assert boundaries[0] == start
    assert boundaries[-1] == end
    assert all(a < b for a, b in pairwise(boundaries))
    for inner in boundaries[1:-1]:
        local = inner.astimezone(ZoneInfo(zone))
        before = (inner - timedelta(microseconds=1)).astimezone(ZoneInfo(zone))
        if local.utcoffset() != before.utcoffset():
            # Exactly at a change of the clocks: the repeated hour after they go back,
            # or a unit whose start they skipped (Lord Howe: 02:00 -> 02:30).
            continue
        assert (local.minute, local.second, local.microsecond) == (0, 0, 0)
        if interval is not SeriesInterval.HOUR:
            assert local.hour == 0
        if interval is SeriesInterval.MONTH:
            assert local.day == 1


def test_too_many_buckets() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(TooManyBuckets):
        bucket_boundaries(start, start + 11 * HOUR, SeriesInterval.HOUR, ZoneInfo("UTC"), 10)


@given(
    start=moments,
    length=st.integers(1, 24 * 20 * 3600),
    interval=st.sampled_from(list(SeriesInterval)),
    zone=st.sampled_from(ZONES),
)
def test_hour_split_covers_the_range_once(
    start: datetime, length: int, interval: SeriesInterval, zone: str
) -> None:
    end = start + timedelta(seconds=length)
    boundaries = bucket_boundaries(start, end, interval, ZoneInfo(zone), 10_000)
    split = split_by_hours(boundaries)
    parts = list(split.pieces)
    hour = split.first_hour
    while hour < split.end_hour:
        if hour not in split.split:
            parts.append((hour, hour + HOUR))
            # A whole hour never straddles a bucket boundary.
            assert not any(hour < b < hour + HOUR for b in boundaries)
        hour += HOUR
    parts.sort()
    assert parts[0][0] == start
    assert parts[-1][1] == end
    assert all(a[1] == b[0] for a, b in pairwise(parts))
