"""Reading a receipt; one still waiting for its number is numbered first."""

from __future__ import annotations

from server.domain.errors import FieldViolation, InvalidArgument, NotFound
from server.domain.ids import PAYMENT_ID, REFUND_ID
from server.domain.receipt import Receipt
from server.service.dependencies import Dependencies
from server.service.receipts.numbering import number_receipts


def _not_found(receipt_id: str) -> NotFound:
    return NotFound(f"no receipt for {receipt_id}", reason="RECEIPT_NOT_FOUND")


async def get_receipt(deps: Dependencies, receipt_id: str, owner: str | None = None) -> Receipt:
    """The receipt of a payment or refund; NOT_FOUND also when it is another customer's."""
    if not (PAYMENT_ID.matches(receipt_id) or REFUND_ID.matches(receipt_id)):
        raise InvalidArgument([FieldViolation("id", "must be a payment id or a refund id")])
    receipt = await _read(deps, receipt_id)
    if receipt is not None and not receipt.number:
        # Money moved a moment ago: number it now rather than wait for the job.
        await number_receipts(deps)
        receipt = await _read(deps, receipt_id)
    if receipt is None or not receipt.number or owner not in (None, receipt.user_id):
        raise _not_found(receipt_id)
    return receipt


async def _read(deps: Dependencies, receipt_id: str) -> Receipt | None:
    async with deps.uow(read_only=True) as uow:
        return await uow.receipts.get(receipt_id)
