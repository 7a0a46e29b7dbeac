"""Reading refunds: GetRefund and ListRefunds (one payment's refunds, keyset page tokens)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from server.domain.errors import NotFound, Validator
from server.domain.ids import REFUND_ID
from server.domain.refund import Refund
from server.service import page_tokens
from server.service.payments.queries import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, get_payment
from server.service.payments.requests import check_payment_id

if TYPE_CHECKING:
    from server.service.unit_of_work import UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class RefundCursor:
    """The last refund of a page: the next page starts after it."""

    create_time: datetime
    id: str


@dataclass(frozen=True, slots=True)
class RefundQuery:
    payment_id: str
    page_size: int = DEFAULT_PAGE_SIZE
    after: RefundCursor | None = None


@dataclass(frozen=True, slots=True)
class RefundPage:
    refunds: list[Refund]
    more: bool


def check_refund_id(validator: Validator, value: str, name: str = "id") -> None:
    if validator.check(bool(value), name, "is required"):
        validator.check(
            REFUND_ID.matches(value), name, f"must be a refund id like {REFUND_ID.example}"
        )


def refund_query(payment_id: str, page_size: int) -> RefundQuery:
    validator = Validator()
    check_payment_id(validator, payment_id, "payment_id")
    validator.check(page_size >= 0, "page_size", "must not be negative")
    validator.raise_if_any()
    return RefundQuery(payment_id, min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE))


def encode_page_token(query: RefundQuery, cursor: RefundCursor) -> str:
    return page_tokens.encode(query.payment_id, cursor.create_time.isoformat(), cursor.id)


def decode_page_token(query: RefundQuery, token: str) -> RefundCursor:
    """The cursor in `token`; INVALID_ARGUMENT if it is not ours or not for this payment."""
    value, last_id = page_tokens.decode(query.payment_id, token, REFUND_ID)
    return RefundCursor(page_tokens.decode_time(value), last_id)


async def get_refund(
    uow_factory: UnitOfWorkFactory, refund_id: str, owner: str | None = None
) -> Refund:
    """The refund; NOT_FOUND also when `owner` is set and its payment is another user's."""
    validator = Validator()
    check_refund_id(validator, refund_id)
    validator.raise_if_any()
    async with uow_factory(read_only=True) as uow:
        refund = await uow.refunds.get(refund_id)
        payment = await uow.payments.get(refund.payment_id) if refund and owner else None
    if refund is None or (owner is not None and (payment is None or payment.user_id != owner)):
        raise NotFound(f"refund {refund_id} not found", reason="REFUND_NOT_FOUND")
    return refund


async def list_refunds(
    uow_factory: UnitOfWorkFactory,
    query: RefundQuery,
    page_token: str = "",
    owner: str | None = None,
) -> tuple[list[Refund], str]:
    """One page of the payment's refunds, oldest first, and the next token ("" on the last).

    With `owner`, another user's payment is NOT_FOUND.
    """
    if owner is not None:
        await get_payment(uow_factory, query.payment_id, owner)
    if page_token:
        query = replace(query, after=decode_page_token(query, page_token))
    async with uow_factory(read_only=True) as uow:
        page = await uow.refunds.list(query)
    token = ""
    if page.more and page.refunds:
        last = page.refunds[-1]
        token = encode_page_token(query, RefundCursor(last.create_time, last.id))
    return page.refunds, token
