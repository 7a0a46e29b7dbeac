"""W3C tracestate fitting: what is kept and what is dropped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.observability.trace_state import MAX_LENGTH, MAX_MEMBERS, fitted_tracestate

member = st.builds(
    lambda key, size: f"{key}={'v' * size}",
    st.from_regex(r"[a-z][a-z0-9]{0,9}", fullmatch=True),
    st.integers(min_value=1, max_value=300),
)


@given(st.lists(member, max_size=50))
def test_the_result_fits_and_keeps_whole_members_in_order(members: list[str]) -> None:
    fitted = fitted_tracestate(",".join(members))
    assert len(fitted) <= MAX_LENGTH
    kept = fitted.split(",") if fitted else []
    assert len(kept) <= MAX_MEMBERS
    remaining = iter(members)
    assert all(any(m == k for m in remaining) for k in kept)  # a subsequence


@given(st.lists(member, max_size=MAX_MEMBERS))
def test_a_header_that_fits_is_left_alone(members: list[str]) -> None:
    header = ",".join(members)
    if len(header) <= MAX_LENGTH:
        assert fitted_tracestate(header) == header


def test_long_members_go_first_then_members_from_the_end() -> None:
    short = [f"k{n}=" + "s" * 40 for n in range(12)]
    header = ",".join([short[0], "big=" + "x" * 200, *short[1:]])
    fitted = fitted_tracestate(header)
    assert "big=" not in fitted
    kept = fitted.split(",")
    assert kept == short[: len(kept)]
    assert len(",".join(short[: len(kept) + 1])) > MAX_LENGTH
