"""When the janitor asks the provider about a payment that waits on it (Kill Bill style)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from server.domain.payment_states import PaymentState

# States whose outcome the provider decides; a lost answer or webhook leaves
# them here, so they are re-checked on a schedule.
WAITING_ON_PROVIDER = frozenset({PaymentState.PROCESSING, PaymentState.REQUIRES_ACTION})
DEFAULT_SCHEDULE = (timedelta(minutes=5), timedelta(hours=1), timedelta(days=1))


def next_check(
    attempts: int, now: datetime, schedule: Sequence[timedelta] = DEFAULT_SCHEDULE
) -> datetime:
    """After `attempts` inconclusive checks, when to look again (the last step repeats)."""
    return now + schedule[min(attempts, len(schedule) - 1)]
