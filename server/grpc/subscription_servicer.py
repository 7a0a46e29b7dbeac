"""SubscriptionService over gRPC: proto in, command to the service layer, proto out."""

from __future__ import annotations

from typing import Any

from grpc import aio
from payments.v1 import subscriptions_pb2 as pb
from payments.v1 import subscriptions_pb2_grpc

from server.adapters.subscription_codec import (
    interval_from_proto,
    plan_to_proto,
    subscription_to_proto,
)
from server.domain.plan import Plan
from server.domain.subscription import Subscription
from server.grpc.caller import caller_of, principal_of
from server.grpc.replies import reply
from server.service.dependencies import Dependencies
from server.service.ownership import require_own_subscription, user_id_for
from server.service.payments.requests import AmountInput
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

Context = aio.ServicerContext[Any, Any]


def _plan(outcome: Outcome[Plan], context: Context) -> pb.Plan:
    return reply(context, outcome, plan_to_proto)


def _subscription(outcome: Outcome[Subscription], context: Context) -> pb.Subscription:
    return reply(context, outcome, subscription_to_proto)


class SubscriptionServicer(subscriptions_pb2_grpc.SubscriptionServiceServicer):
    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    async def CreatePlan(self, request: pb.CreatePlanRequest, context: Context) -> pb.Plan:
        command = CreatePlan(
            request_id=request.request_id,
            name=request.name,
            price=AmountInput(request.price.currency_code, request.price.minor_units)
            if request.HasField("price")
            else None,
            interval=interval_from_proto(request.interval),
            interval_count=request.interval_count,
            trial_days=request.trial_days,
        )
        return _plan(await create_plan(self._deps, caller_of(context), command), context)

    async def GetPlan(self, request: pb.GetPlanRequest, context: Context) -> pb.Plan:
        return plan_to_proto(await subscription_queries.get_plan(self._deps.uow, request.id))

    async def ListPlans(
        self, request: pb.ListPlansRequest, context: Context
    ) -> pb.ListPlansResponse:
        found, token = await subscription_queries.list_plans(
            self._deps.lagging_reads, request.show_archived, request.page_size, request.page_token
        )
        return pb.ListPlansResponse(plans=[plan_to_proto(p) for p in found], next_page_token=token)

    async def ArchivePlan(self, request: pb.ArchivePlanRequest, context: Context) -> pb.Plan:
        outcome = await archive_plan(self._deps, caller_of(context), request.id, request.request_id)
        return _plan(outcome, context)

    async def CreateSubscription(
        self, request: pb.CreateSubscriptionRequest, context: Context
    ) -> pb.Subscription:
        command = CreateSubscription(
            request_id=request.request_id,
            user_id=user_id_for(principal_of(context).owner, request.user_id),
            plan_id=request.plan_id,
            payment_method_id=request.payment_method_id,
            trial_days=request.trial_days if request.HasField("trial_days") else None,
        )
        outcome = await create_subscription(self._deps, caller_of(context), command)
        return _subscription(outcome, context)

    async def GetSubscription(
        self, request: pb.GetSubscriptionRequest, context: Context
    ) -> pb.Subscription:
        found = await subscription_queries.get_subscription(
            self._deps.uow, request.id, principal_of(context).owner
        )
        return subscription_to_proto(found)

    async def ListSubscriptions(
        self, request: pb.ListSubscriptionsRequest, context: Context
    ) -> pb.ListSubscriptionsResponse:
        found, token = await subscription_queries.list_subscriptions(
            self._deps.lagging_reads,
            user_id_for(principal_of(context).owner, request.user_id),
            request.page_size,
            request.page_token,
        )
        return pb.ListSubscriptionsResponse(
            subscriptions=[subscription_to_proto(s) for s in found], next_page_token=token
        )

    async def UpdateSubscription(
        self, request: pb.UpdateSubscriptionRequest, context: Context
    ) -> pb.Subscription:
        await require_own_subscription(self._deps.uow, request.id, principal_of(context).owner)
        command = UpdateSubscription(
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
        outcome = await update_subscription(self._deps, caller_of(context), command)
        return _subscription(outcome, context)

    async def CancelSubscription(
        self, request: pb.CancelSubscriptionRequest, context: Context
    ) -> pb.Subscription:
        await require_own_subscription(self._deps.uow, request.id, principal_of(context).owner)
        command = CancelSubscription(
            id=request.id, request_id=request.request_id, at_period_end=request.at_period_end
        )
        outcome = await cancel_subscription(self._deps, caller_of(context), command)
        return _subscription(outcome, context)
