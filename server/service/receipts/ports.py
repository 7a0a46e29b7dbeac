"""The receipts' repository port."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from server.domain.receipt import Receipt


class ReceiptRepository(Protocol):
    async def get(self, receipt_id: str) -> Receipt | None: ...

    async def take(self, limit: int) -> tuple[list[Receipt], dict[int, int]]:
        """The oldest receipts without a number, locked for this transaction, with the
        card and customer email of the saved payment method their payment used; and
        their years' counters advanced by their counts: {year: last sequence taken}."""

    async def number(self, numbered: Sequence[tuple[Receipt, int, int]], now: datetime) -> None:
        """Store each numbered receipt (with its year and sequence) and write the
        receipt.issued events; a fixed number of statements whatever the count."""
