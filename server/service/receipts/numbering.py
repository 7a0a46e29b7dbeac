"""Numbers receipts without gaps per year, in a short transaction of its own.

A sequence is taken from the year's counter row and written onto a receipt in
the same transaction: both commit, or neither does, so a rollback gives the
number back and no number is ever skipped. The counter row is locked only by
numbering passes, never by the transaction that moved the money; that one only
inserted the receipt row.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace

from server.domain.receipt import Receipt, receipt_number
from server.service.dependencies import Dependencies

_log = logging.getLogger(__name__)
BATCH = 200


async def number_receipts(deps: Dependencies, batch: int = BATCH) -> int:
    """Number up to `batch` waiting receipts, oldest first; how many were numbered."""
    async with deps.uow() as uow:
        waiting, last = await uow.receipts.take(batch)
        now = deps.clock.now()
        counts = Counter(receipt.year for receipt in waiting)
        # Each year's sequences taken by this pass, handed out in the receipts' order.
        following = {year: last[year] - count + 1 for year, count in counts.items()}
        numbered: list[tuple[Receipt, int, int]] = []
        for receipt in waiting:
            year = receipt.year
            sequence = following[year]
            following[year] += 1
            number = receipt_number(year, sequence)
            completed = replace(receipt, number=number, merchant=deps.merchant_name)
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
