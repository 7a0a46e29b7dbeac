"""Charging subscription periods: exactly once per period, whoever asks and however often.

The charge of a period is a payment made through `create_payment`, with
order_id `sub_...:renewal:<period start>` and request_id that plus the attempt
number. The live-payment-per-order index lets no second live payment exist
for a period, and the idempotency key makes a retried attempt (after a crash,
or by a second worker) find the first one's payment instead of charging again.

1. One transaction locks the subscription, checks it is still due, and either
   settles it from a payment the period already has, or ends it, or notes the
   period to charge.
2. The charge, outside any transaction.
3. One transaction applies the outcome if the subscription is still where
   step 1 left it (otherwise someone else applied it first).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from server.domain.errors import (
    AlreadyExists,
    IdempotencyKeyInUse,
    InvalidArgument,
    ProviderUnavailable,
)
from server.domain.payment import CaptureMethod, Payment
from server.domain.payment_states import CHARGED_STATES, PaymentState
from server.domain.plan import Plan
from server.domain.subscription import ENDED_STATES, Subscription, SubscriptionState
from server.service.commands import AmountInput, CreatePayment
from server.service.dependencies import Dependencies
from server.service.payment_commands import create_payment
from server.service.subscription_queries import load_plan
from server.service.unit_of_work import UnitOfWork

# The idempotency scope of the charges the service makes on its own behalf.
BILLING_CALLER = "payments.subscriptions"
# How soon a charge whose outcome is still open is looked at again.
PENDING_RECHECK = timedelta(hours=1)


class Billed(StrEnum):
    """What one billing step did to a subscription."""

    PAID = "paid"
    FAILED = "failed"
    PENDING = "pending"
    ENDED = "ended"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class _Charge:
    subscription: Subscription
    plan: Plan
    key: str
    attempt: int


def _apply(
    deps: Dependencies,
    subscription: Subscription,
    plan: Plan,
    payment: Payment | None,
    now: datetime,
) -> Billed:
    """Move the subscription on by the state of its period's payment (None: none could be made)."""
    if payment is not None and payment.state in CHARGED_STATES:
        subscription.period_paid(plan, payment.id, now)
        return Billed.PAID
    if payment is None or payment.state in (
        PaymentState.FAILED,
        PaymentState.CANCELED,
        # Off-session, nobody is there to authenticate: it counts as a failed attempt.
        PaymentState.REQUIRES_ACTION,
    ):
        subscription.payment_failed(plan, payment.id if payment else "", deps.dunning, now)
        return Billed.ENDED if subscription.state in ENDED_STATES else Billed.FAILED
    subscription.latest_payment_id = payment.id
    subscription.due_time = now + PENDING_RECHECK
    subscription.update_time = now
    return Billed.PENDING


async def _prepare(deps: Dependencies, uow: UnitOfWork, subscription_id: str) -> _Charge | Billed:
    """Step 1, under the subscription's row lock."""
    now = deps.clock.now()
    subscription = await uow.subscriptions.get(subscription_id, for_update=True, skip_locked=True)
    if subscription is None or subscription.due_time is None or subscription.due_time > now:
        return Billed.SKIPPED
    plan = await load_plan(uow, subscription.plan_id)
    result: Billed | None = None
    if subscription.cancel_at_period_end and subscription.state is not SubscriptionState.INCOMPLETE:
        subscription.end_of_term(now)
        result = Billed.ENDED
    else:
        if subscription.pending_plan_id:
            next_plan = await load_plan(uow, subscription.pending_plan_id)
            subscription.switch_to_pending_plan(plan)
            plan = next_plan
        key = subscription.charge_key(plan)
        live = await uow.payments.find_live_by_order(subscription.user_id, key)
        incomplete = subscription.state is SubscriptionState.INCOMPLETE
        if live is not None and (live.state in CHARGED_STATES or not incomplete):
            result = _apply(deps, subscription, plan, live, now)
        elif incomplete:
            # The first charge is never retried on its own: the customer must act.
            subscription.recheck_incomplete(now)
            result = Billed.ENDED if subscription.state in ENDED_STATES else Billed.PENDING
    await uow.subscriptions.save(subscription)
    if result is not None:
        return result
    return _Charge(subscription, plan, key, subscription.failed_attempts + 1)


async def charge(deps: Dependencies, subscription: Subscription, plan: Plan) -> Payment | None:
    """Charge the subscription's next period; the period's payment, or None if none could be made.

    IdempotencyKeyInUse and ProviderUnavailable propagate: the charge is in
    someone else's hands, or must wait.
    """
    key = subscription.charge_key(plan)
    start = subscription.next_period_start(plan)
    command = CreatePayment(
        request_id=f"{key}:{subscription.failed_attempts + 1}",
        order_id=key,
        user_id=subscription.user_id,
        amount=AmountInput(plan.price.currency_code, plan.price.minor_units),
        payment_method_id=subscription.payment_method_id,
        capture_method=CaptureMethod.AUTOMATIC,
        confirm=True,
        description=f"{plan.name}: subscription {subscription.id}",
        metadata={
            "subscription_id": subscription.id,
            "plan_id": plan.id,
            "period_start": start.isoformat(),
        },
    )
    try:
        return (await create_payment(deps, BILLING_CALLER, command)).payment
    except AlreadyExists as exists:
        # Another attempt's payment for this period is live: it decides.
        async with deps.uow(read_only=True) as uow:
            return await uow.payments.get(exists.metadata.get("payment_id", ""))
    except InvalidArgument:
        # The saved method is gone or was refused before any money moved.
        return None


async def record_charge(
    deps: Dependencies, subscription: Subscription, plan: Plan, payment: Payment | None
) -> tuple[Subscription, Billed]:
    """Step 3: apply the charge unless the subscription moved on meanwhile."""
    key = subscription.charge_key(plan)
    async with deps.uow() as uow:
        current = await uow.subscriptions.get(subscription.id, for_update=True)
        assert current is not None
        unchanged = (
            current.state is subscription.state
            and current.failed_attempts == subscription.failed_attempts
            and current.plan_id == plan.id
            and current.charge_key(plan) == key
        )
        if not unchanged:
            return current, Billed.SKIPPED
        result = _apply(deps, current, plan, payment, deps.clock.now())
        await uow.subscriptions.save(current)
        await uow.commit()
    return current, result


async def bill_subscription(deps: Dependencies, subscription_id: str) -> Billed:
    """One billing step for a due subscription: charge, retry, settle, expire or end it."""
    async with deps.uow() as uow:
        prepared = await _prepare(deps, uow, subscription_id)
        await uow.commit()
    if isinstance(prepared, Billed):
        return prepared
    try:
        payment = await charge(deps, prepared.subscription, prepared.plan)
    except (IdempotencyKeyInUse, ProviderUnavailable):
        return Billed.SKIPPED
    _, result = await record_charge(deps, prepared.subscription, prepared.plan, payment)
    return result
