"""Subscriptions on real databases with the mock provider, time moved by a ManualClock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from payments.v1 import events_pb2, subscriptions_pb2
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.clock import ManualClock
from server.adapters.db.tables import outbox, payments, plans, subscriptions
from server.adapters.providers.mock import MockProvider
from server.domain.billing_period import Interval
from server.domain.errors import (
    FailedPrecondition,
    IdempotencyKeyReused,
    InvalidArgument,
    NotFound,
    ProviderUnavailable,
)
from server.domain.payment import CaptureMethod
from server.domain.plan import Plan
from server.domain.subscription import Subscription, SubscriptionState
from server.jobs.renewals import renew_due_subscriptions
from server.service.dependencies import Dependencies
from server.service.payment_methods.commands import attach_payment_method, detach_payment_method
from server.service.payment_methods.requests import AttachPaymentMethod, DetachPaymentMethod
from server.service.payments.commands import create_payment
from server.service.payments.requests import AmountInput, CreatePayment
from server.service.provider import CreateAtProvider, ProviderPayment, ProviderRejected
from server.service.subscriptions.billing import Billed, bill_subscription, charge
from server.service.subscriptions.commands import (
    CancelSubscription,
    CreateSubscription,
    UpdateSubscription,
    cancel_subscription,
    create_subscription,
    update_subscription,
)
from server.service.subscriptions.plans import CreatePlan, archive_plan, create_plan
from server.service.subscriptions.queries import (
    get_plan,
    get_subscription,
    list_plans,
    list_subscriptions,
)

CALLER = "billing-admin"
START = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def billing(deps: Dependencies, clock: ManualClock) -> Dependencies:
    return replace(deps, clock=clock)


def move_to(clock: ManualClock, moment: datetime) -> None:
    clock.advance(moment - clock.now())


async def a_plan(
    deps: Dependencies,
    price: int = 999,
    interval: Interval = Interval.MONTH,
    count: int = 1,
    trial_days: int = 0,
) -> str:
    command = CreatePlan(
        f"plan-{uuid.uuid4().hex[:8]}",
        "Premium",
        AmountInput("USD", price),
        interval,
        count,
        trial_days,
    )
    return (await create_plan(deps, CALLER, command)).resource.id


async def a_method(deps: Dependencies, user_id: str, card: str = "pm_card_visa") -> str:
    command = AttachPaymentMethod(f"attach-{uuid.uuid4().hex[:8]}", user_id, card)
    return (await attach_payment_method(deps, CALLER, command)).resource.id


async def subscribe(
    deps: Dependencies,
    plan_id: str,
    card: str = "pm_card_visa",
    trial_days: int | None = None,
    user_id: str = "user-1",
) -> str:
    method = await a_method(deps, user_id, card)
    command = CreateSubscription(
        f"sub-{uuid.uuid4().hex[:8]}", user_id, plan_id, method, trial_days
    )
    return (await create_subscription(deps, CALLER, command)).resource.id


async def due_for_renewal(billing: Dependencies, clock: ManualClock) -> tuple[Subscription, Plan]:
    """A new monthly subscription, its first period over, and its plan."""
    plan_id = await a_plan(billing)
    sub_id = await subscribe(billing, plan_id)
    move_to(clock, datetime(2027, 1, 1, tzinfo=UTC))
    return await get_subscription(billing.uow, sub_id), await get_plan(billing.uow, plan_id)


async def charges(engine: AsyncEngine, subscription_id: str) -> list[tuple[str, str, int]]:
    """(order_id, state, amount) of the subscription's payments, by period, oldest first.

    The order id ends in the period start, so it sorts by period even when a
    catching-up job made several payments at the same clock time.
    """
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(payments.c.order_id, payments.c.state, payments.c.amount)
            .where(payments.c.order_id.like(f"{subscription_id}:%"))
            .order_by(payments.c.order_id, payments.c.create_time)
        )
        return [(r.order_id, r.state, r.amount) for r in rows]


async def events(engine: AsyncEngine, subscription_id: str) -> list[events_pb2.EventEnvelope]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(outbox.c.payload)
            .where(outbox.c.aggregate_id == subscription_id)
            .order_by(outbox.c.id)
        )
        return [events_pb2.EventEnvelope.FromString(r.payload) for r in rows]


def period(subscription_id: str, start: datetime) -> str:
    return f"{subscription_id}:renewal:{start.strftime('%Y-%m-%dT%H:%M:%SZ')}"


async def test_a_year_of_monthly_renewals_charges_twelve_periods_once_each(
    billing: Dependencies, clock: ManualClock, engine: AsyncEngine
) -> None:
    plan_id = await a_plan(billing, trial_days=31)
    sub_id = await subscribe(billing, plan_id)
    assert (await get_subscription(billing.uow, sub_id)).state is SubscriptionState.TRIALING
    starts = [datetime(2027, month, 1, tzinfo=UTC) for month in range(1, 13)]
    for start in starts:
        move_to(clock, start - timedelta(seconds=1))
        await renew_due_subscriptions(billing)
        move_to(clock, start)
        # Twice per boundary: the second pass must find nothing to bill.
        await renew_due_subscriptions(billing)
        await renew_due_subscriptions(billing)
    move_to(clock, datetime(2027, 12, 31, 23, 59, tzinfo=UTC))
    await renew_due_subscriptions(billing)

    assert await charges(engine, sub_id) == [(period(sub_id, s), "SUCCEEDED", 999) for s in starts]
    subscription = await get_subscription(billing.uow, sub_id)
    assert subscription.state is SubscriptionState.ACTIVE
    assert subscription.current_period_start == datetime(2027, 12, 1, tzinfo=UTC)
    assert subscription.current_period_end == datetime(2028, 1, 1, tzinfo=UTC)
    sent = await events(engine, sub_id)
    assert [e.type for e in sent] == ["subscription.created"] + ["subscription.renewed"] * 12
    assert [e.sequence for e in sent] == list(range(1, 14))
    renewed = [e.subscription_renewed for e in sent[1:]]
    assert [r.subscription.current_period_start.ToDatetime(UTC) for r in renewed] == starts
    assert all(r.payment_id.startswith("pay_") for r in renewed)


async def test_a_job_that_was_down_catches_up_period_by_period(
    billing: Dependencies, clock: ManualClock, engine: AsyncEngine
) -> None:
    plan_id = await a_plan(billing, interval=Interval.WEEK, count=2)
    sub_id = await subscribe(billing, plan_id)
    move_to(clock, START + timedelta(weeks=10, days=1))
    report = await renew_due_subscriptions(billing)
    assert report.paid == 5
    starts = [START + timedelta(weeks=2 * k) for k in range(6)]
    assert [c[0] for c in await charges(engine, sub_id)] == [period(sub_id, s) for s in starts]


async def test_first_period_is_charged_at_once_without_a_trial(
    billing: Dependencies, engine: AsyncEngine
) -> None:
    plan_id = await a_plan(billing)
    sub_id = await subscribe(billing, plan_id)
    subscription = await get_subscription(billing.uow, sub_id)
    assert subscription.state is SubscriptionState.ACTIVE
    assert subscription.current_period_end == datetime(2027, 1, 1, tzinfo=UTC)
    assert await charges(engine, sub_id) == [(period(sub_id, START), "SUCCEEDED", 999)]
    assert [e.type for e in await events(engine, sub_id)] == [
        "subscription.created",
        "subscription.renewed",
    ]


async def test_a_declined_first_charge_leaves_it_incomplete_until_it_expires(
    billing: Dependencies, clock: ManualClock, engine: AsyncEngine
) -> None:
    plan_id = await a_plan(billing)
    sub_id = await subscribe(billing, plan_id, card="pm_card_chargeCustomerFail")
    subscription = await get_subscription(billing.uow, sub_id)
    assert subscription.state is SubscriptionState.INCOMPLETE
    assert subscription.latest_payment_id
    for hours in range(1, 23):
        move_to(clock, START + timedelta(hours=hours))
        await renew_due_subscriptions(billing)
    assert (await get_subscription(billing.uow, sub_id)).state is SubscriptionState.INCOMPLETE
    move_to(clock, START + timedelta(hours=23))
    await renew_due_subscriptions(billing)
    expired = await get_subscription(billing.uow, sub_id)
    assert expired.state is SubscriptionState.INCOMPLETE_EXPIRED
    assert expired.end_reason == "incomplete_expired"
    # The first charge is never retried by the job.
    assert len(await charges(engine, sub_id)) == 1
    assert [e.type for e in await events(engine, sub_id)][-1] == "subscription.canceled"


async def test_a_failing_card_goes_past_due_is_retried_on_schedule_then_canceled(
    billing: Dependencies, clock: ManualClock, engine: AsyncEngine
) -> None:
    plan_id = await a_plan(billing)
    sub_id = await subscribe(billing, plan_id, card="pm_card_chargeCustomerFail", trial_days=7)
    due = START + timedelta(days=7)
    seen: list[tuple[SubscriptionState, int]] = []
    # Dunning 1, 3, 5 days after the due time: a pass at every half day.
    for half_days in range(0, 14):
        move_to(clock, due + timedelta(hours=12 * half_days))
        await renew_due_subscriptions(billing)
        subscription = await get_subscription(billing.uow, sub_id)
        seen.append((subscription.state, subscription.failed_attempts))
    past_due = SubscriptionState.PAST_DUE
    assert seen[:10] == [
        (past_due, 1),
        (past_due, 1),
        (past_due, 2),
        (past_due, 2),
        (past_due, 2),
        (past_due, 2),
        (past_due, 3),
        (past_due, 3),
        (past_due, 3),
        (past_due, 3),
    ]
    assert seen[10][0] is SubscriptionState.CANCELED
    assert set(seen[10:]) == {(SubscriptionState.CANCELED, 4)}
    ended = await get_subscription(billing.uow, sub_id)
    assert ended.end_reason == "payment_failed"
    assert ended.end_time == due + timedelta(days=5)
    assert await charges(engine, sub_id) == [(period(sub_id, due), "FAILED", 999)] * 4
    sent = await events(engine, sub_id)
    assert [e.type for e in sent] == [
        "subscription.created",
        "subscription.past_due",
        "subscription.past_due",
        "subscription.past_due",
        "subscription.canceled",
    ]
    first_retry = sent[1].subscription_past_due.subscription.next_retry_time.ToDatetime(UTC)
    assert first_retry == due + timedelta(days=1)


async def test_a_past_due_subscription_recovers_with_a_new_card(
    billing: Dependencies, clock: ManualClock, engine: AsyncEngine
) -> None:
    plan_id = await a_plan(billing)
    sub_id = await subscribe(billing, plan_id, card="pm_card_chargeCustomerFail", trial_days=7)
    due = START + timedelta(days=7)
    move_to(clock, due)
    await renew_due_subscriptions(billing)
    good = await a_method(billing, "user-1")
    update = UpdateSubscription(sub_id, payment_method_id=good)
    await update_subscription(billing, CALLER, update)
    move_to(clock, due + timedelta(days=1))
    await renew_due_subscriptions(billing)
    subscription = await get_subscription(billing.uow, sub_id)
    assert subscription.state is SubscriptionState.ACTIVE
    assert subscription.failed_attempts == 0
    # The period keeps its anchor: it started when it was due, not when it was paid.
    assert subscription.current_period_start == due
    assert [c[1] for c in await charges(engine, sub_id)] == ["FAILED", "SUCCEEDED"]


async def test_two_renewal_jobs_racing_bill_each_period_once(
    billing: Dependencies, clock: ManualClock, engine: AsyncEngine
) -> None:
    plan_id = await a_plan(billing, interval=Interval.DAY)
    ids = [await subscribe(billing, plan_id, user_id=f"user-{n}") for n in range(4)]
    for day in range(1, 4):
        move_to(clock, START + timedelta(days=day))
        await asyncio.gather(*(renew_due_subscriptions(billing) for _ in range(3)))
    for sub_id in ids:
        found = await charges(engine, sub_id)
        expected = [period(sub_id, START + timedelta(days=d)) for d in range(4)]
        assert [c[0] for c in found] == expected
        assert {c[1] for c in found} == {"SUCCEEDED"}
        subscription = await get_subscription(billing.uow, sub_id)
        assert subscription.current_period_end == START + timedelta(days=4)
        sent = await events(engine, sub_id)
        assert [e.sequence for e in sent] == [1, 2, 3, 4, 5]


async def test_a_plan_change_takes_effect_from_the_next_period(
    billing: Dependencies, clock: ManualClock, engine: AsyncEngine
) -> None:
    monthly = await a_plan(billing)
    yearly = await a_plan(billing, price=9900, interval=Interval.YEAR)
    sub_id = await subscribe(billing, monthly)
    changed = await update_subscription(billing, CALLER, UpdateSubscription(sub_id, plan_id=yearly))
    assert changed.resource.plan_id == monthly
    assert changed.resource.pending_plan_id == yearly
    move_to(clock, datetime(2027, 1, 1, tzinfo=UTC))
    await renew_due_subscriptions(billing)
    subscription = await get_subscription(billing.uow, sub_id)
    assert (subscription.plan_id, subscription.pending_plan_id) == (yearly, "")
    assert subscription.current_period_end == datetime(2028, 1, 1, tzinfo=UTC)
    assert [c[2] for c in await charges(engine, sub_id)] == [999, 9900]


async def test_cancel_at_period_end_ends_without_charging_and_can_be_undone(
    billing: Dependencies, clock: ManualClock, engine: AsyncEngine
) -> None:
    plan_id = await a_plan(billing)
    kept, ending = await subscribe(billing, plan_id), await subscribe(billing, plan_id)
    await cancel_subscription(billing, CALLER, CancelSubscription(kept, at_period_end=True))
    undo = UpdateSubscription(kept, cancel_at_period_end=False)
    assert not (await update_subscription(billing, CALLER, undo)).resource.cancel_at_period_end
    await cancel_subscription(billing, CALLER, CancelSubscription(ending, at_period_end=True))
    move_to(clock, datetime(2027, 1, 1, tzinfo=UTC))
    await renew_due_subscriptions(billing)
    ended = await get_subscription(billing.uow, ending)
    assert (ended.state, ended.end_reason) == (SubscriptionState.CANCELED, "period_end")
    assert len(await charges(engine, ending)) == 1
    assert (await get_subscription(billing.uow, kept)).state is SubscriptionState.ACTIVE
    assert len(await charges(engine, kept)) == 2


async def test_cancel_now_stops_billing_and_a_second_cancel_is_refused(
    billing: Dependencies, clock: ManualClock, engine: AsyncEngine
) -> None:
    sub_id = await subscribe(billing, await a_plan(billing))
    once = CancelSubscription(sub_id, request_id="cancel-1")
    canceled = (await cancel_subscription(billing, CALLER, once)).resource
    assert (canceled.state, canceled.end_reason) == (SubscriptionState.CANCELED, "requested")
    assert (await cancel_subscription(billing, CALLER, once)).replayed
    with pytest.raises(FailedPrecondition) as refused:
        await cancel_subscription(billing, CALLER, CancelSubscription(sub_id))
    assert refused.value.reason == "INVALID_SUBSCRIPTION_STATE"
    move_to(clock, datetime(2027, 3, 1, tzinfo=UTC))
    await renew_due_subscriptions(billing)
    assert len(await charges(engine, sub_id)) == 1
    assert [e.type for e in await events(engine, sub_id)][-1] == "subscription.canceled"


async def counts(engine: AsyncEngine) -> list[int]:
    """Rows in plans, subscriptions and payments."""
    found = []
    async with engine.connect() as connection:
        for table in (plans, subscriptions, payments):
            count = sa.select(sa.func.count()).select_from(table)
            found.append(int((await connection.execute(count)).scalar_one()))
    return found


async def test_bad_requests_are_refused_and_store_nothing(
    billing: Dependencies, engine: AsyncEngine
) -> None:
    plan_id = await a_plan(billing)
    theirs = await a_method(billing, "someone-else")
    before = await counts(engine)
    with pytest.raises(InvalidArgument) as bad:
        await create_plan(billing, CALLER, CreatePlan("", " ", AmountInput("XXX", 0), None, 0, -1))
    assert {v.field for v in bad.value.violations} == {
        "request_id",
        "name",
        "price.currency_code",
        "price.minor_units",
        "interval",
        "trial_days",
    }
    too_long = CreatePlan("p-x", "P", AmountInput("USD", 1), Interval.MONTH, 37)
    with pytest.raises(InvalidArgument) as bad:
        await create_plan(billing, CALLER, too_long)
    assert [v.field for v in bad.value.violations] == ["interval_count"]
    with pytest.raises(InvalidArgument) as bad:
        await create_subscription(
            billing, CALLER, CreateSubscription("s-1", "", "plan_x", "pm_card_visa", 9999)
        )
    assert {v.field for v in bad.value.violations} == {
        "user_id",
        "plan_id",
        "payment_method_id",
        "trial_days",
    }
    missing_plan = "pln_01JD0000000000000000000000"
    with pytest.raises(NotFound) as unknown:
        await create_subscription(
            billing, CALLER, CreateSubscription("s-2", "user-1", missing_plan, theirs)
        )
    assert unknown.value.reason == "PLAN_NOT_FOUND"
    # Another user's saved card looks exactly like a missing one.
    with pytest.raises(NotFound) as not_theirs:
        await create_subscription(
            billing, CALLER, CreateSubscription("s-3", "user-1", plan_id, theirs)
        )
    assert not_theirs.value.reason == "PAYMENT_METHOD_NOT_FOUND"
    await archive_plan(billing, CALLER, plan_id)
    mine = await a_method(billing, "user-1")
    with pytest.raises(FailedPrecondition) as archived:
        await create_subscription(
            billing, CALLER, CreateSubscription("s-4", "user-1", plan_id, mine)
        )
    assert archived.value.reason == "PLAN_ARCHIVED"
    assert await counts(engine) == before
    # The failed request_ids were not stored: they work once the request is right.
    fresh_plan = await a_plan(billing)
    ok = CreateSubscription("s-3", "user-1", fresh_plan, mine)
    assert (await create_subscription(billing, CALLER, ok)).resource.state is (
        SubscriptionState.ACTIVE
    )


async def test_create_subscription_replays_and_rejects_a_reused_key(
    billing: Dependencies, engine: AsyncEngine
) -> None:
    plan_id = await a_plan(billing)
    method = await a_method(billing, "user-1")
    command = CreateSubscription("same-key", "user-1", plan_id, method)
    first = await create_subscription(billing, CALLER, command)
    again = await create_subscription(billing, CALLER, command)
    assert again.replayed
    assert again.resource.id == first.resource.id
    assert again.resource.state is SubscriptionState.ACTIVE
    assert len(await charges(engine, first.resource.id)) == 1
    with pytest.raises(IdempotencyKeyReused):
        await create_subscription(billing, CALLER, replace(command, trial_days=3))


async def created_one_second_apart(
    clock: ManualClock, make: Callable[[], Awaitable[str]], n: int
) -> list[str]:
    """Ids of `n` new rows, one clock second apart, so "oldest first" has one answer."""
    ids = []
    for _ in range(n):
        clock.advance(timedelta(seconds=1))
        ids.append(await make())
    return ids


async def test_plans_list_hides_archived_ones_which_stay_readable(
    billing: Dependencies, clock: ManualClock
) -> None:
    ids = await created_one_second_apart(clock, lambda: a_plan(billing), 5)
    archived = (await archive_plan(billing, CALLER, ids[1], "archive-1")).resource
    assert archived.state.value == "ARCHIVED"
    assert archived.archive_time is not None
    assert (await get_plan(billing.uow, ids[1])).state.value == "ARCHIVED"
    first, token = await list_plans(billing.uow, False, 2, "")
    second, last_token = await list_plans(billing.uow, False, 2, token)
    assert [p.id for p in first + second] == [ids[0], ids[2], ids[3], ids[4]]
    assert last_token == ""
    everything, _ = await list_plans(billing.uow, True, 10, "")
    assert [p.id for p in everything] == ids
    with pytest.raises(InvalidArgument):
        await list_plans(billing.uow, True, 2, token)


async def test_subscriptions_are_listed_per_user(billing: Dependencies, clock: ManualClock) -> None:
    plan_id = await a_plan(billing, trial_days=3)
    mine = await created_one_second_apart(clock, lambda: subscribe(billing, plan_id), 3)
    await subscribe(billing, plan_id, user_id="user-2")
    page, token = await list_subscriptions(billing.uow, "user-1", 2, "")
    rest, end = await list_subscriptions(billing.uow, "user-1", 2, token)
    assert [s.id for s in page + rest] == mine
    assert end == ""
    with pytest.raises(InvalidArgument):
        await list_subscriptions(billing.uow, "user-2", 2, token)


def test_the_proto_states_match_the_domain_states() -> None:
    names = {v.name for v in subscriptions_pb2.SubscriptionState.DESCRIPTOR.values}
    expected = {f"SUBSCRIPTION_STATE_{s.value}" for s in SubscriptionState}
    assert names == expected | {"SUBSCRIPTION_STATE_UNSPECIFIED"}


async def test_a_charge_whose_outcome_was_never_recorded_is_not_made_again(
    billing: Dependencies, clock: ManualClock, engine: AsyncEngine
) -> None:
    """A worker that died between the charge and recording it: the next pass finds the payment."""
    subscription, plan = await due_for_renewal(billing, clock)
    paid = await charge(billing, subscription, plan)  # ... and then the worker died
    assert paid is not None
    report = await renew_due_subscriptions(billing)
    assert report.paid == 1
    renewed = await get_subscription(billing.uow, subscription.id)
    assert renewed.latest_payment_id == paid.id
    assert renewed.current_period_end == datetime(2027, 2, 1, tzinfo=UTC)
    assert len(await charges(engine, subscription.id)) == 2


async def test_a_card_paying_for_a_live_subscription_cannot_be_detached(
    billing: Dependencies,
) -> None:
    plan_id = await a_plan(billing)
    method = await a_method(billing, "user-1")
    command = CreateSubscription("paid-with", "user-1", plan_id, method)
    subscription_id = (await create_subscription(billing, CALLER, command)).resource.id
    with pytest.raises(FailedPrecondition) as in_use:
        await detach_payment_method(billing, CALLER, DetachPaymentMethod(method, "detach-1"))
    assert in_use.value.reason == "PAYMENT_METHOD_IN_USE"
    assert in_use.value.metadata == {"subscription_ids": subscription_id}

    await cancel_subscription(billing, CALLER, CancelSubscription(subscription_id, "end-now"))
    # The refused request_id was not stored: the same one now detaches.
    detached = await detach_payment_method(billing, CALLER, DetachPaymentMethod(method, "detach-1"))
    assert not detached.resource.attached


class RefusesCharges(MockProvider):
    """Every charge fails before money moves: unreachable, or refused outright."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self._error = error

    async def create_payment(
        self, request: CreateAtProvider, idempotency_key: str
    ) -> ProviderPayment:
        raise self._error


async def test_a_renewal_the_provider_cannot_take_now_is_skipped_not_failed(
    billing: Dependencies, clock: ManualClock
) -> None:
    plan_id = await a_plan(billing)
    sub_id = await subscribe(billing, plan_id)
    move_to(clock, datetime(2027, 1, 1, tzinfo=UTC))
    down = replace(billing, provider=RefusesCharges(ProviderUnavailable("timed out")))

    assert await bill_subscription(down, sub_id) is Billed.SKIPPED

    waiting = await get_subscription(billing.uow, sub_id)
    assert waiting.state is SubscriptionState.ACTIVE
    assert waiting.failed_attempts == 0
    # An unanswered charge may have gone through: the next pass waits for the reconciler
    # to learn its outcome rather than charge the period again.
    assert await bill_subscription(billing, sub_id) is Billed.PENDING


async def test_a_charge_the_provider_refuses_makes_no_payment(
    billing: Dependencies, clock: ManualClock
) -> None:
    subscription, plan = await due_for_renewal(billing, clock)
    refusing = replace(billing, provider=RefusesCharges(ProviderRejected("no such card")))

    assert await charge(refusing, subscription, plan) is None


async def test_a_period_with_a_live_payment_already_is_charged_by_that_payment(
    billing: Dependencies, clock: ManualClock
) -> None:
    subscription, plan = await due_for_renewal(billing, clock)
    # Another attempt's payment for the same period, still live (not confirmed yet).
    earlier = CreatePayment(
        request_id="another-attempt",
        order_id=subscription.charge_key(plan),
        user_id=subscription.user_id,
        amount=AmountInput("USD", 999),
        payment_method_id=subscription.payment_method_id,
        capture_method=CaptureMethod.AUTOMATIC,
        confirm=False,
    )
    live = (await create_payment(billing, "billing", earlier)).resource

    found = await charge(billing, subscription, plan)

    assert found is not None
    assert found.id == live.id
