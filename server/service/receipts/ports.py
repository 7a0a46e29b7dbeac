"""The receipts' repository port."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from server.domain.receipt import Receipt


class ReceiptRepository(Protocol):
    async def get(self, receipt_id: str) -> Receipt | None: ...

    async def unnumbered(self, limit: int) -> list[Receipt]:
        """The oldest receipts without a number, locked for this transaction."""

    async def take_sequences(self, year: int, count: int) -> int:
        """Advance the year's counter by `count` and return the last sequence taken."""

    async def number(self, receipt: Receipt, year: int, sequence: int, now: datetime) -> None:
        """Store the numbered receipt and write its receipt.issued event."""
