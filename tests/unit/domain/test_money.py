"""Tests for Money and the validation of amounts from callers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from server.domain.currencies import MINOR_UNIT_EXPONENTS
from server.domain.errors import FieldViolation, InvalidArgument, Validator
from server.domain.money import MAX_MINOR_UNITS, Money, check_amount, parse_amount

LIMIT = 10**12
KNOWN = sorted(MINOR_UNIT_EXPONENTS)

currencies = st.one_of(
    st.sampled_from(KNOWN),
    st.text(max_size=5),
    st.sampled_from(["usd", "Usd", "US", "USDD", " USD", "USD ", "XXX", "XAU", "HRK", ""]),
)
amounts = st.one_of(
    st.integers(),
    st.integers(min_value=-3, max_value=3),
    st.integers(min_value=LIMIT - 3, max_value=LIMIT + 3),
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
    st.integers(min_value=-(2**64), max_value=-(2**63) + 2),
)
fields = st.sampled_from(["amount", "amount_to_capture", "price", "a.b"])


def expected_fields(field: str, currency_code: str, minor_units: int) -> set[str]:
    bad: set[str] = set()
    if currency_code not in MINOR_UNIT_EXPONENTS:
        bad.add(f"{field}.currency_code")
    if not 0 < minor_units <= LIMIT:
        bad.add(f"{field}.minor_units")
    return bad


def test_max_minor_units() -> None:
    assert MAX_MINOR_UNITS == LIMIT


# --- check_amount / parse_amount ---------------------------------------------------------------


@given(fields, currencies, amounts)
@example("amount", "USD", 1)
@example("amount", "USD", LIMIT)
@example("amount", "USD", LIMIT + 1)
@example("amount", "USD", 0)
@example("amount", "usd", 0)
def test_check_amount_accepts_exactly_known_currency_and_positive_amount_in_range(
    field: str, currency_code: str, minor_units: int
) -> None:
    validator = Validator()
    money = check_amount(validator, field, currency_code, minor_units)
    bad = expected_fields(field, currency_code, minor_units)
    assert {violation.field for violation in validator.violations} == bad
    assert len(validator.violations) == len(bad)
    if bad:
        assert money is None
    else:
        assert money == Money(currency_code, minor_units)


@given(fields, currencies, amounts)
def test_parse_amount_raises_only_invalid_argument(
    field: str, currency_code: str, minor_units: int
) -> None:
    bad = expected_fields(field, currency_code, minor_units)
    if not bad:
        assert parse_amount(field, currency_code, minor_units) == Money(currency_code, minor_units)
        return
    with pytest.raises(InvalidArgument) as caught:
        parse_amount(field, currency_code, minor_units)
    assert {violation.field for violation in caught.value.violations} == bad
    assert caught.value.reason == "INVALID_ARGUMENT"


def test_check_amount_keeps_earlier_violations() -> None:
    validator = Validator()
    validator.add("request_id", "is required")
    assert check_amount(validator, "amount", "USD", 5) == Money("USD", 5)
    assert check_amount(validator, "amount", "ABC", -1) is None
    assert [violation.field for violation in validator.violations] == [
        "request_id",
        "amount.currency_code",
        "amount.minor_units",
    ]


@pytest.mark.parametrize(
    ("currency_code", "minor_units", "violations"),
    [
        (
            "usd",
            100,
            [
                FieldViolation(
                    "amount.currency_code",
                    "must be an upper-case ISO 4217 currency code, for example USD",
                )
            ],
        ),
        ("USD", 0, [FieldViolation("amount.minor_units", "must be greater than zero")]),
        ("USD", -5, [FieldViolation("amount.minor_units", "must be greater than zero")]),
        (
            "USD",
            LIMIT + 1,
            [FieldViolation("amount.minor_units", f"must be at most {LIMIT}")],
        ),
    ],
)
def test_parse_amount_violations(
    currency_code: str, minor_units: int, violations: list[FieldViolation]
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_amount("amount", currency_code, minor_units)
    assert list(caught.value.violations) == violations


# --- Money -------------------------------------------------------------------------------------


@given(
    st.sampled_from(KNOWN),
    st.integers(min_value=0, max_value=LIMIT // 2),
    st.integers(min_value=0, max_value=LIMIT // 2),
)
def test_add_and_sub_in_one_currency(currency_code: str, a: int, b: int) -> None:
    total = Money(currency_code, a) + Money(currency_code, b)
    assert total == Money(currency_code, a + b)
    assert total - Money(currency_code, b) == Money(currency_code, a)


@given(
    st.lists(st.sampled_from(KNOWN), min_size=2, max_size=2, unique=True),
    st.integers(min_value=0, max_value=100),
)
def test_mixing_currencies_raises_value_error(codes: list[str], units: int) -> None:
    first, second = Money(codes[0], units), Money(codes[1], units)
    with pytest.raises(ValueError, match="do not mix"):
        first + second
    with pytest.raises(ValueError, match="do not mix"):
        first - second


def test_sub_below_zero_raises_value_error() -> None:
    with pytest.raises(ValueError, match="out of range"):
        Money("USD", 1) - Money("USD", 2)


def test_add_above_max_raises_value_error() -> None:
    with pytest.raises(ValueError, match="out of range"):
        Money("USD", LIMIT) + Money("USD", 1)


@pytest.mark.parametrize(
    ("currency_code", "minor_units"),
    [("USD", -1), ("USD", LIMIT + 1), ("usd", 1), ("XXX", 1), ("", 0)],
)
def test_money_refuses_invalid_values(currency_code: str, minor_units: int) -> None:
    with pytest.raises(ValueError, match=r"unknown currency|out of range"):
        Money(currency_code, minor_units)


def test_an_unknown_currency_is_named() -> None:
    with pytest.raises(ValueError, match=r"^unknown currency 'usd'$"):
        Money("usd", 1)


def test_zero() -> None:
    assert Money.zero("EUR") == Money("EUR", 0)


@pytest.mark.parametrize(
    ("currency_code", "minor_units", "text"),
    [
        ("USD", 1050, "10.50 USD"),
        ("USD", 5, "0.05 USD"),
        ("USD", 0, "0.00 USD"),
        ("USD", 100, "1.00 USD"),
        ("JPY", 500, "500 JPY"),
        ("JPY", 0, "0 JPY"),
        ("BHD", 1234, "1.234 BHD"),
        ("BHD", 7, "0.007 BHD"),
        ("CLF", 12345, "1.2345 CLF"),
        ("EUR", LIMIT, "10000000000.00 EUR"),
    ],
)
def test_str(currency_code: str, minor_units: int, text: str) -> None:
    assert str(Money(currency_code, minor_units)) == text


@given(st.sampled_from(KNOWN), st.integers(min_value=0, max_value=LIMIT))
def test_str_reads_back_as_the_same_amount(currency_code: str, minor_units: int) -> None:
    number, code = str(Money(currency_code, minor_units)).split(" ")
    assert code == currency_code
    exponent = MINOR_UNIT_EXPONENTS[currency_code]
    if exponent == 0:
        assert "." not in number
    else:
        assert len(number.split(".")[1]) == exponent
    assert Decimal(number).scaleb(exponent) == minor_units
