"""What ListPlans asks the repository for (ListSubscriptions asks for a paging.UserPage)."""

from __future__ import annotations

from dataclasses import dataclass

from server.service.paging import DEFAULT_PAGE_SIZE, TimeCursor


@dataclass(frozen=True, slots=True)
class PlanQuery:
    show_archived: bool = False
    page_size: int = DEFAULT_PAGE_SIZE
    after: TimeCursor | None = None
