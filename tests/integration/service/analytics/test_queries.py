"""Payment analytics on real databases, every figure checked against a plain recomputation."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db.analytics_repository import MAX_ROW_PIECES
from server.adapters.db.tables import payment_revenue_changes, payment_revenue_hours, payments
from server.domain.analytics import SeriesInterval
from server.domain.errors import InvalidArgument
from server.domain.payment_states import PaymentState
from server.jobs.revenue_rollup import roll_up_revenue
from server.service.analytics.queries import (
    MAX_BUCKETS,
    TimeInput,
    get_payment_stats,
    get_revenue_series,
    series_query,
    stats_query,
)
from server.service.dependencies import Dependencies
from server.service.payments.commands import create_payment
from server.service.payments.requests import AmountInput, CreatePayment
from server.service.refunds.commands import CreateRefund, create_refund

NEW_YORK = ZoneInfo("America/New_York")
# Both 2026 daylight saving changes of New York, with a day either side.
SPRING = (datetime(2026, 3, 7, 5, tzinfo=UTC), datetime(2026, 3, 10, 4, tzinfo=UTC))
AUTUMN = (datetime(2026, 10, 31, 4, tzinfo=UTC), datetime(2026, 11, 3, 5, tzinfo=UTC))
TOOK_MONEY = {PaymentState.SUCCEEDED, PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED}
CURRENCIES = ("USD", "JPY", "BHD", "EUR")
ZONES = ("America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC", "Europe/London")


@dataclass(frozen=True)
class Row:
    create_time: datetime
    currency_code: str
    provider: str
    state: PaymentState
    amount: int
    captured: int
    refunded: int


@st.composite
def rows(draw: st.DrawFn, window: tuple[datetime, datetime]) -> Row:
    start, end = window
    seconds = int((end - start).total_seconds())
    # Often exactly on a boundary (hour, the range's ends), where off-by-ones live.
    offset = draw(
        st.one_of(
            st.integers(-3600, seconds + 3600).map(lambda s: timedelta(seconds=s)),
            st.integers(-2, seconds // 3600 + 2).map(lambda h: timedelta(hours=h)),
            st.integers(0, 10**6).map(lambda us: timedelta(microseconds=us - 1)),
        )
    )
    amount = draw(st.integers(1, 10**9))
    captured = draw(st.integers(0, amount))
    return Row(
        create_time=start + offset,
        currency_code=draw(st.sampled_from(CURRENCIES)),
        provider=draw(st.sampled_from(("mock", "stripe"))),
        state=draw(st.sampled_from(list(PaymentState))),
        amount=amount,
        captured=captured,
        refunded=draw(st.integers(0, captured)),
    )


async def insert(engine: AsyncEngine, found: list[Row]) -> None:
    async with engine.begin() as connection:
        await connection.execute(sa.delete(payments))  # the triggers take their revenue back
        if not found:
            return
        await connection.execute(
            payments.insert(),
            [
                {
                    "id": f"pay_{n:026d}",
                    "order_id": f"order-{n}",
                    "user_id": "user-1",
                    "currency_code": row.currency_code,
                    "amount": row.amount,
                    "state": row.state.value,
                    "provider": row.provider,
                    "capture_method": "AUTOMATIC",
                    "amount_captured": row.captured,
                    "amount_refunded": row.refunded,
                    "metadata": {},
                    "event_sequence": 1,
                    "create_time": row.create_time,
                    "update_time": row.create_time,
                }
                for n, row in enumerate(found)
            ],
        )


def stamp(moment: datetime) -> TimeInput:
    seconds = int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() // 1)
    return TimeInput(seconds, moment.microsecond * 1000)


def expected_figures(found: list[Row]) -> dict[str, Any]:
    took = [r for r in found if r.state in TOOK_MONEY]
    succeeded = len(took)
    failed = sum(r.state is PaymentState.FAILED for r in found)
    return {
        "payment_count": len(found),
        "gross": sum(r.captured for r in took),
        "refunded": sum(r.refunded for r in took),
        "net": sum(r.captured - r.refunded for r in took),
        "succeeded_count": succeeded,
        "failed_count": failed,
        "success_rate": succeeded / (succeeded + failed) if succeeded + failed else None,
    }


def figures_of(figures: Any) -> dict[str, Any]:
    return {
        "payment_count": figures.payment_count,
        "gross": figures.gross,
        "refunded": figures.refunded,
        "net": figures.net,
        "succeeded_count": figures.succeeded_count,
        "failed_count": figures.failed_count,
        "success_rate": figures.success_rate,
    }


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    found=st.lists(rows(AUTUMN), min_size=10, max_size=60),
    cut=st.tuples(st.integers(0, 72), st.integers(1, 72)),
    currency=st.sampled_from(("", *CURRENCIES)),
)
async def test_stats_equal_a_recomputation_from_the_rows(
    engine: AsyncEngine, deps: Dependencies, found: list[Row], cut: tuple[int, int], currency: str
) -> None:
    await insert(engine, found)
    start = AUTUMN[0] + timedelta(hours=cut[0])
    end = start + timedelta(hours=cut[1])
    query = stats_query(stamp(start), stamp(end), currency)
    stats = await get_payment_stats(deps.uow, query)

    chosen = [
        r for r in found if start <= r.create_time < end and currency in ("", r.currency_code)
    ]
    by_currency: dict[str, list[Row]] = defaultdict(list)
    for row in chosen:
        by_currency[row.currency_code].append(row)
    assert [s.currency_code for s in stats] == sorted(by_currency)
    for entry in stats:
        mine = by_currency[entry.currency_code]
        assert figures_of(entry.figures) == expected_figures(mine)
        counts = Counter(r.state for r in mine)
        assert dict(entry.state_counts) == dict(counts)
        assert [s for s, _ in entry.state_counts] == [s for s in PaymentState if counts[s]]
        providers = sorted({r.provider for r in mine})
        assert [p for p, _ in entry.providers] == providers
        for provider, figures in entry.providers:
            assert figures_of(figures) == expected_figures(
                [r for r in mine if r.provider == provider]
            )


def local_unit(moment: datetime, zone: ZoneInfo, interval: SeriesInterval) -> tuple[Any, ...]:
    """The calendar unit of the zone that holds `moment`, as plain wall-clock fields."""
    local = moment.astimezone(zone)
    if interval is SeriesInterval.MONTH:
        return (local.year, local.month)
    if interval is SeriesInterval.DAY:
        return (local.date(),)
    # The repeated hour after clocks go back is two hours: tell them apart by offset.
    return (local.replace(minute=0, second=0, microsecond=0, tzinfo=None), local.utcoffset())


@st.composite
def edits(draw: st.DrawFn, count: int) -> list[tuple[int, PaymentState, int, int]]:
    """Later changes to some rows: (index, state, captured, refunded) before the CHECKs."""
    return draw(
        st.lists(
            st.tuples(
                st.integers(0, count - 1),
                st.sampled_from(list(PaymentState)),
                st.integers(0, 10**9),
                st.integers(0, 10**9),
            ),
            max_size=count,
        )
    )


async def update(engine: AsyncEngine, found: list[Row], changes: Any) -> list[Row]:
    """Apply the edits with UPDATE (the triggers' other path); the rows as they now are."""
    found = list(found)
    async with engine.begin() as connection:
        for index, state, captured, refunded in changes:
            row = found[index]
            captured = min(captured, row.amount)
            refunded = min(refunded, captured)
            found[index] = Row(
                row.create_time,
                row.currency_code,
                row.provider,
                state,
                row.amount,
                captured,
                refunded,
            )
            await connection.execute(
                payments.update()
                .where(payments.c.id == f"pay_{index:026d}")
                .values(state=state.value, amount_captured=captured, amount_refunded=refunded)
            )
    return found


async def check_series(
    deps: Dependencies,
    found: list[Row],
    start: datetime,
    end: datetime,
    interval: SeriesInterval,
    zone_name: str,
    currency: str,
) -> None:
    zone = ZoneInfo(zone_name)
    query = series_query(stamp(start), stamp(end), currency, interval, zone_name)
    series = await get_revenue_series(deps.uow, query)

    buckets = series.buckets
    assert buckets[0].start == start
    assert buckets[-1].end == end
    assert all(a.end == b.start for a, b in pairwise(buckets))
    units = [local_unit(b.start, zone, interval) for b in buckets]
    assert len(set(units)) == len(units), "one bucket per calendar unit"
    assert all(
        local_unit(b.end - timedelta(microseconds=1), zone, interval) == u
        for b, u in zip(buckets, units, strict=True)
    )

    expected: dict[tuple[Any, ...], dict[str, list[int]]] = defaultdict(dict)
    for r in found:
        if (
            start <= r.create_time < end
            and r.state in TOOK_MONEY
            and currency in ("", r.currency_code)
        ):
            sums = expected[local_unit(r.create_time, zone, interval)].setdefault(
                r.currency_code, [0, 0, 0]
            )
            sums[0] += 1
            sums[1] += r.captured
            sums[2] += r.refunded
    seen = {
        unit: {r.currency_code: [r.payment_count, r.gross, r.refunded] for r in b.revenue}
        for unit, b in zip(units, buckets, strict=True)
    }
    assert {u: v for u, v in seen.items() if v} == dict(expected)
    for bucket in buckets:
        assert [r.currency_code for r in bucket.revenue] == sorted(
            r.currency_code for r in bucket.revenue
        )
        assert all(r.net == r.gross - r.refunded for r in bucket.revenue)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    found=st.lists(st.one_of(rows(AUTUMN), rows(SPRING)), min_size=10, max_size=60),
    window=st.sampled_from((AUTUMN, SPRING)),
    cut=st.tuples(st.integers(-6, 6), st.integers(-6, 6)),
    interval=st.sampled_from(list(SeriesInterval)),
    zone_name=st.sampled_from(ZONES),
    currency=st.sampled_from(("", *CURRENCIES)),
)
async def test_series_equal_a_recomputation_from_the_rows(
    engine: AsyncEngine,
    deps: Dependencies,
    data: st.DataObject,
    found: list[Row],
    window: tuple[datetime, datetime],
    cut: tuple[int, int],
    interval: SeriesInterval,
    zone_name: str,
    currency: str,
) -> None:
    await insert(engine, found)
    if data.draw(st.booleans(), label="roll up after the inserts"):
        await roll_up_revenue(deps.uow, batch=data.draw(st.integers(1, 50), label="batch"))
    found = await update(engine, found, data.draw(edits(len(found))))
    if data.draw(st.booleans(), label="roll up after the updates"):
        await roll_up_revenue(deps.uow)
    start = window[0] + timedelta(minutes=cut[0] * 30)
    end = window[1] + timedelta(minutes=cut[1] * 30)
    await check_series(deps, found, start, end, interval, zone_name, currency)


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(found=st.lists(rows(AUTUMN), min_size=10, max_size=60))
async def test_long_daily_series_half_an_hour_off_utc_reads_every_row(
    engine: AsyncEngine, deps: Dependencies, found: list[Row]
) -> None:
    # Each Kolkata midnight cuts a UTC hour: more row pieces than MAX_ROW_PIECES.
    await insert(engine, found)
    start = AUTUMN[0] - timedelta(days=MAX_ROW_PIECES + 10)
    await check_series(deps, found, start, AUTUMN[1], SeriesInterval.DAY, "Asia/Kolkata", "")


async def test_ranges_are_half_open(deps: Dependencies, engine: AsyncEngine) -> None:
    start, end = SPRING
    edges = (start - timedelta(microseconds=1), start, end - timedelta(microseconds=1), end)
    await insert(
        engine,
        [
            Row(t, "BHD", "stripe", PaymentState.SUCCEEDED, 10**n, 10**n, 0)
            for n, t in enumerate(edges)
        ],
    )
    [stats] = await get_payment_stats(deps.uow, stats_query(stamp(start), stamp(end), "BHD"))
    assert (stats.figures.payment_count, stats.figures.gross) == (2, 10 + 100)
    query = series_query(stamp(start), stamp(end), "", SeriesInterval.DAY, "America/New_York")
    series = await get_revenue_series(deps.uow, query)
    assert [r.gross for r in series.buckets[0].revenue] == [10]
    assert [r.gross for r in series.buckets[-1].revenue] == [100]
    assert sum(len(b.revenue) for b in series.buckets) == 2


async def test_new_york_days_are_23_and_25_hours_long_at_the_changes(deps: Dependencies) -> None:
    for (start, end), lengths in ((SPRING, [24, 23, 24]), (AUTUMN, [24, 25, 24])):
        query = series_query(stamp(start), stamp(end), "", SeriesInterval.DAY, "America/New_York")
        series = await get_revenue_series(deps.uow, query)
        assert [(b.end - b.start) / timedelta(hours=1) for b in series.buckets] == lengths
        assert all(b.start.astimezone(NEW_YORK).hour == 0 for b in series.buckets)


async def test_hours_repeat_when_clocks_go_back(deps: Dependencies) -> None:
    start = datetime(2026, 11, 1, 4, tzinfo=UTC)  # midnight EDT
    query = series_query(
        stamp(start),
        stamp(start + timedelta(days=1, hours=1)),
        "",
        SeriesInterval.HOUR,
        "America/New_York",
    )
    series = await get_revenue_series(deps.uow, query)
    walls = [b.start.astimezone(NEW_YORK).strftime("%H%z") for b in series.buckets]
    assert len(walls) == 25
    assert walls[:4] == ["00-0400", "01-0400", "01-0500", "02-0500"]


async def test_months_follow_the_zone_calendar(deps: Dependencies, engine: AsyncEngine) -> None:
    # 2026-03-31T23:30 in New York is already April in UTC.
    late_march = datetime(2026, 4, 1, 3, 30, tzinfo=UTC)
    await insert(engine, [Row(late_march, "JPY", "mock", PaymentState.SUCCEEDED, 500, 500, 0)])
    query = series_query(
        stamp(datetime(2026, 1, 1, 5, tzinfo=UTC)),
        stamp(datetime(2027, 1, 1, 5, tzinfo=UTC)),
        "",
        SeriesInterval.MONTH,
        "America/New_York",
    )
    series = await get_revenue_series(deps.uow, query)
    assert len(series.buckets) == 12
    march = series.buckets[2]
    assert march.start == datetime(2026, 3, 1, 5, tzinfo=UTC)
    assert march.end == datetime(2026, 4, 1, 4, tzinfo=UTC)
    assert [(r.currency_code, r.gross) for r in march.revenue] == [("JPY", 500)]


@pytest.mark.parametrize(
    ("arguments", "fields"),
    [
        ((None, None, "", SeriesInterval.DAY, ""), {"start_time", "end_time"}),
        (
            (stamp(SPRING[1]), stamp(SPRING[0]), "usd", None, "Mars/Olympus"),
            {"end_time", "currency_code", "interval", "time_zone"},
        ),
        (
            (TimeInput(10**12), stamp(SPRING[0]), "", SeriesInterval.DAY, "../etc/passwd"),
            {"start_time", "time_zone"},
        ),
    ],
)
def test_bad_series_requests_name_every_bad_field(arguments: Any, fields: set[str]) -> None:
    with pytest.raises(InvalidArgument) as raised:
        series_query(*arguments)
    assert {v.field for v in raised.value.violations} == fields


async def test_too_many_buckets_is_invalid_and_reads_nothing(deps: Dependencies) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    query = series_query(
        stamp(start), stamp(start + timedelta(hours=MAX_BUCKETS + 1)), "", SeriesInterval.HOUR, ""
    )
    with pytest.raises(InvalidArgument) as raised:
        await get_revenue_series(deps.uow, query)
    assert [v.field for v in raised.value.violations] == ["end_time"]
    exactly = series_query(
        stamp(start), stamp(start + timedelta(hours=MAX_BUCKETS)), "", SeriesInterval.HOUR, ""
    )
    assert len((await get_revenue_series(deps.uow, exactly)).buckets) == MAX_BUCKETS


async def test_series_follow_payments_and_refunds_made_by_the_service(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    made = []
    for n, method in enumerate(("pm_card_visa", "pm_card_visa", "pm_card_chargeDeclined")):
        command = CreatePayment(
            request_id=f"an-{n}",
            order_id=f"an-order-{n}",
            user_id="user-1",
            amount=AmountInput("BHD", 1250 + n),
            payment_method_id=method,
            confirm=True,
        )
        made.append((await create_payment(deps, "svc", command)).resource)
    await create_refund(
        deps, "svc", CreateRefund("an-refund", made[0].id, AmountInput("BHD", 250), "")
    )
    await create_refund(deps, "svc", CreateRefund("an-refund-all", made[1].id, None, ""))
    async with engine.connect() as connection:
        stored = (await connection.execute(payments.select())).all()
    found = [
        Row(
            r.create_time,
            r.currency_code,
            r.provider,
            PaymentState(r.state),
            r.amount,
            r.amount_captured,
            r.amount_refunded,
        )
        for r in stored
    ]
    assert sorted(r.state for r in found) == sorted(
        [PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED, PaymentState.FAILED]
    )
    start = min(r.create_time for r in found).replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(days=2)
    await check_series(deps, found, start, end, SeriesInterval.DAY, "Asia/Kathmandu", "")
    await check_series(deps, found, start, end, SeriesInterval.HOUR, "UTC", "BHD")


async def test_roll_up_moves_every_change_once(deps: Dependencies, engine: AsyncEngine) -> None:
    moment = datetime(2026, 5, 5, 10, 30, tzinfo=UTC)
    found = [Row(moment, "EUR", "mock", PaymentState.SUCCEEDED, 900, 900, n) for n in range(5)]
    await insert(engine, found)
    found = await update(engine, found, [(0, PaymentState.FAILED, 0, 0)])
    assert await roll_up_revenue(deps.uow, batch=2) == 6  # 5 inserts, then minus one
    assert await roll_up_revenue(deps.uow) == 0
    async with engine.connect() as connection:
        hours = (await connection.execute(sa.select(payment_revenue_hours))).all()
        left = await connection.scalar(
            sa.select(sa.func.count()).select_from(payment_revenue_changes)
        )
    assert [
        (h.hour, h.currency_code, h.payment_count, h.amount_captured, h.amount_refunded)
        for h in hours
    ] == [(moment.replace(minute=0), "EUR", 4, 3600, 1 + 2 + 3 + 4)]
    assert left == 0
