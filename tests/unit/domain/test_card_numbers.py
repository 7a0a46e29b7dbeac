"""The card number detector: every Luhn-valid 13-19 digit number, in any common layout."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.card_numbers import MASK, contains_card_number, luhn_valid, mask_card_numbers
from tests.support.card_numbers import (
    NOT_CARD_NUMBERS,
    PUBLISHED_TEST_CARDS,
    check_digit,
    luhn_cards,
)

cards = luhn_cards()
words = st.text(alphabet=string.ascii_letters + " .,:#-", max_size=20)


def grouped(card: str, size: int, separator: str) -> str:
    return separator.join(card[i : i + size] for i in range(0, len(card), size))


@given(cards, words, words)
def test_a_card_number_in_text_is_found(card: str, before: str, after: str) -> None:
    assert contains_card_number(f"{before} {card} {after}")


@given(cards, st.sampled_from([4, 5, 6]), st.sampled_from([" ", "-"]))
def test_grouped_card_numbers_are_found(card: str, size: int, separator: str) -> None:
    assert contains_card_number(f"card {grouped(card, size, separator)} thanks")


@given(cards, st.text(alphabet="0123456789", min_size=1, max_size=6))
def test_a_card_number_next_to_other_digit_groups_is_found(card: str, other: str) -> None:
    assert contains_card_number(f"order {other} {card}")


@given(cards)
def test_a_wrong_check_digit_is_not_a_card_number(card: str) -> None:
    wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
    assert not contains_card_number(f"ref {wrong}")


@given(st.text(alphabet="0123456789", max_size=12), words)
def test_fewer_than_13_digits_are_never_a_card_number(digits: str, text: str) -> None:
    assert not contains_card_number(f"{text}{digits}{text}")


@pytest.mark.parametrize("card", PUBLISHED_TEST_CARDS.values(), ids=PUBLISHED_TEST_CARDS.keys())
def test_published_test_cards_are_card_numbers(card: str) -> None:
    assert luhn_valid(card)
    assert contains_card_number(f"paid with {card}")
    assert contains_card_number(f"paid with {grouped(card, 4, ' ')}")
    assert mask_card_numbers(f"paid with {card}.") == f"paid with {MASK}."


@pytest.mark.parametrize("number", NOT_CARD_NUMBERS.values(), ids=NOT_CARD_NUMBERS.keys())
def test_hand_checked_invalid_numbers_are_not_card_numbers(number: str) -> None:
    assert not luhn_valid(number)
    assert not contains_card_number(f"ref {number}")


@pytest.mark.parametrize(
    "text", ["order 12345", "4242424242424242424242", "2026-11-22 04:16", "4000-0566-5566-5557"]
)
def test_ordinary_text(text: str) -> None:
    assert not contains_card_number(text)


@given(st.text(alphabet="0123456789", min_size=1, max_size=40))
def test_luhn_agrees_with_an_independent_check_digit(body: str) -> None:
    right = check_digit(body)
    assert luhn_valid(body + right)
    assert not any(luhn_valid(body + wrong) for wrong in "0123456789" if wrong != right)


@given(cards, words, words, st.sampled_from([" ", "-", ""]))
def test_masking_leaves_no_card_number(card: str, before: str, after: str, sep: str) -> None:
    text = f"{before} {grouped(card, 4, sep) if sep else card} {after}"
    masked = mask_card_numbers(text)
    assert not contains_card_number(masked)
    assert MASK in masked
    assert masked.startswith(before)


@given(st.text(alphabet=string.ascii_letters + string.digits + " -:", max_size=60))
def test_masking_changes_only_what_holds_a_card_number(text: str) -> None:
    assert (mask_card_numbers(text) == text) == (not contains_card_number(text))
