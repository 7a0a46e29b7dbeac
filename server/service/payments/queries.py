"""Reading payments: GetPayment and ListPayments with opaque keyset page tokens."""

from __future__ import annotations

from dataclasses import replace

from server.domain.errors import NotFound
from server.domain.ids import PAYMENT_ID
from server.domain.payment import Payment
from server.service import page_tokens
from server.service.payments.pages import Cursor, PaymentQuery, SortKey
from server.service.reads import OwnedRead
from server.service.unit_of_work import PaymentStatements, UnitOfWorkFactory


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


get_payment = OwnedRead(PAYMENT_ID, lambda uow: uow.payments, payment_not_found)


async def list_payments(
    uow_factory: UnitOfWorkFactory,
    query: PaymentQuery,
    page_token: str = "",
    owner: str | None = None,
    statements: PaymentStatements | None = None,
) -> tuple[list[Payment], str]:
    """One page of payments and the token of the next ("" on the last page).

    With `owner`, only that user's payments: a filter on another user_id finds none.
    `statements` read the common page (one user's, newest first) with one prepared
    statement instead of a unit of work.
    """
    if owner is not None:
        if query.user_id not in (None, owner):
            return [], ""
        query = replace(query, user_id=owner)
    if page_token:
        query = replace(query, after=decode_page_token(query, page_token))
    page = await statements.page(query) if statements is not None else None
    if page is None:
        async with uow_factory(read_only=True) as uow:
            page = await uow.payments.list(query)
    token = encode_page_token(query, page.next_cursor) if page.next_cursor else ""
    return page.payments, token
