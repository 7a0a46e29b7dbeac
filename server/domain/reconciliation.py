"""When the janitor looks at a payment that waits (Kill Bill style), and for how long.

A payment waits on the provider (PROCESSING, REQUIRES_ACTION: asked on a
backing-off schedule) or on the customer (REQUIRES_PAYMENT_METHOD,
REQUIRES_CONFIRMATION, REQUIRES_ACTION: canceled once it has waited longer
than an abandoned checkout would). Every such state has a next check, so no
payment is left where nobody looks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from server.domain.payment_states import PaymentState

# States whose outcome the provider decides; a lost answer or webhook leaves
# them here, so they are re-checked on a schedule. REQUIRES_CAPTURE too: it can
# be captured or canceled in the provider's dashboard (or expire there).
WAITING_ON_PROVIDER = frozenset(
    {PaymentState.PROCESSING, PaymentState.REQUIRES_ACTION, PaymentState.REQUIRES_CAPTURE}
)
# States that wait for the customer to act (choose a method, confirm, pass 3-D Secure).
WAITING_ON_CUSTOMER = frozenset(
    {
        PaymentState.REQUIRES_PAYMENT_METHOD,
        PaymentState.REQUIRES_CONFIRMATION,
        PaymentState.REQUIRES_ACTION,
    }
)
WAITING = WAITING_ON_PROVIDER | WAITING_ON_CUSTOMER
# Every state a payment may not stay in for good: what the waiting gauges count.
UNSETTLED_STATES = WAITING
# First check 20 s after the wait began: with the reconciler's 10 s pass, within 30 s.
DEFAULT_SCHEDULE = (
    timedelta(seconds=20),
    timedelta(minutes=5),
    timedelta(hours=1),
    timedelta(days=1),
)


@dataclass(frozen=True, slots=True)
class WaitingPolicy:
    """How long a payment may wait before the janitor acts on it."""

    # Checks of a payment that waits on the provider; the last step repeats.
    schedule: tuple[timedelta, ...] = DEFAULT_SCHEDULE
    # A payment that never got the provider's id is looked up (then failed) after this:
    # longer than any call still in flight could take.
    stranded_after: timedelta = timedelta(minutes=2)
    # A payment waiting on the customer is canceled after this (an abandoned checkout).
    expire_after: timedelta = timedelta(hours=24)


_policy = WaitingPolicy()


def use_policy(policy: WaitingPolicy) -> None:
    """Set at start-up from Settings: every payment moved in this process follows it."""
    global _policy
    _policy = policy


def policy() -> WaitingPolicy:
    return _policy


def next_check(attempts: int, now: datetime) -> datetime:
    """After `attempts` inconclusive checks, when to look again (the last step repeats)."""
    steps = _policy.schedule
    return now + steps[min(attempts, len(steps) - 1)]


def first_check(state: PaymentState, now: datetime) -> datetime | None:
    """When a payment that just arrived in `state` is first looked at; None: never."""
    return next_check(0, now) if state in WAITING else None
