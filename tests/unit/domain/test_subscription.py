"""The Subscription aggregate without I/O: periods, dunning, the provider's word, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.domain.billing_period import Interval
from server.domain.errors import FailedPrecondition
from server.domain.money import Money
from server.domain.plan import Plan, PlanState
from server.domain.subscription import (
    DEFAULT_DUNNING,
    Subscription,
    SubscriptionState,
    new_subscription,
)

NOW = datetime(2027, 1, 31, 12, tzinfo=UTC)


def plan(trial_days: int = 0, plan_id: str = "pln_1") -> Plan:
    return Plan(
        plan_id, "P", Money("USD", 500), Interval.MONTH, 1, trial_days, PlanState.ACTIVE, NOW
    )


def subscription(trial_days: int = 0) -> Subscription:
    return new_subscription(
        subscription_id="sub_1",
        user_id="u",
        plan=plan(),
        payment_method_id="pmt_1",
        provider="mock",
        trial_days=trial_days,
        now=NOW,
    )


def test_paid_periods_follow_the_anchor_through_short_months() -> None:
    sub = subscription()
    assert sub.charge_key(plan()) == "sub_1:renewal:2027-01-31T12:00:00Z"
    ends = []
    for _ in range(3):
        sub.period_paid(plan(), "pay_x", NOW)
        ends.append(sub.current_period_end.date().isoformat())
    assert ends == ["2027-02-28", "2027-03-31", "2027-04-30"]
    assert sub.charge_key(plan()) == "sub_1:renewal:2027-04-30T12:00:00Z"
    assert [e.sequence for e in sub.take_events()] == [1, 2, 3, 4]


def test_dunning_counts_from_the_period_start_then_cancels() -> None:
    sub = subscription(trial_days=7)
    due = NOW + timedelta(days=7)
    retries = []
    for _ in range(len(DEFAULT_DUNNING)):
        sub.payment_failed(plan(), "pay_f", DEFAULT_DUNNING, due)
        retries.append(sub.next_retry_time)
    assert retries == [due + timedelta(days=d) for d in (1, 3, 5)]
    assert sub.state is SubscriptionState.PAST_DUE
    sub.payment_failed(plan(), "pay_f", DEFAULT_DUNNING, due + timedelta(days=5))
    assert (sub.state, sub.end_reason, sub.due_time) == (
        SubscriptionState.CANCELED,
        "payment_failed",
        None,
    )
    types = [e.type for e in sub.take_events()]
    assert types == ["subscription.created"] + ["subscription.past_due"] * 3 + [
        "subscription.canceled"
    ]


def test_without_a_dunning_schedule_the_first_failure_cancels() -> None:
    sub = subscription(trial_days=1)
    sub.payment_failed(plan(), "pay_f", (), NOW)
    assert sub.state is SubscriptionState.CANCELED


def test_a_pending_plan_takes_over_anchored_at_the_next_period() -> None:
    sub = subscription()
    sub.period_paid(plan(), "pay_1", NOW)
    sub.update(NOW, plan_id="pln_2")
    sub.switch_to_pending_plan(plan())
    assert (sub.plan_id, sub.pending_plan_id, sub.periods_paid) == ("pln_2", "", 0)
    assert sub.billing_anchor == datetime(2027, 2, 28, 12, tzinfo=UTC)


def test_the_provider_word_moves_a_stripe_subscription_once() -> None:
    sub = subscription()
    start, end = NOW, NOW + timedelta(days=30)
    assert sub.provider_period_paid(start, end, NOW)
    assert not sub.provider_period_paid(start, end, NOW)  # a redelivery
    sub.provider_payment_failed(NOW)
    assert (sub.state, sub.failed_attempts) == (SubscriptionState.PAST_DUE, 1)
    assert sub.provider_period_paid(end, end + timedelta(days=30), NOW)
    assert sub.provider_ended("canceled", NOW)
    assert not sub.provider_ended("canceled", NOW)
    with pytest.raises(FailedPrecondition):
        sub.provider_payment_failed(NOW)
    types = [e.type for e in sub.take_events()]
    assert types == [
        "subscription.created",
        "subscription.renewed",
        "subscription.past_due",
        "subscription.renewed",
        "subscription.canceled",
    ]


def test_an_incomplete_subscription_expires_after_23_hours() -> None:
    sub = subscription()
    sub.recheck_incomplete(NOW + timedelta(hours=5))
    assert sub.state is SubscriptionState.INCOMPLETE
    assert sub.due_time == NOW + timedelta(hours=6)
    sub.recheck_incomplete(NOW + timedelta(hours=23))
    assert (sub.state, sub.end_reason) == (
        SubscriptionState.INCOMPLETE_EXPIRED,
        "incomplete_expired",
    )
