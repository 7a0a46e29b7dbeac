"""The Plan entity: a price charged every period; archived plans stay readable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from server.domain.billing_period import Interval, period_boundary
from server.domain.errors import FailedPrecondition
from server.domain.money import Money


class PlanState(StrEnum):
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"


@dataclass(slots=True)
class Plan:
    id: str
    name: str
    price: Money
    interval: Interval
    interval_count: int
    trial_days: int
    state: PlanState
    create_time: datetime
    archive_time: datetime | None = None

    def period_start(self, anchor: datetime, n: int) -> datetime:
        """The start of period `n` of a subscription anchored at `anchor`."""
        return period_boundary(anchor, self.interval, self.interval_count, n)

    def ensure_active(self) -> None:
        """An archived plan takes no new subscriptions (nor changes to it)."""
        if self.state is not PlanState.ACTIVE:
            raise FailedPrecondition(
                f"plan {self.id} is archived and takes no new subscriptions",
                reason="PLAN_ARCHIVED",
                metadata={"plan_id": self.id},
            )

    def archive(self, now: datetime) -> None:
        if self.state is PlanState.ACTIVE:
            self.state = PlanState.ARCHIVED
            self.archive_time = now
