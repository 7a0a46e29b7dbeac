"""The refund window rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.errors import FailedPrecondition
from server.domain.refund_window import check_refund_window

CAPTURED = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)


@given(
    window=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)),
    elapsed=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=4000)),
)
def test_open_exactly_while_less_than_the_window_has_passed(
    window: timedelta, elapsed: timedelta
) -> None:
    now = CAPTURED + elapsed
    if elapsed < window:
        check_refund_window(CAPTURED, now, window, overridden=False)
    else:
        with pytest.raises(FailedPrecondition) as closed:
            check_refund_window(CAPTURED, now, window, overridden=False)
        assert closed.value.reason == "REFUND_WINDOW_CLOSED"
        assert closed.value.metadata["window_closed_at"] == (CAPTURED + window).isoformat()
    # An override always passes.
    check_refund_window(CAPTURED, now, window, overridden=True)


def test_a_payment_that_took_no_money_has_no_window() -> None:
    check_refund_window(None, CAPTURED, timedelta(0), overridden=False)


def test_a_closed_window_says_when_it_closed_in_words() -> None:
    with pytest.raises(FailedPrecondition) as closed:
        check_refund_window(
            CAPTURED, CAPTURED + timedelta(days=91), timedelta(days=90), overridden=False
        )
    assert str(closed.value) == (
        "the refund window closed at 2026-05-01T23:30:00+00:00, 90 days after the capture"
    )
    assert dict(closed.value.metadata) == {
        "capture_time": "2026-01-31T23:30:00+00:00",
        "window_closed_at": "2026-05-01T23:30:00+00:00",
        "window_days": "90",
    }
