"""Tests for prefixed ULID resource ids."""

from __future__ import annotations

import string
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from server.domain.ids import PAYMENT_ID, IdKind, new_ulid

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
EXCLUDED = "ILOU"
VALID = "pay_01JD0000000000000000000000"


def has_the_shape(text: str, prefix: str = "pay") -> bool:
    """An oracle independent of the regex: prefix, underscore, 26 Crockford characters."""
    head, sep, tail = text.partition("_")
    return head == prefix and sep == "_" and len(tail) == 26 and all(c in CROCKFORD for c in tail)


def decode(ulid: str) -> int:
    value = 0
    for char in ulid:
        value = value * 32 + CROCKFORD.index(char)
    return value


def test_crockford_alphabet_excludes_i_l_o_u() -> None:
    assert len(CROCKFORD) == 32
    assert set(CROCKFORD) == set(string.digits + string.ascii_uppercase) - set(EXCLUDED)


def test_new_payment_id_matches() -> None:
    for _ in range(50):
        payment_id = PAYMENT_ID.new()
        assert PAYMENT_ID.matches(payment_id), payment_id
        assert has_the_shape(payment_id)


def test_new_ids_are_unique() -> None:
    assert len({PAYMENT_ID.new() for _ in range(1000)}) == 1000


def test_example_matches() -> None:
    assert PAYMENT_ID.example == VALID
    assert PAYMENT_ID.matches(PAYMENT_ID.example)


def test_new_ulid_encodes_the_time_in_its_first_48_bits() -> None:
    now_ms = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    ulid = new_ulid(now_ms)
    assert len(ulid) == 26
    assert decode(ulid) >> 80 == now_ms


def test_new_ulid_defaults_to_the_current_time() -> None:
    before = int(time.time() * 1000)
    ulid = new_ulid()
    after = int(time.time() * 1000)
    assert before <= decode(ulid) >> 80 <= after


@given(
    st.lists(st.integers(min_value=0, max_value=2**48 - 1), min_size=2, max_size=20, unique=True)
)
def test_ids_sort_by_creation_time(times: list[int]) -> None:
    ordered = sorted(times)
    ulids = [new_ulid(now_ms) for now_ms in ordered]
    assert sorted(ulids) == ulids


def test_ids_sort_by_creation_time_one_millisecond_apart() -> None:
    base = 1_767_225_600_000
    ulids = [new_ulid(base + step) for step in range(200)]
    assert sorted(ulids) == ulids


@pytest.mark.parametrize(
    "text",
    [
        "",
        "pay_",
        "pay",
        "ref_01JD0000000000000000000000",
        "PAY_01JD0000000000000000000000",
        "pay-01JD0000000000000000000000",
        "pay01JD0000000000000000000000",
        "xpay_01JD0000000000000000000000",
        "pay_01jd0000000000000000000000",
        "pay_01JD000000000000000000000",
        "pay_01JD00000000000000000000000",
        "pay_01JD000000000000000000000I",
        "pay_01JD000000000000000000000L",
        "pay_01JD000000000000000000000O",
        "pay_01JD000000000000000000000U",
        "pay_01JD0000000000000000000000\n",
        " pay_01JD0000000000000000000000",
        "pay_01JD0000000000000000000000 ",
        "pay_01JD00000000000000000000\uff100",
        "pay_01JD00000000000000000000\u06630",
    ],
)
def test_matches_rejects(text: str) -> None:
    assert not PAYMENT_ID.matches(text)


def test_prefix_is_escaped() -> None:
    kind = IdKind("a.b")
    assert kind.matches("a.b_01JD0000000000000000000000")
    assert not kind.matches("axb_01JD0000000000000000000000")


id_like = st.one_of(
    st.text(),
    st.builds(
        lambda prefix, tail: f"{prefix}_{tail}",
        st.sampled_from(["pay", "PAY", "pa", "payy", "ref"]),
        st.text(alphabet=CROCKFORD + EXCLUDED + "ilou01jdz_ -", min_size=24, max_size=28),
    ),
    st.builds(lambda tail: f"pay_{tail}", st.text(alphabet=CROCKFORD, min_size=26, max_size=26)),
)


@given(id_like)
@example(VALID)
@example(VALID.lower())
def test_arbitrary_text_matches_exactly_when_it_has_the_shape(text: str) -> None:
    assert PAYMENT_ID.matches(text) is has_the_shape(text)
