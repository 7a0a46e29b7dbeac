"""CreateSubscription, UpdateSubscription and CancelSubscription.

CreateSubscription: one transaction claims the request_id and records the
subscription (TRIALING, or INCOMPLETE until its first charge); without a trial
the first period is then charged (subscriptions/billing.charge, shielded from
the caller hanging up) and the outcome recorded: ACTIVE if it succeeded.
"""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server.adapters.subscription_codec import decode_subscription, encode_subscription
from server.domain.errors import FailedPrecondition, Validator
from server.domain.ids import PAYMENT_METHOD_ID, PLAN_ID, SUBSCRIPTION_ID, check_id
from server.domain.payment import Payment
from server.domain.plan import Plan
from server.domain.subscription import Subscription, SubscriptionState, new_subscription
from server.service.dependencies import Dependencies
from server.service.payment_methods.queries import usable_method
from server.service.payments.requests import check_reference, check_request_id, targeted
from server.service.pipeline.command import Command, Done, Kind, Outcome, run
from server.service.pipeline.idempotency import Scope, optional_scope, parameters_of, scope_of
from server.service.provider import ProviderSubscription
from server.service.subscriptions.billing import charge, record_charge_in
from server.service.subscriptions.plans import check_trial_days
from server.service.subscriptions.queries import load_plan, subscription_not_found
from server.service.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class CreateSubscription:
    request_id: str
    user_id: str
    plan_id: str
    payment_method_id: str
    # None: the plan's trial.
    trial_days: int | None = None


@dataclass(frozen=True, slots=True)
class UpdateSubscription:
    id: str
    request_id: str = ""
    plan_id: str | None = None
    cancel_at_period_end: bool | None = None
    payment_method_id: str | None = None


@dataclass(frozen=True, slots=True)
class CancelSubscription:
    id: str
    request_id: str = ""
    at_period_end: bool = False


# Change the locked subscription (in the transaction of `uow`).
Change = Callable[["UnitOfWork", Subscription], Awaitable[None]]
# Make the same change at the provider that bills the subscription.
Remote = Callable[[Subscription], Awaitable[None]]


SUBSCRIPTIONS: Kind[Subscription] = Kind(
    encode_subscription, decode_subscription, lambda subscription: subscription.id
)


def check_saved_method(validator: Validator, value: str) -> None:
    check_id(validator, PAYMENT_METHOD_ID, value, "payment_method_id", "saved payment method")


async def create_subscription(
    deps: Dependencies, caller: str, command: CreateSubscription
) -> Outcome[Subscription]:
    validator = Validator()
    check_request_id(validator, command.request_id, required=True)
    check_reference(validator, "user_id", command.user_id)
    check_id(validator, PLAN_ID, command.plan_id, "plan_id")
    check_saved_method(validator, command.payment_method_id)
    if command.trial_days is not None:
        check_trial_days(validator, command.trial_days)
    validator.raise_if_any()
    scope = scope_of(caller, command.request_id, "CreateSubscription", parameters_of(command))
    new_id = SUBSCRIPTION_ID.new()
    now = deps.clock.now()

    async def prepare(uow: UnitOfWork, resume_id: str | None) -> _Start | Done[Subscription]:
        subscription = None
        if resume_id is not None:
            subscription = await uow.subscriptions.get(resume_id, for_update=True)
        if subscription is None:
            subscription = await _new(uow, resume_id or new_id)
        plan = await load_plan(uow, subscription.plan_id)
        if deps.billing is not None and not subscription.provider_subscription_id:
            return _Start(subscription, plan, at_provider=True)
        # We bill ourselves: charge the first period unless a trial comes first.
        if deps.billing is None and subscription.state is SubscriptionState.INCOMPLETE:
            return _Start(subscription, plan, at_provider=False)
        return Done(subscription)

    async def _new(uow: UnitOfWork, subscription_id: str) -> Subscription:
        plan = await load_plan(uow, command.plan_id)
        plan.ensure_active()
        await usable_method(uow, command.payment_method_id, command.user_id, deps.provider.name)
        trial_days = plan.trial_days if command.trial_days is None else command.trial_days
        subscription = new_subscription(
            subscription_id=subscription_id,
            user_id=command.user_id,
            plan=plan,
            payment_method_id=command.payment_method_id,
            provider=deps.provider.name,
            trial_days=trial_days,
            now=now,
        )
        if deps.billing is not None:
            subscription.due_time = None  # the provider bills; its webhooks report
        await uow.subscriptions.add(subscription)
        return subscription

    async def act(start: _Start) -> ProviderSubscription | Payment | None:
        if start.at_provider:
            return await _create_at_provider(deps, start.subscription, start.plan)
        return await charge(deps, start.subscription, start.plan)

    async def record(
        uow: UnitOfWork, start: _Start, answer: ProviderSubscription | Payment | None
    ) -> Subscription:
        if isinstance(answer, ProviderSubscription):
            return await _record_at_provider(deps, uow, start.subscription, answer)
        recorded, _ = await record_charge_in(deps, uow, start.subscription, start.plan, answer)
        return recorded

    return await run(
        deps,
        Command(
            scope=scope,
            kind=SUBSCRIPTIONS,
            resource_id=new_id,
            prepare=prepare,
            act=act,
            record=record,
        ),
    )


@dataclass(frozen=True, slots=True)
class _Start:
    """A new subscription's first step outside our database."""

    subscription: Subscription
    plan: Plan
    # True: the provider creates and bills it; False: we charge its first period.
    at_provider: bool


async def _create_at_provider(
    deps: Dependencies, subscription: Subscription, plan: Plan
) -> ProviderSubscription:
    """Create the subscription at the provider, which charges it."""
    billing = deps.billing
    assert billing is not None
    trial_days = 0
    if subscription.trial_end is not None:
        trial_days = (subscription.trial_end - subscription.create_time).days
    async with deps.uow(read_only=True) as uow:
        method = await uow.payment_methods.get(subscription.payment_method_id)
    assert method is not None
    provider_plan_id = await billing.ensure_plan(
        plan.id, plan.name, plan.price, plan.interval.value, plan.interval_count
    )
    return await billing.create_subscription(
        subscription_id=subscription.id,
        customer_id=method.provider_customer_id,
        provider_plan_id=provider_plan_id,
        provider_payment_method_id=method.provider_payment_method_id,
        trial_days=trial_days,
        idempotency_key=f"{subscription.id}:create",
    )


async def _record_at_provider(
    deps: Dependencies, uow: UnitOfWork, subscription: Subscription, remote: ProviderSubscription
) -> Subscription:
    """Record what the provider says of the subscription it created."""
    now = deps.clock.now()
    current = await uow.subscriptions.get(subscription.id, for_update=True)
    assert current is not None
    current.provider_subscription_id = remote.provider_subscription_id
    current.cancel_at_period_end = remote.cancel_at_period_end
    current.update_time = now
    if remote.status == "active":
        current.provider_period_paid(remote.current_period_start, remote.current_period_end, now)
    elif remote.status in ("canceled", "incomplete_expired"):
        current.provider_ended(remote.status, now)
    elif remote.status == "trialing":
        current.current_period_end = remote.current_period_end
    await uow.subscriptions.save(current)
    return current


def _change(
    deps: Dependencies,
    scope: Scope | None,
    subscription_id: str,
    change: Change,
    remote: Remote | None = None,
) -> Awaitable[Outcome[Subscription]]:
    """Lock the subscription, change it and store it.

    A subscription the provider bills is changed there first (`remote`), between
    a transaction that checks the change is allowed and one that records it.
    """

    async def prepare(uow: UnitOfWork, resume_id: str | None) -> Subscription | Done[Subscription]:
        del resume_id
        subscription = await uow.subscriptions.get(subscription_id, for_update=True)
        if subscription is None:
            raise subscription_not_found(subscription_id)
        if remote is None or not subscription.provider_subscription_id:
            await change(uow, subscription)
            await uow.subscriptions.save(subscription)
            return Done(subscription)
        await change(uow, copy.deepcopy(subscription))  # allowed? (raises if not)
        return subscription

    async def act(subscription: Subscription) -> None:
        assert remote is not None
        await remote(subscription)

    async def record(uow: UnitOfWork, subscription: Subscription, answer: None) -> Subscription:
        del subscription, answer
        current = await uow.subscriptions.get(subscription_id, for_update=True)
        assert current is not None
        with contextlib.suppress(FailedPrecondition):
            # Refused only when a webhook got there first (it ended meanwhile): that stands.
            await change(uow, current)
        await uow.subscriptions.save(current)
        return current

    return run(
        deps,
        Command(
            scope=scope,
            kind=SUBSCRIPTIONS,
            resource_id=subscription_id,
            prepare=prepare,
            act=act,
            record=record,
        ),
    )


async def update_subscription(
    deps: Dependencies, caller: str, command: UpdateSubscription
) -> Outcome[Subscription]:
    validator = targeted(SUBSCRIPTION_ID, command.id, command.request_id)
    if command.plan_id is not None:
        check_id(validator, PLAN_ID, command.plan_id, "plan_id")
    if command.payment_method_id is not None:
        check_saved_method(validator, command.payment_method_id)
    validator.raise_if_any()
    scope = optional_scope(caller, command.request_id, "UpdateSubscription", parameters_of(command))

    async def change(uow: UnitOfWork, subscription: Subscription) -> None:
        if command.plan_id is not None and command.plan_id != subscription.plan_id:
            (await load_plan(uow, command.plan_id)).ensure_active()
        if command.payment_method_id is not None:
            await usable_method(
                uow, command.payment_method_id, subscription.user_id, subscription.provider
            )
        if subscription.provider_subscription_id and command.plan_id not in (
            None,
            subscription.plan_id,
        ):
            raise FailedPrecondition(
                "changing the plan of a subscription the provider bills is not supported yet",
                reason="PLAN_CHANGE_NOT_SUPPORTED",
                metadata={"provider": subscription.provider},
            )
        subscription.update(
            deps.clock.now(),
            plan_id=command.plan_id,
            cancel_at_period_end=command.cancel_at_period_end,
            payment_method_id=command.payment_method_id,
        )

    async def remote(subscription: Subscription) -> None:
        billing = deps.billing
        assert billing is not None
        key = f"{subscription.id}:{command.request_id or uuid.uuid4().hex}"
        if command.payment_method_id is not None:
            async with deps.uow(read_only=True) as uow:
                method = await uow.payment_methods.get(command.payment_method_id)
            assert method is not None
            await billing.set_payment_method(
                method.provider_customer_id, method.provider_payment_method_id, f"{key}:method"
            )
        if command.cancel_at_period_end is not None:
            await billing.set_cancel_at_period_end(
                subscription.provider_subscription_id, command.cancel_at_period_end, f"{key}:cape"
            )

    return await _change(deps, scope, command.id, change, remote if deps.billing else None)


async def cancel_subscription(
    deps: Dependencies, caller: str, command: CancelSubscription
) -> Outcome[Subscription]:
    targeted(SUBSCRIPTION_ID, command.id, command.request_id).raise_if_any()
    scope = optional_scope(caller, command.request_id, "CancelSubscription", parameters_of(command))

    async def change(uow: UnitOfWork, subscription: Subscription) -> None:
        del uow
        now = deps.clock.now()
        if command.at_period_end:
            subscription.update(now, cancel_at_period_end=True)
        else:
            subscription.cancel(now)

    async def remote(subscription: Subscription) -> None:
        billing = deps.billing
        assert billing is not None
        key = f"{subscription.id}:{command.request_id or uuid.uuid4().hex}"
        if command.at_period_end:
            await billing.set_cancel_at_period_end(
                subscription.provider_subscription_id, True, f"{key}:cancel-at-period-end"
            )
        else:
            await billing.cancel_subscription(
                subscription.provider_subscription_id, f"{key}:cancel"
            )

    return await _change(deps, scope, command.id, change, remote if deps.billing else None)
