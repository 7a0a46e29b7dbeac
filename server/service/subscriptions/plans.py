"""CreatePlan and ArchivePlan: plans are written once and archived, never deleted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server.adapters.subscription_codec import decode_plan, encode_plan
from server.domain.billing_period import MAX_INTERVAL_COUNT, Interval
from server.domain.errors import Validator
from server.domain.ids import PLAN_ID
from server.domain.money import Money, check_amount
from server.domain.plan import Plan, PlanState
from server.service.dependencies import Dependencies
from server.service.payments.requests import AmountInput, check_request_id, check_text, targeted
from server.service.pipeline.command import Command, Done, Kind, Outcome, run
from server.service.pipeline.idempotency import Scope, optional_scope, scope_of
from server.service.subscriptions.queries import load_plan
from server.service.unit_of_work import UnitOfWork

MAX_PLAN_NAME = 200
# Stripe's limit for trials.
MAX_TRIAL_DAYS = 730


@dataclass(frozen=True, slots=True)
class CreatePlan:
    request_id: str
    name: str
    price: AmountInput | None
    interval: Interval | None
    interval_count: int
    trial_days: int = 0


PLANS: Kind[Plan] = Kind(encode_plan, decode_plan, lambda plan: plan.id)


def check_trial_days(validator: Validator, trial_days: int) -> None:
    validator.check(
        0 <= trial_days <= MAX_TRIAL_DAYS, "trial_days", f"must be 0 to {MAX_TRIAL_DAYS}"
    )


def validate_plan(command: CreatePlan) -> Money:
    """Every violation at once; the validated price when there are none."""
    validator = Validator()
    check_request_id(validator, command.request_id, required=True)
    name = command.name
    if validator.check(bool(name.strip()), "name", "is required, not only spaces"):
        check_text(validator, "name", name, MAX_PLAN_NAME)
    price = None
    if validator.check(command.price is not None, "price", "is required") and command.price:
        price = check_amount(
            validator, "price", command.price.currency_code, command.price.minor_units
        )
    if validator.check(
        command.interval is not None, "interval", "must be DAY, WEEK, MONTH or YEAR"
    ):
        assert command.interval is not None
        limit = MAX_INTERVAL_COUNT[command.interval]
        validator.check(
            1 <= command.interval_count <= limit,
            "interval_count",
            f"must be 1 to {limit} for {command.interval.value} (at most three years)",
        )
    check_trial_days(validator, command.trial_days)
    validator.raise_if_any()
    assert price is not None
    return price


async def create_plan(deps: Dependencies, caller: str, command: CreatePlan) -> Outcome[Plan]:
    price = validate_plan(command)
    interval = command.interval
    assert interval is not None
    scope = scope_of(
        caller,
        command.request_id,
        "CreatePlan",
        {
            "name": command.name,
            "price": [price.currency_code, price.minor_units],
            "interval": interval.value,
            "interval_count": command.interval_count,
            "trial_days": command.trial_days,
        },
    )
    plan_id = PLAN_ID.new()

    async def prepare(uow: UnitOfWork, resume_id: str | None) -> Done[Plan]:
        plan = Plan(
            id=resume_id or plan_id,
            name=command.name,
            price=price,
            interval=interval,
            interval_count=command.interval_count,
            trial_days=command.trial_days,
            state=PlanState.ACTIVE,
            create_time=deps.clock.now(),
        )
        await uow.plans.add(plan)
        return Done(plan)

    return await _store(deps, scope, plan_id, prepare)


def _store(
    deps: Dependencies,
    scope: Scope | None,
    plan_id: str,
    prepare: Callable[[UnitOfWork, str | None], Awaitable[Done[Plan]]],
) -> Awaitable[Outcome[Plan]]:
    """Plans never reach the provider: the pipeline's first step is all there is."""
    command: Command[None, None, Plan] = Command(
        scope=scope, kind=PLANS, resource_id=plan_id, prepare=prepare
    )
    return run(deps, command)


async def archive_plan(
    deps: Dependencies, caller: str, plan_id: str, request_id: str = ""
) -> Outcome[Plan]:
    """Idempotent by nature: archiving an archived plan returns it unchanged."""
    targeted(PLAN_ID, plan_id, request_id).raise_if_any()
    scope = optional_scope(caller, request_id, "ArchivePlan", {"id": plan_id})

    async def prepare(uow: UnitOfWork, resume_id: str | None) -> Done[Plan]:
        del resume_id
        plan = await load_plan(uow, plan_id)
        plan.archive(deps.clock.now())
        await uow.plans.save(plan)
        return Done(plan)

    return await _store(deps, scope, plan_id, prepare)
