"""Reading payments: GetPayment and ListPayments with opaque keyset page tokens."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from server.domain.errors import FieldViolation, InvalidArgument, NotFound
from server.domain.ids import PAYMENT_ID
from server.domain.payment import Payment
from server.domain.payment_states import PaymentState

if TYPE_CHECKING:
    from server.service.unit_of_work import UnitOfWorkFactory

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class SortKey(StrEnum):
    CREATE_TIME = "create_time"
    AMOUNT = "amount"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the previous page ended: its last row's sort value and id."""

    value: str | int
    id: str


@dataclass(frozen=True, slots=True)
class TimeBound:
    op: str  # one of <, <=, >, >=
    moment: datetime


@dataclass(frozen=True, slots=True)
class PaymentQuery:
    user_id: str | None = None
    order_id: str | None = None
    states: frozenset[PaymentState] | None = None
    excluded_states: frozenset[PaymentState] = frozenset()
    create_time: tuple[TimeBound, ...] = ()
    sort: SortKey = SortKey.CREATE_TIME
    descending: bool = True
    page_size: int = DEFAULT_PAGE_SIZE
    after: Cursor | None = field(default=None, compare=False)

    def fingerprint(self) -> str:
        """Identifies the filter and order, so a token is only used with the query it came from."""
        shape = {
            "u": self.user_id,
            "o": self.order_id,
            "s": sorted(self.states) if self.states is not None else None,
            "x": sorted(self.excluded_states),
            "t": [(b.op, b.moment.isoformat()) for b in self.create_time],
            "k": self.sort.value,
            "d": self.descending,
        }
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class PaymentPage:
    payments: list[Payment]
    next_cursor: Cursor | None


def sort_value(payment: Payment, sort: SortKey) -> str | int:
    if sort is SortKey.AMOUNT:
        return payment.amount.minor_units
    return payment.create_time.isoformat()


def encode_page_token(query: PaymentQuery, cursor: Cursor) -> str:
    raw = json.dumps({"v": cursor.value, "i": cursor.id, "q": query.fingerprint()})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(query: PaymentQuery, token: str) -> Cursor:
    """The cursor in `token`; INVALID_ARGUMENT if it is not ours or not for this query."""
    bad = InvalidArgument(
        [FieldViolation("page_token", "is not a page token from this query; start without one")],
        reason="INVALID_PAGE_TOKEN",
    )
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        value, last_id, fingerprint = raw["v"], raw["i"], raw["q"]
    except (ValueError, TypeError, KeyError):
        raise bad from None
    expected_type = int if query.sort is SortKey.AMOUNT else str
    if (
        fingerprint != query.fingerprint()
        or not isinstance(value, expected_type)
        or not isinstance(last_id, str)
        or not PAYMENT_ID.matches(last_id)
    ):
        raise bad
    if expected_type is str:
        try:
            datetime.fromisoformat(str(value))
        except ValueError:
            raise bad from None
    return Cursor(value, last_id)


async def get_payment(uow_factory: UnitOfWorkFactory, payment_id: str) -> Payment:
    async with uow_factory(read_only=True) as uow:
        payment = await uow.payments.get(payment_id)
    if payment is None:
        raise NotFound(f"payment {payment_id} not found", reason="PAYMENT_NOT_FOUND")
    return payment


async def list_payments(
    uow_factory: UnitOfWorkFactory, query: PaymentQuery, page_token: str = ""
) -> tuple[list[Payment], str]:
    """One page of payments and the token of the next ("" on the last page)."""
    if page_token:
        query = replace(query, after=decode_page_token(query, page_token))
    async with uow_factory(read_only=True) as uow:
        page = await uow.payments.list(query)
    token = encode_page_token(query, page.next_cursor) if page.next_cursor else ""
    return page.payments, token
