"""Tests for the ISO 4217 currency table."""

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.currencies import MINOR_UNIT_EXPONENTS, minor_unit_exponent


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("BHD", 3),
        ("KWD", 3),
        ("TND", 3),
        ("CLF", 4),
        ("ISK", 0),
        ("VND", 0),
        ("XOF", 0),
    ],
)
def test_known_exponents(code: str, exponent: int) -> None:
    assert minor_unit_exponent(code) == exponent


@pytest.mark.parametrize("code", ["HRK", "XAU", "XXX"])
def test_withdrawn_or_non_chargeable_codes_are_unknown(code: str) -> None:
    assert minor_unit_exponent(code) is None


@pytest.mark.parametrize("code", ["usd", "Eur", "jpY"])
def test_lookup_is_case_sensitive(code: str) -> None:
    assert minor_unit_exponent(code) is None


def test_every_key_is_three_upper_case_ascii_letters() -> None:
    for code in MINOR_UNIT_EXPONENTS:
        assert len(code) == 3, code
        assert set(code) <= set(string.ascii_uppercase), code


def test_every_exponent_is_a_known_iso_4217_minor_unit() -> None:
    assert set(MINOR_UNIT_EXPONENTS.values()) <= {0, 2, 3, 4}


# Plain text almost never hits a real code, so known codes are mixed in.
@given(st.one_of(st.text(), st.sampled_from(sorted(MINOR_UNIT_EXPONENTS))))
def test_only_codes_in_the_table_have_an_exponent(text: str) -> None:
    exponent = minor_unit_exponent(text)
    assert exponent is None or MINOR_UNIT_EXPONENTS[text] == exponent
