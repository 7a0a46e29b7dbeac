"""Billing period boundaries: anchored, clamped to month ends, never drifting."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from server.domain.billing_period import Interval, period_boundary

anchors = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC)
)
counts = st.integers(min_value=1, max_value=36)
steps = st.integers(min_value=0, max_value=200)
# Yearly plans bill at most every three years.
year_counts = st.integers(min_value=1, max_value=3)


def test_month_ends_clamp_and_come_back_to_the_anchor_day() -> None:
    anchor = datetime(2027, 1, 31, 9, 30, tzinfo=UTC)
    got = [period_boundary(anchor, Interval.MONTH, 1, n).date().isoformat() for n in range(5)]
    assert got == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31"]
    leap = datetime(2028, 1, 31, tzinfo=UTC)
    assert period_boundary(leap, Interval.MONTH, 1, 1).day == 29


def test_a_29_february_anchor_falls_on_28_february_in_other_years() -> None:
    anchor = datetime(2028, 2, 29, tzinfo=UTC)
    years = [period_boundary(anchor, Interval.YEAR, 1, n).date() for n in range(5)]
    assert [d.isoformat() for d in years] == [
        "2028-02-29",
        "2029-02-28",
        "2030-02-28",
        "2031-02-28",
        "2032-02-29",
    ]


@given(anchors, counts, steps)
def test_months_keep_the_anchor_day_unless_the_month_is_shorter(
    anchor: datetime, count: int, n: int
) -> None:
    boundary = period_boundary(anchor, Interval.MONTH, count, n)
    months = (boundary.year - anchor.year) * 12 + boundary.month - anchor.month
    assert months == count * n
    last_day = calendar.monthrange(boundary.year, boundary.month)[1]
    assert boundary.day == min(anchor.day, last_day)
    assert boundary.time() == anchor.time()
    assert boundary.tzinfo is UTC


@given(anchors, st.sampled_from(list(Interval)), year_counts, steps)
def test_boundaries_strictly_increase_and_start_at_the_anchor(
    anchor: datetime, interval: Interval, count: int, n: int
) -> None:
    assert period_boundary(anchor, interval, count, 0) == anchor
    this = period_boundary(anchor, interval, count, n)
    following = period_boundary(anchor, interval, count, n + 1)
    assert following > this


@given(anchors, counts, steps)
def test_days_and_weeks_are_exact(anchor: datetime, count: int, n: int) -> None:
    assert period_boundary(anchor, Interval.DAY, count, n) == anchor + timedelta(days=count * n)
    assert period_boundary(anchor, Interval.WEEK, count, n) == anchor + timedelta(weeks=count * n)


@given(anchors, year_counts, steps)
def test_a_year_is_twelve_months(anchor: datetime, count: int, n: int) -> None:
    assert period_boundary(anchor, Interval.YEAR, count, n) == period_boundary(
        anchor, Interval.MONTH, 12 * count, n
    )
