"""Money as an integer count of a currency's minor unit; never a float."""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.currencies import minor_unit_exponent
from server.domain.errors import InvalidArgument, Validator

# 10^12 minor units: far above any single charge a provider accepts (Stripe
# caps at 8 digits), while sums of millions of payments still fit in int64.
MAX_MINOR_UNITS = 10**12


@dataclass(frozen=True, slots=True, order=True)
class Money:
    """A non-negative amount; `parse_amount` is the door for amounts from callers."""

    currency_code: str
    minor_units: int

    def __post_init__(self) -> None:
        if minor_unit_exponent(self.currency_code) is None:
            raise ValueError(f"unknown currency {self.currency_code!r}")
        if not 0 <= self.minor_units <= MAX_MINOR_UNITS:
            raise ValueError(f"amount out of range: {self.minor_units}")

    @classmethod
    def zero(cls, currency_code: str) -> Money:
        return cls(currency_code, 0)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.currency_code, self.minor_units + other.minor_units)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.currency_code, self.minor_units - other.minor_units)

    def _same_currency(self, other: Money) -> None:
        if other.currency_code != self.currency_code:
            raise ValueError(f"{self.currency_code} and {other.currency_code} do not mix")

    def __str__(self) -> str:
        exponent = minor_unit_exponent(self.currency_code) or 0
        if exponent == 0:
            return f"{self.minor_units} {self.currency_code}"
        whole, fraction = divmod(self.minor_units, 10**exponent)
        return f"{whole}.{fraction:0{exponent}d} {self.currency_code}"


def check_amount(
    validator: Validator, field: str, currency_code: str, minor_units: int
) -> Money | None:
    """Validate a caller's positive amount, recording violations under `field`."""
    ok = validator.check(
        minor_unit_exponent(currency_code) is not None,
        f"{field}.currency_code",
        "must be an upper-case ISO 4217 currency code, for example USD",
    )
    if minor_units <= 0:
        validator.add(f"{field}.minor_units", "must be greater than zero")
        ok = False
    elif minor_units > MAX_MINOR_UNITS:
        validator.add(f"{field}.minor_units", f"must be at most {MAX_MINOR_UNITS}")
        ok = False
    return Money(currency_code, minor_units) if ok else None


def parse_amount(field: str, currency_code: str, minor_units: int) -> Money:
    """Like `check_amount`, raising InvalidArgument at once."""
    validator = Validator()
    money = check_amount(validator, field, currency_code, minor_units)
    validator.raise_if_any()
    if money is None:  # pragma: no cover - raise_if_any raised
        raise InvalidArgument(validator.violations)
    return money
