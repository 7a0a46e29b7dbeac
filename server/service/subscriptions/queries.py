"""Reading plans and subscriptions: GetPlan, ListPlans, GetSubscription, ListSubscriptions."""

from __future__ import annotations

from server.domain.errors import NotFound, Validator
from server.domain.ids import PLAN_ID, SUBSCRIPTION_ID, require_id
from server.domain.plan import Plan
from server.service import paging
from server.service.reads import OwnedRead, UserList
from server.service.subscriptions.pages import PlanQuery
from server.service.unit_of_work import UnitOfWork, UnitOfWorkFactory


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
    require_id(PLAN_ID, plan_id)
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
    return paging.rows_and_token(scope, page)


get_subscription = OwnedRead(SUBSCRIPTION_ID, lambda uow: uow.subscriptions, subscription_not_found)
# The user's subscriptions, oldest first.
list_subscriptions = UserList(SUBSCRIPTION_ID, lambda uow, query: uow.subscriptions.list(query))
