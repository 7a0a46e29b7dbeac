"""Reading payments: GetPayment and ListPayments with opaque keyset page tokens."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from server.domain.errors import NotFound
from server.domain.ids import PAYMENT_ID
from server.domain.payment import Payment
from server.domain.payment_states import PaymentState
from server.service import page_tokens

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
    return page_tokens.encode(query.fingerprint(), cursor.value, cursor.id)


def decode_page_token(query: PaymentQuery, token: str) -> Cursor:
    """The cursor in `token`; INVALID_ARGUMENT if it is not ours or not for this query."""
    value, last_id = page_tokens.decode(query.fingerprint(), token, PAYMENT_ID)
    if query.sort is SortKey.AMOUNT:
        if not isinstance(value, int):
            raise page_tokens.invalid_page_token()
        return Cursor(value, last_id)
    return Cursor(page_tokens.decode_time(value).isoformat(), last_id)


def payment_not_found(payment_id: str) -> NotFound:
    return NotFound(f"payment {payment_id} not found", reason="PAYMENT_NOT_FOUND")


async def get_payment(
    uow_factory: UnitOfWorkFactory, payment_id: str, owner: str | None = None
) -> Payment:
    """The payment; NOT_FOUND also when `owner` is set and it is another user's."""
    async with uow_factory(read_only=True) as uow:
        payment = await uow.payments.get(payment_id)
    if payment is None or (owner is not None and payment.user_id != owner):
        raise payment_not_found(payment_id)
    return payment


async def list_payments(
    uow_factory: UnitOfWorkFactory,
    query: PaymentQuery,
    page_token: str = "",
    owner: str | None = None,
) -> tuple[list[Payment], str]:
    """One page of payments and the token of the next ("" on the last page).

    With `owner`, only that user's payments: a filter on another user_id finds none.
    """
    if owner is not None:
        if query.user_id not in (None, owner):
            return [], ""
        query = replace(query, user_id=owner)
    if page_token:
        query = replace(query, after=decode_page_token(query, page_token))
    async with uow_factory(read_only=True) as uow:
        page = await uow.payments.list(query)
    token = encode_page_token(query, page.next_cursor) if page.next_cursor else ""
    return page.payments, token
