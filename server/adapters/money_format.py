"""Money written for a person in a locale (CLDR through Babel)."""

from __future__ import annotations

from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency

from server.domain.currencies import minor_unit_exponent
from server.domain.errors import FieldViolation, InvalidArgument
from server.domain.money import Money

DEFAULT_LOCALE = "en_US"


def parse_locale(name: str, field: str = "locale") -> Locale:
    """A CLDR locale from "de_DE" or "de-DE"; InvalidArgument for one CLDR does not know."""
    try:
        return Locale.parse((name or DEFAULT_LOCALE).replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        raise InvalidArgument(
            [FieldViolation(field, "must be a known locale such as en_US or de_DE")]
        ) from None


def format_money(money: Money, locale: Locale) -> str:
    """For example "$1,234.50" (en_US), "1.234,50 €" (de_DE), "￥1,235" (ja_JP, JPY)."""
    exponent = minor_unit_exponent(money.currency_code) or 0
    amount = Decimal(money.minor_units).scaleb(-exponent)
    # Never rounded to CLDR's digits: the receipt shows what was charged, to the unit.
    return format_currency(amount, money.currency_code, locale=locale, decimal_quantization=False)
