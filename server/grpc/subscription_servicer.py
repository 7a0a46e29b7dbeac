"""SubscriptionService over gRPC: proto in, command to the service layer, proto out."""

from __future__ import annotations

from collections.abc import Awaitable

from payments.v1 import subscriptions_pb2 as pb
from payments.v1 import subscriptions_pb2_grpc

from server.adapters.subscription_codec import (
    interval_from_proto,
    plan_to_proto,
    subscription_to_proto,
)
from server.domain.plan import Plan
from server.domain.principal import Principal
from server.grpc import methods as rpc
from server.service.dependencies import Dependencies
from server.service.ownership import require_own_subscription, user_id_for
from server.service.pipeline.command import Outcome
from server.service.subscriptions import queries as subscription_queries
from server.service.subscriptions.commands import (
    CancelSubscription,
    CreateSubscription,
    UpdateSubscription,
    cancel_subscription,
    create_subscription,
    update_subscription,
)
from server.service.subscriptions.plans import CreatePlan, archive_plan, create_plan


def _create_plan(request: pb.CreatePlanRequest, _: Principal) -> CreatePlan:
    return CreatePlan(
        request_id=request.request_id,
        name=request.name,
        price=rpc.optional_amount(request, "price"),
        interval=interval_from_proto(request.interval),
        interval_count=request.interval_count,
        trial_days=request.trial_days,
    )


def _get_plan(deps: Dependencies, request: pb.GetPlanRequest, _: Principal) -> Awaitable[Plan]:
    return subscription_queries.get_plan(deps.uow, request.id)


def _list_plans(
    deps: Dependencies, request: pb.ListPlansRequest, _: Principal
) -> Awaitable[rpc.Page[Plan]]:
    return subscription_queries.list_plans(
        deps.lagging_reads, request.show_archived, request.page_size, request.page_token
    )


def _archive_plan(
    deps: Dependencies, caller: str, request: pb.ArchivePlanRequest
) -> Awaitable[Outcome[Plan]]:
    return archive_plan(deps, caller, request.id, request.request_id)


def _create(request: pb.CreateSubscriptionRequest, principal: Principal) -> CreateSubscription:
    return CreateSubscription(
        request_id=request.request_id,
        user_id=user_id_for(principal.owner, request.user_id),
        plan_id=request.plan_id,
        payment_method_id=request.payment_method_id,
        trial_days=request.trial_days if request.HasField("trial_days") else None,
    )


def _update(request: pb.UpdateSubscriptionRequest, _: Principal) -> UpdateSubscription:
    return UpdateSubscription(
        id=request.id,
        request_id=request.request_id,
        plan_id=request.plan_id if request.HasField("plan_id") else None,
        cancel_at_period_end=request.cancel_at_period_end
        if request.HasField("cancel_at_period_end")
        else None,
        payment_method_id=request.payment_method_id
        if request.HasField("payment_method_id")
        else None,
    )


def _cancel(request: pb.CancelSubscriptionRequest, _: Principal) -> CancelSubscription:
    return CancelSubscription(request.id, request.request_id, request.at_period_end)


def _as_sent(request: pb.ArchivePlanRequest, _: Principal) -> pb.ArchivePlanRequest:
    return request


_PLAN = rpc.resource(plan_to_proto)
_SUBSCRIPTION = rpc.resource(subscription_to_proto)
_OWN = rpc.owner_only(require_own_subscription)


class SubscriptionServicer(rpc.Servicer, subscriptions_pb2_grpc.SubscriptionServiceServicer):
    CreatePlan = rpc.command(_create_plan, create_plan, _PLAN)
    GetPlan = rpc.read(_get_plan, plan_to_proto)
    ListPlans = rpc.read(_list_plans, rpc.page(pb.ListPlansResponse, "plans", plan_to_proto))
    ArchivePlan = rpc.command(_as_sent, _archive_plan, _PLAN)
    CreateSubscription = rpc.command(_create, create_subscription, _SUBSCRIPTION)
    GetSubscription = rpc.read(
        rpc.by_id(subscription_queries.get_subscription), subscription_to_proto
    )
    ListSubscriptions = rpc.read(
        rpc.users_page(subscription_queries.list_subscriptions),
        rpc.page(pb.ListSubscriptionsResponse, "subscriptions", subscription_to_proto),
    )
    UpdateSubscription = rpc.command(_update, update_subscription, _SUBSCRIPTION, _OWN)
    CancelSubscription = rpc.command(_cancel, cancel_subscription, _SUBSCRIPTION, _OWN)
