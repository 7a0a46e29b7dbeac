"""A customer's receipt for a payment or a refund, numbered without gaps per year."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from server.domain.money import Money

# R-2026-000123: six digits at least; the 1,000,000th receipt of a year gets seven.
_NUMBER = re.compile(r"R-(\d{4})-(\d{6,})")


class ReceiptKind(StrEnum):
    PAYMENT = "PAYMENT"
    REFUND = "REFUND"


def receipt_number(year: int, sequence: int) -> str:
    if sequence < 1:
        raise ValueError("receipt sequences start at 1")
    return f"R-{year:04d}-{sequence:06d}"


def parse_receipt_number(number: str) -> tuple[int, int] | None:
    """(year, sequence) of a well-formed receipt number, None otherwise."""
    match = _NUMBER.fullmatch(number)
    return (int(match[1]), int(match[2])) if match else None


@dataclass(frozen=True, slots=True)
class Card:
    brand: str
    last4: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """Written when the money moved (`issue_time`); numbered right after, in its own step.

    `number` is empty until then: the numbering never holds up the payment's write.
    """

    # The payment's or the refund's id: one receipt each.
    id: str
    kind: ReceiptKind
    payment_id: str
    user_id: str
    order_id: str
    description: str
    amount: Money
    issue_time: datetime
    number: str = ""
    merchant: str = ""
    card: Card | None = None
    customer_email: str = ""
    number_time: datetime | None = None

    @property
    def year(self) -> int:
        """The year whose sequence numbers it: the year (UTC) in which the money moved."""
        return self.issue_time.year
