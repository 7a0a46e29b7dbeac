"""Reading refunds: GetRefund and ListRefunds (one payment's refunds, keyset page tokens)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from server.domain.errors import FieldViolation, InvalidArgument, NotFound, Validator
from server.domain.ids import REFUND_ID
from server.domain.refund import Refund
from server.service.commands import check_payment_id
from server.service.payment_queries import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

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
    raw = json.dumps({"t": cursor.create_time.isoformat(), "i": cursor.id, "p": query.payment_id})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(query: RefundQuery, token: str) -> RefundCursor:
    """The cursor in `token`; INVALID_ARGUMENT if it is not ours or not for this payment."""
    bad = InvalidArgument(
        [FieldViolation("page_token", "is not a page token from this query; start without one")],
        reason="INVALID_PAGE_TOKEN",
    )
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        moment, last_id, payment_id = raw["t"], raw["i"], raw["p"]
        cursor = RefundCursor(datetime.fromisoformat(str(moment)), str(last_id))
    except (ValueError, TypeError, KeyError):
        raise bad from None
    if payment_id != query.payment_id or not REFUND_ID.matches(cursor.id):
        raise bad
    if cursor.create_time.tzinfo is None:
        raise bad
    return cursor


async def get_refund(uow_factory: UnitOfWorkFactory, refund_id: str) -> Refund:
    validator = Validator()
    check_refund_id(validator, refund_id)
    validator.raise_if_any()
    async with uow_factory(read_only=True) as uow:
        refund = await uow.refunds.get(refund_id)
    if refund is None:
        raise NotFound(f"refund {refund_id} not found", reason="REFUND_NOT_FOUND")
    return refund


async def list_refunds(
    uow_factory: UnitOfWorkFactory, query: RefundQuery, page_token: str = ""
) -> tuple[list[Refund], str]:
    """One page of the payment's refunds, oldest first, and the next token ("" on the last)."""
    if page_token:
        query = replace(query, after=decode_page_token(query, page_token))
    async with uow_factory(read_only=True) as uow:
        page = await uow.refunds.list(query)
    token = ""
    if page.more and page.refunds:
        last = page.refunds[-1]
        token = encode_page_token(query, RefundCursor(last.create_time, last.id))
    return page.refunds, token
