"""Payment analytics: what the figures mean, and calendar buckets in a time zone.

A payment counts in the range or bucket of its create_time. Gross volume is the
captured amount of the payments that took money; refunded is their refunded
amount (whenever refunded); net is the difference. Figures never mix currencies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from server.domain.payment_states import PaymentState

# Payments that took money; a refund does not undo the success.
MONEY_TAKEN_STATES = frozenset(
    {PaymentState.SUCCEEDED, PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED}
)


@dataclass(frozen=True, slots=True)
class StatsCell:
    """Payments of one currency, provider and state: how many, and their amounts summed."""

    currency_code: str
    provider: str
    state: PaymentState
    payment_count: int
    captured: int
    refunded: int


@dataclass(frozen=True, slots=True)
class Figures:
    payment_count: int = 0
    gross: int = 0
    refunded: int = 0
    succeeded_count: int = 0
    failed_count: int = 0

    @property
    def net(self) -> int:
        return self.gross - self.refunded

    @property
    def success_rate(self) -> float | None:
        """succeeded / (succeeded + failed); None when no payment was decided."""
        decided = self.succeeded_count + self.failed_count
        return self.succeeded_count / decided if decided else None

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.payment_count + other.payment_count,
            self.gross + other.gross,
            self.refunded + other.refunded,
            self.succeeded_count + other.succeeded_count,
            self.failed_count + other.failed_count,
        )


def cell_figures(cell: StatsCell) -> Figures:
    took_money = cell.state in MONEY_TAKEN_STATES
    return Figures(
        payment_count=cell.payment_count,
        gross=cell.captured if took_money else 0,
        refunded=cell.refunded if took_money else 0,
        succeeded_count=cell.payment_count if took_money else 0,
        failed_count=cell.payment_count if cell.state is PaymentState.FAILED else 0,
    )


@dataclass(frozen=True, slots=True)
class CurrencyStats:
    currency_code: str
    figures: Figures
    state_counts: tuple[tuple[PaymentState, int], ...]  # in PaymentState order, no zeros
    providers: tuple[tuple[str, Figures], ...]  # by provider name


_STATE_ORDER = {state: n for n, state in enumerate(PaymentState)}


def currency_stats(cells: Iterable[StatsCell]) -> list[CurrencyStats]:
    """Fold the cells into per-currency figures, by currency code."""
    by_currency: dict[str, list[StatsCell]] = defaultdict(list)
    for cell in cells:
        by_currency[cell.currency_code].append(cell)
    result = []
    for code in sorted(by_currency):
        states: dict[PaymentState, int] = defaultdict(int)
        providers: dict[str, Figures] = defaultdict(Figures)
        for cell in by_currency[code]:
            states[cell.state] += cell.payment_count
            providers[cell.provider] += cell_figures(cell)
        result.append(
            CurrencyStats(
                currency_code=code,
                figures=sum(providers.values(), Figures()),
                state_counts=tuple(
                    (s, n) for s, n in sorted(states.items(), key=lambda i: _STATE_ORDER[i[0]]) if n
                ),
                providers=tuple(sorted(providers.items())),
            )
        )
    return result


# --- revenue series -------------------------------------------------------------------------


class SeriesInterval(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


class TooManyBuckets(Exception):
    """The range holds more buckets than allowed."""


@dataclass(frozen=True, slots=True)
class RevenueCell:
    """Payments that took money, of one currency in one bucket (index into the buckets)."""

    bucket: int
    currency_code: str
    payment_count: int
    captured: int
    refunded: int


@dataclass(frozen=True, slots=True)
class Revenue:
    currency_code: str
    payment_count: int
    gross: int
    refunded: int

    @property
    def net(self) -> int:
        return self.gross - self.refunded


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    end: datetime
    revenue: tuple[Revenue, ...]  # by currency code


def _local_unit_starts(first: datetime, interval: SeriesInterval) -> Iterator[datetime]:
    """Naive wall-clock starts of the units from the one holding `first` (naive) on."""
    if interval is SeriesInterval.HOUR:
        moment = first.replace(minute=0, second=0, microsecond=0)
        while True:
            yield moment
            moment += timedelta(hours=1)
    elif interval is SeriesInterval.DAY:
        moment = first.replace(hour=0, minute=0, second=0, microsecond=0)
        while True:
            yield moment
            moment += timedelta(days=1)
    else:
        year, month = first.year, first.month
        while True:
            yield datetime(year, month, 1)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _instants(wall: datetime, zone: ZoneInfo) -> set[datetime]:
    """The UTC instants at which the zone's clocks show `wall`.

    Two after clocks are turned back (both are bucket starts: the repeated hour is a
    real hour), none in the gap when they are turned forward: then the instant of the
    change itself, where the unit really starts.
    """
    found = set()
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall:
            found.add(instant)
    if not found:
        found.add(wall.replace(tzinfo=zone, fold=0).astimezone(UTC))
    return found


def bucket_boundaries(
    start: datetime, end: datetime, interval: SeriesInterval, zone: ZoneInfo, max_buckets: int
) -> list[datetime]:
    """UTC instants [start, b1, ..., end]: bucket i is [boundaries[i], boundaries[i+1]).

    Buckets are the zone's calendar units; the first and last are cut to [start, end).
    TooManyBuckets when there would be more than `max_buckets`.
    """
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    boundaries = [start]
    for wall in _local_unit_starts(start.astimezone(zone).replace(tzinfo=None), interval):
        for instant in sorted(_instants(wall, zone)):
            if instant >= end:
                boundaries.append(end)
                return boundaries
            if instant > boundaries[-1]:
                boundaries.append(instant)
                if len(boundaries) > max_buckets:
                    raise TooManyBuckets(f"more than {max_buckets} buckets")
    raise AssertionError("unreachable: the unit starts never end")  # pragma: no cover


_HOUR = timedelta(hours=1)


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class HourSplit:
    """How to read a series from whole UTC hours (pre-summed) plus the rows of the rest.

    Hours in [first_hour, end_hour) lie each inside one bucket, except those in `split`
    (a bucket boundary falls inside them, as in zones half an hour off UTC); `pieces` are
    the parts of the range to read row by row: the split hours and the partial hours at
    either end.
    """

    first_hour: datetime
    end_hour: datetime
    split: frozenset[datetime]
    pieces: tuple[tuple[datetime, datetime], ...]


def split_by_hours(boundaries: list[datetime]) -> HourSplit:
    start, end = boundaries[0], boundaries[-1]
    first_hour = _floor_hour(start) + (_HOUR if _floor_hour(start) != start else timedelta())
    end_hour = _floor_hour(end)
    if first_hour >= end_hour:
        return HourSplit(first_hour, first_hour, frozenset(), ((start, end),))
    split = frozenset(
        _floor_hour(b)
        for b in boundaries[1:-1]
        if _floor_hour(b) != b and first_hour <= _floor_hour(b) < end_hour
    )
    pieces = [(start, first_hour)] if start < first_hour else []
    pieces += [(hour, hour + _HOUR) for hour in sorted(split)]
    if end_hour < end:
        pieces.append((end_hour, end))
    merged: list[tuple[datetime, datetime]] = []
    for piece in pieces:
        if merged and merged[-1][1] == piece[0]:
            merged[-1] = (merged[-1][0], piece[1])
        else:
            merged.append(piece)
    return HourSplit(first_hour, end_hour, split, tuple(merged))


def revenue_buckets(boundaries: list[datetime], cells: Iterable[RevenueCell]) -> list[Bucket]:
    """Every bucket of `boundaries`, with the cells' revenue per currency."""
    per_bucket: list[dict[str, list[int]]] = [{} for _ in boundaries[1:]]
    for cell in cells:
        sums = per_bucket[cell.bucket].setdefault(cell.currency_code, [0, 0, 0])
        sums[0] += cell.payment_count
        sums[1] += cell.captured
        sums[2] += cell.refunded
    return [
        Bucket(
            boundaries[i],
            boundaries[i + 1],
            tuple(Revenue(code, *found[code]) for code in sorted(found)),
        )
        for i, found in enumerate(per_bucket)
    ]
