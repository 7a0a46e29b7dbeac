"""What ListPlans and ListSubscriptions ask the repositories for, and the pages they get back."""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.plan import Plan
from server.domain.subscription import Subscription
from server.service.paging import DEFAULT_PAGE_SIZE, TimeCursor


@dataclass(frozen=True, slots=True)
class PlanQuery:
    show_archived: bool = False
    page_size: int = DEFAULT_PAGE_SIZE
    after: TimeCursor | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionQuery:
    user_id: str
    page_size: int = DEFAULT_PAGE_SIZE
    after: TimeCursor | None = None


@dataclass(frozen=True, slots=True)
class PlanPage:
    plans: list[Plan]
    more: bool


@dataclass(frozen=True, slots=True)
class SubscriptionPage:
    subscriptions: list[Subscription]
    more: bool
