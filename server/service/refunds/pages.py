"""What ListRefunds asks the repository for, and the page it gets back."""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.refund import Refund
from server.service.paging import DEFAULT_PAGE_SIZE, TimeCursor


@dataclass(frozen=True, slots=True)
class RefundQuery:
    payment_id: str
    page_size: int = DEFAULT_PAGE_SIZE
    after: TimeCursor | None = None


@dataclass(frozen=True, slots=True)
class RefundPage:
    refunds: list[Refund]
    more: bool
