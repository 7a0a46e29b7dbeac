"""Numbers receipts without gaps per year, in a short transaction of its own.

A sequence is taken from the year's counter row and written onto a receipt in
the same transaction: both commit, or neither does, so a rollback gives the
number back and no number is ever skipped. The counter row is locked only by
numbering passes, never by the transaction that moved the money; that one only
inserted the receipt row.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from itertools import groupby

from server.domain.ids import PAYMENT_METHOD_ID
from server.domain.receipt import Card, Receipt, receipt_number
from server.service.dependencies import Dependencies
from server.service.unit_of_work import UnitOfWork

_log = logging.getLogger(__name__)
BATCH = 200


async def number_receipts(deps: Dependencies, batch: int = BATCH) -> int:
    """Number up to `batch` waiting receipts, oldest first; how many were numbered."""
    async with deps.uow() as uow:
        waiting = await uow.receipts.unnumbered(batch)
        now = deps.clock.now()
        methods = await uow.receipts.payment_methods({r.payment_id for r in waiting})
        numbered = []
        for year, group in groupby(waiting, key=lambda receipt: receipt.year):
            receipts = list(group)
            last = await uow.receipts.take_sequences(year, len(receipts))
            for sequence, receipt in enumerate(receipts, start=last - len(receipts) + 1):
                completed = await _completed(
                    uow,
                    receipt,
                    receipt_number(year, sequence),
                    deps.merchant_name,
                    methods.get(receipt.payment_id, ""),
                )
                numbered.append((completed, year, sequence))
        if numbered:
            await uow.receipts.number(numbered, now)
        await uow.commit()
    if waiting:
        _log.info("numbered %d receipts", len(waiting))
    return len(waiting)


async def number_all_receipts(deps: Dependencies) -> int:
    """The numbering job: every waiting receipt, a batch per transaction."""
    total = 0
    while (numbered := await number_receipts(deps)) == BATCH:
        total += numbered
    return total + numbered


async def _completed(
    uow: UnitOfWork, receipt: Receipt, number: str, merchant: str, method_id: str
) -> Receipt:
    """The receipt with its number and what it shows of the card and the customer."""
    card, email = None, ""
    if PAYMENT_METHOD_ID.matches(method_id):
        method = await uow.payment_methods.get(method_id)
        if method is not None:
            card = Card(method.card.brand, method.card.last4)
            email = method.billing_details.email
    return replace(receipt, number=number, merchant=merchant, card=card, customer_email=email)
