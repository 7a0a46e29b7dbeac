"""Subscriptions Stripe bills, against a real localstripe process.

localstripe creates and charges the subscription and its first invoice, and
cancels it; it never renews on its own (no clock), and it sends webhooks only
to a configured endpoint. So the webhook events here are built from the
objects localstripe holds (retrieved through the SDK), with the period moved
on for a renewal, signed, and posted to the webhook sidecar's app.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import stripe
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.app import create_app
from server.adapters.db.engine import ping
from server.adapters.db.tables import outbox
from server.adapters.providers.resilience import (
    CircuitBreaker,
    ResilientProvider,
)
from server.adapters.providers.stripe_billing import StripeBilling
from server.adapters.providers.stripe_provider import StripeProvider
from server.config import ResiliencePolicy
from server.domain.billing_period import Interval
from server.domain.errors import FailedPrecondition
from server.domain.subscription import SubscriptionState
from server.jobs.renewals import renew_due_subscriptions
from server.service.dependencies import Dependencies
from server.service.payment_methods.commands import attach_payment_method
from server.service.payment_methods.requests import AttachPaymentMethod
from server.service.payments.requests import AmountInput
from server.service.subscriptions.commands import (
    CancelSubscription,
    CreateSubscription,
    UpdateSubscription,
    cancel_subscription,
    create_subscription,
    update_subscription,
)
from server.service.subscriptions.plans import CreatePlan, create_plan
from server.service.subscriptions.queries import get_subscription
from tests.support.stripe_events import event_body, signed_headers

API_KEY = "sk_test_local"
CALLER = "billing-admin"
MONTH = 31 * 24 * 3600
SECRET = "whsec_subscriptions"


@pytest.fixture
def stripe_deps(deps: Dependencies, localstripe_url: str) -> Dependencies:
    """As bootstrap.py builds it for Stripe: SDK calls behind the resilience layer."""
    provider = ResilientProvider(
        StripeProvider(api_key=API_KEY, api_base=localstripe_url),
        ResiliencePolicy(attempts=2, backoff_initial_s=0.01, call_timeout_s=5),
        CircuitBreaker(5, 30),
    )
    billing = StripeBilling(API_KEY, localstripe_url, provider, 5)
    return replace(deps, provider=provider, simulator=None, billing=billing)


@pytest.fixture
def stripe_client(localstripe_url: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        API_KEY, base_addresses={"api": localstripe_url}, http_client=stripe.HTTPXClient()
    )


async def subscribe(deps: Dependencies, card: str, trial_days: int | None = None) -> str:
    n = uuid.uuid4().hex[:8]
    user = f"user-{n}"
    plan = await create_plan(
        deps,
        CALLER,
        CreatePlan(f"plan-{n}", "Premium", AmountInput("EUR", 1200), Interval.MONTH, 1),
    )
    method = await attach_payment_method(deps, CALLER, AttachPaymentMethod(f"pm-{n}", user, card))
    created = await create_subscription(
        deps,
        CALLER,
        CreateSubscription(f"sub-{n}", user, plan.resource.id, method.resource.id, trial_days),
    )
    return created.resource.id


@pytest.fixture
async def gateway(
    stripe_deps: Dependencies, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(stripe_deps, [SECRET], database_ready=partial(ping, engine))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


async def deliver(gateway: httpx.AsyncClient, event_type: str, obj: dict[str, Any]) -> str:
    """POST the signed event to /webhooks/stripe; the outcome the sidecar reports."""
    body = event_body(event_type, obj)
    reply = await gateway.post(
        "/webhooks/stripe", content=body, headers=signed_headers(body, SECRET)
    )
    assert reply.status_code == 200, reply.text
    outcome: str = reply.json()["outcome"]
    return outcome


async def latest_invoice(client: stripe.StripeClient, provider_id: str) -> dict[str, Any]:
    invoices = await client.v1.invoices.list_async({"subscription": provider_id, "limit": 1})
    found: dict[str, Any] = json.loads(json.dumps(invoices.data[0].to_dict()))
    return found


def next_period(invoice: dict[str, Any]) -> dict[str, Any]:
    """The invoice Stripe would send a month later: same shape, the period moved on."""
    renewal: dict[str, Any] = json.loads(json.dumps(invoice))
    renewal["id"] = f"in_renewal_{uuid.uuid4().hex[:8]}"
    for line in renewal["lines"]["data"]:
        line["period"] = {"start": line["period"]["end"], "end": line["period"]["end"] + MONTH}
    renewal["period_start"], renewal["period_end"] = (
        renewal["period_end"],
        renewal["period_end"] + MONTH,
    )
    return renewal


async def event_types(engine: AsyncEngine, subscription_id: str) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(outbox.c.event_type)
            .where(outbox.c.aggregate_id == subscription_id)
            .order_by(outbox.c.id)
        )
        return list(rows.scalars())


async def test_a_stripe_subscription_follows_its_webhooks(
    stripe_deps: Dependencies,
    stripe_client: stripe.StripeClient,
    engine: AsyncEngine,
    gateway: httpx.AsyncClient,
) -> None:
    sub_id = await subscribe(stripe_deps, "pm_card_visa")
    active = await get_subscription(stripe_deps.uow, sub_id)
    assert active.state is SubscriptionState.ACTIVE
    assert active.provider == "stripe"
    assert active.provider_subscription_id.startswith("sub_")
    assert active.due_time is None  # Stripe bills it, not our renewal job
    remote = await stripe_client.v1.subscriptions.retrieve_async(active.provider_subscription_id)
    assert remote.status == "active"
    assert remote.metadata["subscription_id"] == sub_id
    first = await latest_invoice(stripe_client, active.provider_subscription_id)
    assert first["status"] == "paid"
    assert first["amount_paid"] == 1200

    # The first invoice's own event, late: already known.
    assert await deliver(gateway, "invoice.payment_succeeded", first) == "applied"
    assert (await get_subscription(stripe_deps.uow, sub_id)).periods_paid == 1

    renewal = next_period(first)
    assert await deliver(gateway, "invoice.payment_failed", renewal) == "applied"
    past_due = await get_subscription(stripe_deps.uow, sub_id)
    assert past_due.state is SubscriptionState.PAST_DUE
    assert await deliver(gateway, "invoice.payment_succeeded", renewal) == "applied"
    renewed = await get_subscription(stripe_deps.uow, sub_id)
    assert renewed.state is SubscriptionState.ACTIVE
    assert renewed.current_period_start == active.current_period_end
    assert renewed.periods_paid == 2

    await cancel_subscription(stripe_deps, CALLER, CancelSubscription(sub_id, "c-1", True))
    remote = await stripe_client.v1.subscriptions.retrieve_async(active.provider_subscription_id)
    assert remote.cancel_at_period_end is True
    assert (await get_subscription(stripe_deps.uow, sub_id)).cancel_at_period_end

    # Stripe ends it at the period end; localstripe ends it when told to.
    ended = await stripe_client.v1.subscriptions.cancel_async(active.provider_subscription_id)
    body = json.loads(json.dumps(ended.to_dict()))
    assert await deliver(gateway, "customer.subscription.deleted", body) == "applied"
    canceled = await get_subscription(stripe_deps.uow, sub_id)
    assert (canceled.state, canceled.end_reason) == (SubscriptionState.CANCELED, "period_end")
    assert await deliver(gateway, "invoice.payment_failed", renewal) == "stale"
    assert await event_types(engine, sub_id) == [
        "subscription.created",
        "subscription.renewed",
        "subscription.past_due",
        "subscription.renewed",
        "subscription.canceled",
    ]
    # The renewal job never bills a subscription Stripe bills.
    assert (await renew_due_subscriptions(stripe_deps)).paid == 0


async def test_a_declined_first_invoice_leaves_it_incomplete_and_cancel_reaches_stripe(
    stripe_deps: Dependencies, stripe_client: stripe.StripeClient
) -> None:
    sub_id = await subscribe(stripe_deps, "pm_card_chargeCustomerFail")
    incomplete = await get_subscription(stripe_deps.uow, sub_id)
    assert incomplete.state is SubscriptionState.INCOMPLETE
    provider_id = incomplete.provider_subscription_id
    assert (await stripe_client.v1.subscriptions.retrieve_async(provider_id)).status == "incomplete"
    canceled = await cancel_subscription(stripe_deps, CALLER, CancelSubscription(sub_id))
    assert canceled.resource.state is SubscriptionState.CANCELED
    assert (await stripe_client.v1.subscriptions.retrieve_async(provider_id)).status == "canceled"


async def test_a_trial_at_stripe_and_what_cannot_change_there(
    stripe_deps: Dependencies, stripe_client: stripe.StripeClient
) -> None:
    sub_id = await subscribe(stripe_deps, "pm_card_visa", trial_days=14)
    trialing = await get_subscription(stripe_deps.uow, sub_id)
    assert trialing.state is SubscriptionState.TRIALING
    assert trialing.current_period_end == trialing.create_time + timedelta(days=14)
    remote = await stripe_client.v1.subscriptions.retrieve_async(trialing.provider_subscription_id)
    # localstripe leaves a trial "incomplete" (Stripe says "trialing"); nothing was charged.
    assert remote.status in ("trialing", "incomplete")
    assert not (await stripe_client.v1.invoices.list_async({"subscription": remote.id})).data
    other = await create_plan(
        stripe_deps,
        CALLER,
        CreatePlan("plan-other", "Yearly", AmountInput("EUR", 9900), Interval.YEAR, 1),
    )
    with pytest.raises(FailedPrecondition) as refused:
        await update_subscription(
            stripe_deps, CALLER, UpdateSubscription(sub_id, plan_id=other.resource.id)
        )
    assert refused.value.reason == "PLAN_CHANGE_NOT_SUPPORTED"
