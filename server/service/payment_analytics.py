"""Payment analytics: GetPaymentStats and GetRevenueSeries (validation, then one read)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, available_timezones

from server.domain.analytics import (
    Bucket,
    CurrencyStats,
    SeriesInterval,
    TooManyBuckets,
    bucket_boundaries,
    currency_stats,
    revenue_buckets,
)
from server.domain.currencies import minor_unit_exponent
from server.domain.errors import Validator

if TYPE_CHECKING:
    from server.service.unit_of_work import UnitOfWorkFactory

MAX_BUCKETS = 10_000
DEFAULT_TIME_ZONE = "UTC"
# google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TimeInput:
    """A timestamp as the caller sent it (seconds and nanos since the epoch)."""

    seconds: int
    nanos: int = 0


@dataclass(frozen=True, slots=True)
class StatsQuery:
    start: datetime
    end: datetime
    currency_code: str | None


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    start: datetime
    end: datetime
    currency_code: str | None
    interval: SeriesInterval
    time_zone: str


@dataclass(frozen=True, slots=True)
class RevenueSeries:
    time_zone: str
    interval: SeriesInterval
    buckets: list[Bucket]


def _check_time(validator: Validator, field: str, value: TimeInput | None) -> datetime | None:
    if not validator.check(value is not None, field, "is required"):
        return None
    assert value is not None
    if not validator.check(
        _MIN_SECONDS <= value.seconds <= _MAX_SECONDS and 0 <= value.nanos < 1_000_000_000,
        field,
        "must be a valid timestamp between years 1 and 9999",
    ):
        return None
    # Microseconds: what both databases store.
    return _EPOCH + timedelta(seconds=value.seconds, microseconds=value.nanos // 1000)


def _check_range(
    validator: Validator, start: TimeInput | None, end: TimeInput | None
) -> tuple[datetime, datetime] | None:
    first = _check_time(validator, "start_time", start)
    last = _check_time(validator, "end_time", end)
    if first is None or last is None:
        return None
    if not validator.check(last > first, "end_time", "must be after start_time"):
        return None
    return first, last


def _check_currency(validator: Validator, currency_code: str) -> str | None:
    if not currency_code:
        return None
    validator.check(
        minor_unit_exponent(currency_code) is not None,
        "currency_code",
        "must be empty or an upper-case ISO 4217 currency code, for example USD",
    )
    return currency_code


@cache
def _zone_names() -> frozenset[str]:
    # The known names, not whatever ZoneInfo opens: folders ("America") and overlong
    # names reach the file system and fail there.
    return frozenset(available_timezones())


def _check_zone(validator: Validator, name: str) -> ZoneInfo | None:
    if name not in _zone_names():
        validator.add("time_zone", 'must be an IANA time zone, for example "Europe/Paris"')
        return None
    return ZoneInfo(name)


def stats_query(start: TimeInput | None, end: TimeInput | None, currency_code: str) -> StatsQuery:
    validator = Validator()
    bounds = _check_range(validator, start, end)
    currency = _check_currency(validator, currency_code)
    validator.raise_if_any()
    assert bounds is not None
    return StatsQuery(bounds[0], bounds[1], currency)


def series_query(
    start: TimeInput | None,
    end: TimeInput | None,
    currency_code: str,
    interval: SeriesInterval | None,
    time_zone: str,
) -> SeriesQuery:
    validator = Validator()
    bounds = _check_range(validator, start, end)
    currency = _check_currency(validator, currency_code)
    validator.check(interval is not None, "interval", "must be HOUR, DAY or MONTH")
    zone_name = time_zone or DEFAULT_TIME_ZONE
    _check_zone(validator, zone_name)
    validator.raise_if_any()
    assert bounds is not None
    assert interval is not None
    return SeriesQuery(bounds[0], bounds[1], currency, interval, zone_name)


async def get_payment_stats(
    uow_factory: UnitOfWorkFactory, query: StatsQuery
) -> list[CurrencyStats]:
    async with uow_factory(read_only=True) as uow:
        cells = await uow.analytics.stats_cells(query.start, query.end, query.currency_code)
    return currency_stats(cells)


async def get_revenue_series(uow_factory: UnitOfWorkFactory, query: SeriesQuery) -> RevenueSeries:
    try:
        boundaries = bucket_boundaries(
            query.start, query.end, query.interval, ZoneInfo(query.time_zone), MAX_BUCKETS
        )
    except TooManyBuckets:
        validator = Validator()
        validator.add("end_time", f"the range holds more than {MAX_BUCKETS} buckets")
        validator.raise_if_any()
        raise
    except (OverflowError, ValueError):
        # The zone's calendar units around the range run past year 1 or 9999.
        validator = Validator()
        validator.add(
            "start_time", "the range in this time zone must stay between years 1 and 9999"
        )
        validator.raise_if_any()
        raise
    async with uow_factory(read_only=True) as uow:
        cells = await uow.analytics.revenue_cells(boundaries, query.currency_code)
    return RevenueSeries(query.time_zone, query.interval, revenue_buckets(boundaries, cells))
