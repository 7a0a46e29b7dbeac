"""Receipt numbers and the money written on receipts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from babel.numbers import get_currency_symbol, parse_decimal
from hypothesis import given
from hypothesis import strategies as st

from server.adapters.money_format import format_money, parse_locale
from server.domain.currencies import MINOR_UNIT_EXPONENTS
from server.domain.errors import InvalidArgument
from server.domain.money import MAX_MINOR_UNITS, Money
from server.domain.receipt import parse_receipt_number, receipt_number


@given(year=st.integers(2000, 9999), sequence=st.integers(1, 10**9))
def test_numbers_read_back(year: int, sequence: int) -> None:
    number = receipt_number(year, sequence)
    assert parse_receipt_number(number) == (year, sequence)
    assert number.startswith(f"R-{year}-")
    assert len(number.rsplit("-", 1)[1]) == max(6, len(str(sequence)))


def test_the_format_is_the_one_finance_asked_for() -> None:
    assert receipt_number(2026, 123) == "R-2026-000123"
    assert parse_receipt_number("R-2026-00012") is None
    assert parse_receipt_number("pay_01J") is None
    with pytest.raises(ValueError, match="start at 1"):
        receipt_number(2026, 0)


@given(
    currency=st.sampled_from(sorted(MINOR_UNIT_EXPONENTS)),
    minor=st.integers(1, MAX_MINOR_UNITS),
    locale=st.sampled_from(["en_US", "de_DE", "fr_CH", "ja_JP", "hi_IN"]),
)
def test_the_written_amount_is_exactly_the_amount(currency: str, minor: int, locale: str) -> None:
    """Never rounded to CLDR's digits: what is written parses back to the charged amount."""
    parsed_locale = parse_locale(locale)
    written = format_money(Money(currency, minor), parsed_locale)
    bare = written.replace(get_currency_symbol(currency, parsed_locale), "")
    digits = "".join(ch for ch in bare if ch.isdigit() or ch in ".,'\u2019")
    number = parse_decimal(digits, locale=parsed_locale, strict=False)
    assert number == Decimal(minor).scaleb(-MINOR_UNIT_EXPONENTS[currency])


def test_locales_by_either_separator_and_unknown_ones_refused() -> None:
    assert str(parse_locale("de-DE")) == "de_DE"
    assert str(parse_locale("")) == "en_US"
    with pytest.raises(InvalidArgument) as invalid:
        parse_locale("xx_NOPE")
    assert invalid.value.violations[0].field == "locale"
