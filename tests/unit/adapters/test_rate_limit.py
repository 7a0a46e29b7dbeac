"""The in-process token bucket, on a clock the test controls."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.adapters.rate_limit import LocalTokenBucket


def test_a_full_bucket_lets_burst_through_then_says_how_long_to_wait() -> None:
    bucket = LocalTokenBucket(rate=2, burst=3)
    assert [bucket.take_now("a", 100.0) for _ in range(3)] == [0, 0, 0]
    assert bucket.take_now("a", 100.0) == pytest.approx(0.5)
    assert bucket.take_now("b", 100.0) == 0  # every caller has a bucket of its own
    assert bucket.take_now("a", 100.5) == 0  # refilled one token


@given(
    rate=st.floats(min_value=0.01, max_value=1000),
    burst=st.integers(min_value=1, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=10), max_size=60),
)
def test_never_more_than_burst_plus_refill(rate: float, burst: int, gaps: list[float]) -> None:
    bucket = LocalTokenBucket(rate, burst)
    now, allowed = 0.0, 0
    for gap in gaps:
        now += gap
        wait = bucket.take_now("k", now)
        assert wait >= 0
        allowed += wait == 0
    assert allowed <= burst + rate * now + 1e-6


@given(rate=st.floats(min_value=0.01, max_value=1000), burst=st.integers(1, 50))
def test_waiting_the_answer_is_enough(rate: float, burst: int) -> None:
    bucket = LocalTokenBucket(rate, burst)
    for _ in range(burst):
        bucket.take_now("k", 0.0)
    wait = bucket.take_now("k", 0.0)
    assert wait > 0
    assert bucket.take_now("k", wait * (1 + 1e-9)) == 0
