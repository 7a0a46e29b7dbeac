"""A ListPayments page token is bound to its query's fingerprint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from server.domain.payment_states import PaymentState
from server.service.payments.pages import PaymentQuery, SortKey, TimeBound

EVERY_FILTER = PaymentQuery(
    user_id="u-1",
    order_id="o-1",
    states=frozenset({PaymentState.SUCCEEDED, PaymentState.FAILED}),
    excluded_states=frozenset({PaymentState.CANCELED}),
    create_time=(
        TimeBound(">=", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        TimeBound("<", datetime(2026, 2, 1, tzinfo=timezone(timedelta(hours=2)))),
    ),
    sort=SortKey.AMOUNT,
    descending=False,
)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (PaymentQuery(), "7299911c9d53f409"),
        (PaymentQuery(user_id="u-1", page_size=20), "550af76736b96920"),
        (EVERY_FILTER, "a60bcfde12a241f0"),
    ],
)
def test_fingerprints_do_not_change_between_releases(query: PaymentQuery, expected: str) -> None:
    """A token a client holds across a deploy must still fit its query."""
    assert query.fingerprint() == expected
    assert query.fingerprint() == expected  # the second time from the cache


def test_the_same_instant_at_another_offset_is_another_filter() -> None:
    """As before the fingerprints were cached: equal queries, but not the same text."""
    moment = datetime(2026, 1, 2, 3, tzinfo=UTC)
    at_utc = PaymentQuery(create_time=(TimeBound(">=", moment),))
    elsewhere = PaymentQuery(
        create_time=(TimeBound(">=", moment.astimezone(timezone(timedelta(hours=2)))),)
    )
    assert at_utc == elsewhere
    assert at_utc.fingerprint() != elsewhere.fingerprint()


def test_page_size_and_cursor_are_not_part_of_the_query_shape() -> None:
    assert (
        PaymentQuery(user_id="u", page_size=5).fingerprint()
        == PaymentQuery(user_id="u", page_size=50).fingerprint()
    )
