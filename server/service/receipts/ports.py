"""The receipts' repository port."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from server.domain.receipt import Receipt


class ReceiptRepository(Protocol):
    async def get(self, receipt_id: str) -> Receipt | None: ...

    async def unnumbered(self, limit: int) -> list[Receipt]:
        """The oldest receipts without a number, locked for this transaction."""

    async def take_sequences(self, year: int, count: int) -> int:
        """Advance the year's counter by `count` and return the last sequence taken."""

    async def number(self, numbered: Sequence[tuple[Receipt, int, int]], now: datetime) -> None:
        """Store each numbered receipt (with its year and sequence) and write the
        receipt.issued events, the events in one statement."""

    async def payment_methods(self, payment_ids: Collection[str]) -> dict[str, str]:
        """The payment method id of each of these payments."""
