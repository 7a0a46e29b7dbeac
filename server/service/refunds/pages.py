"""What ListRefunds asks the repository for; it answers a paging.TimePage of refunds."""

from __future__ import annotations

from dataclasses import dataclass

from server.service.paging import DEFAULT_PAGE_SIZE, TimeCursor


@dataclass(frozen=True, slots=True)
class RefundQuery:
    payment_id: str
    page_size: int = DEFAULT_PAGE_SIZE
    after: TimeCursor | None = None
