"""Reading plans and subscriptions: GetPlan, ListPlans, GetSubscription, ListSubscriptions."""

from __future__ import annotations

from server.domain.errors import NotFound, Validator
from server.domain.ids import PLAN_ID, SUBSCRIPTION_ID
from server.domain.plan import Plan
from server.domain.principal import may_read
from server.domain.subscription import Subscription
from server.service import paging
from server.service.subscriptions.pages import PlanQuery, SubscriptionQuery
from server.service.unit_of_work import UnitOfWork, UnitOfWorkFactory


def check_plan_id(validator: Validator, value: str, name: str = "id") -> None:
    if validator.check(bool(value), name, "is required"):
        validator.check(PLAN_ID.matches(value), name, f"must be a plan id like {PLAN_ID.example}")


def check_subscription_id(validator: Validator, value: str, name: str = "id") -> None:
    if validator.check(bool(value), name, "is required"):
        validator.check(
            SUBSCRIPTION_ID.matches(value),
            name,
            f"must be a subscription id like {SUBSCRIPTION_ID.example}",
        )


def plan_not_found(plan_id: str) -> NotFound:
    return NotFound(
        f"plan {plan_id} not found", reason="PLAN_NOT_FOUND", metadata={"plan_id": plan_id}
    )


def subscription_not_found(subscription_id: str) -> NotFound:
    return NotFound(
        f"subscription {subscription_id} not found",
        reason="SUBSCRIPTION_NOT_FOUND",
        metadata={"subscription_id": subscription_id},
    )


async def load_plan(uow: UnitOfWork, plan_id: str) -> Plan:
    plan = await uow.plans.get(plan_id)
    if plan is None:
        raise plan_not_found(plan_id)
    return plan


async def get_plan(uow_factory: UnitOfWorkFactory, plan_id: str) -> Plan:
    """Archived plans too: subscriptions still name them."""
    validator = Validator()
    check_plan_id(validator, plan_id)
    validator.raise_if_any()
    async with uow_factory(read_only=True) as uow:
        return await load_plan(uow, plan_id)


async def list_plans(
    uow_factory: UnitOfWorkFactory, show_archived: bool, page_size: int, page_token: str
) -> tuple[list[Plan], str]:
    validator = Validator()
    size = paging.page_size(validator, page_size)
    validator.raise_if_any()
    scope = f"plans:{int(show_archived)}"
    query = PlanQuery(show_archived, size, paging.time_cursor(scope, page_token, PLAN_ID))
    async with uow_factory(read_only=True) as uow:
        page = await uow.plans.list(query)
    last = paging.after(page.plans[-1]) if page.more and page.plans else None
    return page.plans, paging.time_token(scope, last)


async def get_subscription(
    uow_factory: UnitOfWorkFactory, subscription_id: str, owner: str | None = None
) -> Subscription:
    """The subscription; NOT_FOUND also when `owner` is set and it is another user's."""
    validator = Validator()
    check_subscription_id(validator, subscription_id)
    validator.raise_if_any()
    async with uow_factory(read_only=True) as uow:
        subscription = await uow.subscriptions.get(subscription_id)
    if subscription is None or not may_read(owner, subscription.user_id):
        raise subscription_not_found(subscription_id)
    return subscription


async def list_subscriptions(
    uow_factory: UnitOfWorkFactory, user_id: str, page_size: int, page_token: str
) -> tuple[list[Subscription], str]:
    request = paging.user_page(user_id, page_size, page_token, SUBSCRIPTION_ID)
    query = SubscriptionQuery(user_id, request.size, request.after)
    async with uow_factory(read_only=True) as uow:
        page = await uow.subscriptions.list(query)
    last = paging.after(page.subscriptions[-1]) if page.more and page.subscriptions else None
    return page.subscriptions, paging.time_token(request.scope, last)
