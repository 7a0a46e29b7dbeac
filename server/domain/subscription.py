"""The Subscription aggregate: a user paying for a plan, period after period.

Period `k` of a subscription starts at `plan.period_start(billing_anchor, k)`;
`periods_paid` counts the paid ones, so the period to charge next is always
number `periods_paid`, and its start names the charge (see `charge_key`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from server.domain.plan import Plan
from server.domain.state_table import StateTable, not_allowed


class SubscriptionState(StrEnum):
    TRIALING = "TRIALING"
    ACTIVE = "ACTIVE"
    PAST_DUE = "PAST_DUE"
    CANCELED = "CANCELED"
    INCOMPLETE = "INCOMPLETE"
    INCOMPLETE_EXPIRED = "INCOMPLETE_EXPIRED"


class SubscriptionOp(StrEnum):
    PERIOD_PAID = "period_paid"
    PAYMENT_FAILED = "payment_failed"
    DUNNING_EXHAUSTED = "dunning_exhausted"
    EXPIRE = "expire"
    CANCEL = "cancel"
    END_OF_TERM = "end_of_term"
    UPDATE = "update"


S = SubscriptionState
_LIVE = (S.TRIALING, S.ACTIVE, S.PAST_DUE)
# operation -> {from state: to state}; a pair that is absent is not allowed.
SUBSCRIPTION_TRANSITIONS: Mapping[SubscriptionOp, Mapping[SubscriptionState, SubscriptionState]] = (
    MappingProxyType(
        {
            SubscriptionOp.PERIOD_PAID: dict.fromkeys((*_LIVE, S.INCOMPLETE), S.ACTIVE),
            # A failed first charge leaves the subscription INCOMPLETE until it expires.
            SubscriptionOp.PAYMENT_FAILED: {
                S.TRIALING: S.PAST_DUE,
                S.ACTIVE: S.PAST_DUE,
                S.PAST_DUE: S.PAST_DUE,
                S.INCOMPLETE: S.INCOMPLETE,
            },
            SubscriptionOp.DUNNING_EXHAUSTED: {S.PAST_DUE: S.CANCELED},
            SubscriptionOp.EXPIRE: {S.INCOMPLETE: S.INCOMPLETE_EXPIRED},
            SubscriptionOp.CANCEL: dict.fromkeys((*_LIVE, S.INCOMPLETE), S.CANCELED),
            SubscriptionOp.END_OF_TERM: dict.fromkeys(_LIVE, S.CANCELED),
            SubscriptionOp.UPDATE: {state: state for state in _LIVE},
        }
    )
)
ENDED_STATES = frozenset({S.CANCELED, S.INCOMPLETE_EXPIRED})
# Retries after a failed renewal charge, counted from the period start (PAYMENTS_DUNNING_DAYS).
DEFAULT_DUNNING = (timedelta(days=1), timedelta(days=3), timedelta(days=5))
# Stripe's window for paying the first invoice of an incomplete subscription.
INCOMPLETE_WINDOW = timedelta(hours=23)
# How often an INCOMPLETE subscription looks again at its first payment (3-D Secure).
INCOMPLETE_RECHECK = timedelta(hours=1)

SUBSCRIPTION_CREATED = "subscription.created"
SUBSCRIPTION_RENEWED = "subscription.renewed"
SUBSCRIPTION_PAST_DUE = "subscription.past_due"
SUBSCRIPTION_CANCELED = "subscription.canceled"


SUBSCRIPTION_STATES = StateTable(
    SUBSCRIPTION_TRANSITIONS, not_allowed("subscription"), reason="INVALID_SUBSCRIPTION_STATE"
)
next_subscription_state = SUBSCRIPTION_STATES.next


@dataclass(frozen=True, slots=True)
class SubscriptionEvent:
    type: str
    subscription_id: str
    sequence: int
    occurred_at: datetime
    payment_id: str = ""


@dataclass(slots=True)
class Subscription:
    id: str
    user_id: str
    plan_id: str
    payment_method_id: str
    state: SubscriptionState
    provider: str
    billing_anchor: datetime
    current_period_start: datetime
    current_period_end: datetime
    create_time: datetime
    update_time: datetime
    periods_paid: int = 0
    trial_end: datetime | None = None
    cancel_at_period_end: bool = False
    pending_plan_id: str = ""
    latest_payment_id: str = ""
    failed_attempts: int = 0
    next_retry_time: datetime | None = None
    end_time: datetime | None = None
    end_reason: str = ""
    provider_subscription_id: str = ""
    # When the renewal job next has something to do; None once ended.
    due_time: datetime | None = None
    event_sequence: int = field(default=0, compare=False)
    pending_events: list[SubscriptionEvent] = field(default_factory=list, compare=False)

    def next_period_start(self, plan: Plan) -> datetime:
        return plan.period_start(self.billing_anchor, self.periods_paid)

    def charge_key(self, plan: Plan) -> str:
        """Names the charge of the next period: one payment per subscription and period."""
        start = self.next_period_start(plan).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{self.id}:renewal:{start}"

    def switch_to_pending_plan(self, plan: Plan) -> None:
        """Before charging a new period: the pending plan takes over, anchored at its start."""
        self.billing_anchor = self.next_period_start(plan)
        self.periods_paid = 0
        self.plan_id, self.pending_plan_id = self.pending_plan_id, ""

    def period_paid(self, plan: Plan, payment_id: str, now: datetime) -> None:
        self.state = next_subscription_state(self.state, SubscriptionOp.PERIOD_PAID)
        self.current_period_start = self.next_period_start(plan)
        self.periods_paid += 1
        self.current_period_end = self.next_period_start(plan)
        self.latest_payment_id = payment_id
        self.failed_attempts = 0
        self.next_retry_time = None
        self.due_time = self.current_period_end
        self._emit(SUBSCRIPTION_RENEWED, now, payment_id)

    def payment_failed(
        self, plan: Plan, payment_id: str, dunning: Sequence[timedelta], now: datetime
    ) -> None:
        """A failed charge: retry on the dunning schedule, counted from the period start."""
        self.latest_payment_id = payment_id
        self.update_time = now
        if self.state is S.INCOMPLETE:
            next_subscription_state(self.state, SubscriptionOp.PAYMENT_FAILED)
            self.due_time = min(now + INCOMPLETE_RECHECK, self.create_time + INCOMPLETE_WINDOW)
            return
        self.failed_attempts += 1
        self.state = next_subscription_state(self.state, SubscriptionOp.PAYMENT_FAILED)
        if self.failed_attempts > len(dunning):
            self._end(SubscriptionOp.DUNNING_EXHAUSTED, "payment_failed", now)
            return
        self.next_retry_time = self.next_period_start(plan) + dunning[self.failed_attempts - 1]
        self.due_time = self.next_retry_time
        self._emit(SUBSCRIPTION_PAST_DUE, now, payment_id)

    def recheck_incomplete(self, now: datetime) -> None:
        """The first charge is still unpaid: expire after the window, else look again later."""
        expiry = self.create_time + INCOMPLETE_WINDOW
        if now >= expiry:
            self._end(SubscriptionOp.EXPIRE, "incomplete_expired", now)
        else:
            self.due_time = min(now + INCOMPLETE_RECHECK, expiry)
            self.update_time = now

    def end_of_term(self, now: datetime) -> None:
        self._end(SubscriptionOp.END_OF_TERM, "period_end", now)

    def cancel(self, now: datetime) -> None:
        self._end(SubscriptionOp.CANCEL, "requested", now)

    def update(
        self,
        now: datetime,
        *,
        plan_id: str | None = None,
        cancel_at_period_end: bool | None = None,
        payment_method_id: str | None = None,
    ) -> None:
        next_subscription_state(self.state, SubscriptionOp.UPDATE)
        if plan_id is not None:
            self.pending_plan_id = "" if plan_id == self.plan_id else plan_id
        if cancel_at_period_end is not None:
            self.cancel_at_period_end = cancel_at_period_end
        if payment_method_id is not None:
            self.payment_method_id = payment_method_id
        self.update_time = now

    # The provider bills (Stripe): its webhooks move the subscription, never the renewal job.

    def provider_period_paid(self, start: datetime, end: datetime, now: datetime) -> bool:
        """An invoice for [start, end) was paid; False if that period is known paid already."""
        if self.state is S.ACTIVE and self.current_period_start >= start:
            return False
        self.state = next_subscription_state(self.state, SubscriptionOp.PERIOD_PAID)
        self.current_period_start, self.current_period_end = start, end
        self.periods_paid += 1
        self.failed_attempts = 0
        self._emit(SUBSCRIPTION_RENEWED, now)
        return True

    def provider_payment_failed(self, now: datetime) -> None:
        self.state = next_subscription_state(self.state, SubscriptionOp.PAYMENT_FAILED)
        if self.state is S.PAST_DUE:
            self.failed_attempts += 1
            self._emit(SUBSCRIPTION_PAST_DUE, now)
        self.update_time = now

    def provider_ended(self, status: str, now: datetime) -> bool:
        """Stripe ended it ("canceled" or "incomplete_expired"); False if it had ended already."""
        if self.state in ENDED_STATES:
            return False
        if status == "incomplete_expired":
            self._end(SubscriptionOp.EXPIRE, "incomplete_expired", now)
        elif self.state is S.PAST_DUE and not self.cancel_at_period_end:
            self._end(SubscriptionOp.DUNNING_EXHAUSTED, "payment_failed", now)
        else:
            reason = "period_end" if self.cancel_at_period_end else "requested"
            self._end(SubscriptionOp.CANCEL, reason, now)
        return True

    def take_events(self) -> list[SubscriptionEvent]:
        events, self.pending_events = self.pending_events, []
        return events

    def _end(self, op: SubscriptionOp, reason: str, now: datetime) -> None:
        self.state = next_subscription_state(self.state, op)
        self.end_time = now
        self.end_reason = reason
        self.cancel_at_period_end = False
        self.next_retry_time = None
        self.due_time = None
        self._emit(SUBSCRIPTION_CANCELED, now)

    def _emit(self, event_type: str, now: datetime, payment_id: str = "") -> None:
        self.event_sequence += 1
        self.update_time = now
        self.pending_events.append(
            SubscriptionEvent(event_type, self.id, self.event_sequence, now, payment_id)
        )


def new_subscription(
    *,
    subscription_id: str,
    user_id: str,
    plan: Plan,
    payment_method_id: str,
    provider: str,
    trial_days: int,
    now: datetime,
) -> Subscription:
    """TRIALING until the trial ends, or INCOMPLETE until its first charge succeeds."""
    trial_end = now + timedelta(days=trial_days) if trial_days else None
    anchor = trial_end or now
    subscription = Subscription(
        id=subscription_id,
        user_id=user_id,
        plan_id=plan.id,
        payment_method_id=payment_method_id,
        state=S.TRIALING if trial_end else S.INCOMPLETE,
        provider=provider,
        billing_anchor=anchor,
        current_period_start=now,
        current_period_end=anchor if trial_end else plan.period_start(anchor, 1),
        create_time=now,
        update_time=now,
        trial_end=trial_end,
        due_time=anchor if trial_end else now + INCOMPLETE_WINDOW,
    )
    subscription._emit(SUBSCRIPTION_CREATED, now)
    return subscription
