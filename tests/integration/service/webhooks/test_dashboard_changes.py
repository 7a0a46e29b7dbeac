"""Changes made at Stripe itself (its dashboard) land here, against localstripe.

localstripe keeps the intents and refunds but sends no webhooks: each test makes
the change through the SDK, as the dashboard would, then delivers the event
Stripe would send, built from localstripe's own object, through the service
the sidecar uses.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
import stripe
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db.tables import refunds
from server.adapters.providers.stripe_events import StripeEvents
from server.domain.errors import FailedPrecondition
from server.domain.payment import CaptureMethod
from server.domain.payment_states import PaymentState
from server.service.dependencies import Dependencies
from server.service.payments.commands import capture_payment, create_payment
from server.service.payments.queries import get_payment
from server.service.payments.reconcile import reconcile_payments
from server.service.payments.requests import AmountInput, CapturePayment, CreatePayment
from server.service.refunds.commands import CreateRefund, create_refund
from server.service.webhooks.receive import WebhookOutcome, receive_webhook_event
from tests.support.stored_data import outbox_types
from tests.support.stripe_events import event_body


def create(n: int, capture: CaptureMethod = CaptureMethod.AUTOMATIC) -> CreatePayment:
    return CreatePayment(
        request_id=f"dash-{n}",
        order_id=f"dash-order-{n}",
        user_id="user-1",
        amount=AmountInput("EUR", 1000),
        payment_method_id="pm_card_visa",
        capture_method=capture,
        confirm=True,
    )


async def deliver(deps: Dependencies, event_type: str, obj: stripe.StripeObject) -> WebhookOutcome:
    # str() of an SDK object is its JSON, as Stripe sent it.
    body = event_body(event_type, json.loads(str(obj)))
    return await receive_webhook_event(deps, StripeEvents().parse(body))


async def test_a_capture_in_the_dashboard_lands_from_its_webhook(
    stripe_deps: Dependencies, stripe_client: stripe.StripeClient, engine: AsyncEngine
) -> None:
    made = (await create_payment(stripe_deps, "svc", create(1, CaptureMethod.MANUAL))).resource
    assert made.state is PaymentState.REQUIRES_CAPTURE
    captured = await stripe_client.v1.payment_intents.capture_async(
        made.provider_payment_id, {"amount_to_capture": 600}
    )
    outcome = await deliver(stripe_deps, "payment_intent.succeeded", captured)
    assert outcome is WebhookOutcome.APPLIED
    payment = await get_payment(stripe_deps.uow, made.id)
    assert payment.state is PaymentState.SUCCEEDED
    assert payment.amount_captured == 600
    assert (await outbox_types(engine, made.id))[-2:] == ["payment.captured", "payment.succeeded"]
    with pytest.raises(FailedPrecondition) as refused:
        await capture_payment(stripe_deps, "svc", CapturePayment(id=made.id, request_id="c-1"))
    assert refused.value.reason == "INVALID_PAYMENT_STATE"


async def test_a_capture_in_the_dashboard_lands_from_the_reconciler(
    stripe_deps: Dependencies, stripe_client: stripe.StripeClient
) -> None:
    made = (await create_payment(stripe_deps, "svc", create(2, CaptureMethod.MANUAL))).resource
    await stripe_client.v1.payment_intents.capture_async(
        made.provider_payment_id, {"amount_to_capture": 700}
    )
    report = await reconcile_payments(stripe_deps, include_not_due=True)
    assert made.id in report.changed
    payment = await get_payment(stripe_deps.uow, made.id)
    assert payment.state is PaymentState.SUCCEEDED
    assert payment.amount_captured == 700


async def test_a_cancel_in_the_dashboard_lands(
    stripe_deps: Dependencies, stripe_client: stripe.StripeClient, engine: AsyncEngine
) -> None:
    made = (await create_payment(stripe_deps, "svc", create(3, CaptureMethod.MANUAL))).resource
    canceled = await stripe_client.v1.payment_intents.cancel_async(made.provider_payment_id)
    assert await deliver(stripe_deps, "payment_intent.canceled", canceled) is (
        WebhookOutcome.APPLIED
    )
    assert (await get_payment(stripe_deps.uow, made.id)).state is PaymentState.CANCELED
    assert (await outbox_types(engine, made.id))[-1] == "payment.canceled"


async def test_a_refund_in_the_dashboard_becomes_a_refund_row_once(
    stripe_deps: Dependencies, stripe_client: stripe.StripeClient, engine: AsyncEngine
) -> None:
    made = (await create_payment(stripe_deps, "svc", create(4))).resource
    refund = await stripe_client.v1.refunds.create_async(
        {"payment_intent": made.provider_payment_id, "amount": 400}
    )
    assert await deliver(stripe_deps, "refund.created", refund) is WebhookOutcome.APPLIED
    # Stripe sends more than one event about it; it is counted once.
    assert await deliver(stripe_deps, "refund.updated", refund) is WebhookOutcome.STALE
    payment = await get_payment(stripe_deps.uow, made.id)
    assert payment.state is PaymentState.PARTIALLY_REFUNDED
    assert payment.amount_refunded == 400
    async with engine.connect() as connection:
        rows = (
            (await connection.execute(refunds.select().where(refunds.c.payment_id == made.id)))
            .mappings()
            .all()
        )
    assert [(r["amount"], r["state"], r["provider_refund_id"]) for r in rows] == [
        (400, "SUCCEEDED", refund.id)
    ]
    assert (await outbox_types(engine, made.id))[-1] == "refund.issued"


async def test_an_event_about_our_own_refund_is_not_counted_again(
    stripe_deps: Dependencies, stripe_client: stripe.StripeClient, engine: AsyncEngine
) -> None:
    made = (await create_payment(stripe_deps, "svc", create(5))).resource
    ours = (
        await create_refund(
            stripe_deps,
            "svc",
            CreateRefund(request_id="ref-5", payment_id=made.id, amount=AmountInput("EUR", 300)),
        )
    ).resource
    # The event overtakes our call: our row does not know Stripe's refund id yet.
    async with engine.begin() as connection:
        await connection.execute(
            refunds.update().where(refunds.c.id == ours.id).values(provider_refund_id="")
        )
    at_stripe = await stripe_client.v1.refunds.retrieve_async(ours.provider_refund_id)
    assert await deliver(stripe_deps, "refund.created", at_stripe) is WebhookOutcome.STALE
    payment = await get_payment(stripe_deps.uow, made.id)
    assert payment.amount_refunded == 300
    async with engine.connect() as connection:
        count = await connection.scalar(
            sa.select(sa.func.count()).select_from(refunds).where(refunds.c.payment_id == made.id)
        )
    assert count == 1
