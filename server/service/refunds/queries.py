"""Reading refunds: GetRefund and ListRefunds (one payment's refunds, keyset page tokens)."""

from __future__ import annotations

from dataclasses import replace

from server.domain.errors import NotFound, Validator
from server.domain.ids import REFUND_ID, require_id
from server.domain.refund import Refund
from server.service import paging
from server.service.payments.queries import get_payment
from server.service.payments.requests import check_payment_id
from server.service.refunds.pages import RefundQuery
from server.service.unit_of_work import UnitOfWorkFactory


def refund_query(payment_id: str, page_size: int) -> RefundQuery:
    validator = Validator()
    check_payment_id(validator, payment_id, "payment_id")
    size = paging.page_size(validator, page_size)
    validator.raise_if_any()
    return RefundQuery(payment_id, size)


async def get_refund(
    uow_factory: UnitOfWorkFactory, refund_id: str, owner: str | None = None
) -> Refund:
    """The refund; NOT_FOUND also when `owner` is set and its payment is another user's."""
    require_id(REFUND_ID, refund_id)
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
    # Tokens are bound to the payment whose refunds they page through.
    query = replace(query, after=paging.time_cursor(query.payment_id, page_token, REFUND_ID))
    async with uow_factory(read_only=True) as uow:
        page = await uow.refunds.list(query)
    return paging.rows_and_token(query.payment_id, page)
