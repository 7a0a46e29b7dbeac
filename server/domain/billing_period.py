"""Billing period arithmetic: the n-th period boundary counted from an anchor.

Boundaries are always computed from the anchor, never from the previous
boundary, so a month clamped short (Jan 31 -> Feb 28) does not drag later ones
(Mar 31 again).
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from enum import StrEnum


class Interval(StrEnum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    YEAR = "YEAR"


# Stripe's limit: no period longer than three years.
MAX_INTERVAL_COUNT = {
    Interval.DAY: 3 * 365,
    Interval.WEEK: 156,
    Interval.MONTH: 36,
    Interval.YEAR: 3,
}


def _add_months(anchor: datetime, months: int) -> datetime:
    index = anchor.year * 12 + anchor.month - 1 + months
    year, month = divmod(index, 12)
    day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
    return anchor.replace(year=year, month=month + 1, day=day)


def period_boundary(anchor: datetime, interval: Interval, count: int, n: int) -> datetime:
    """The start of period `n` (0 = the anchor) of `count` x `interval` periods."""
    units = count * n
    if interval is Interval.DAY:
        return anchor + timedelta(days=units)
    if interval is Interval.WEEK:
        return anchor + timedelta(weeks=units)
    if interval is Interval.MONTH:
        return _add_months(anchor, units)
    return _add_months(anchor, 12 * units)
