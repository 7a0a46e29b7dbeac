"""Stripe's refund events (refund.updated, charge.refund.updated, ...) move our refund.

A refund is found by its provider id, which CreateRefund saves once Stripe
answered, or by the key in its metadata before that; a refund made at Stripe
itself becomes a refund row (provider_refunds.py). Locks follow CreateRefund's order
(payment, then refund), so the two never deadlock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.adapters.providers.stripe_provider import StripeProvider, refund_data_view
from server.domain.webhook_events import WebhookEventStatus
from server.service.dependencies import Dependencies
from server.service.provider_refunds import our_refund_id, record_refund_made_at_provider
from server.service.refund_outcomes import apply_refund_outcome
from server.service.unit_of_work import UnitOfWork

STRIPE = StripeProvider.name
REFUND_EVENTS = frozenset(
    {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
)


async def apply_refund_event(
    deps: Dependencies, uow: UnitOfWork, obj: Mapping[str, Any]
) -> tuple[WebhookEventStatus, str]:
    """Apply one refund object; the stored status and the payment id it concerns."""
    refund_id = obj.get("id")
    if obj.get("object") != "refund" or not isinstance(refund_id, str) or not refund_id:
        return WebhookEventStatus.IGNORED, ""
    found = await uow.refunds.find_by_provider_refund_id(STRIPE, refund_id)
    ours = our_refund_id(obj)
    if found is None and ours is not None:
        found = await uow.refunds.get(ours)  # ours, before our call saved Stripe's id
    if found is None:
        return await record_refund_made_at_provider(deps, uow, obj)
    payment = await uow.payments.get(found.payment_id, for_update=True)
    refund = await uow.refunds.get(found.id, for_update=True)
    if payment is None or refund is None:
        return WebhookEventStatus.IGNORED, ""
    expected = payment.event_sequence
    if not apply_refund_outcome(payment, refund, refund_data_view(obj), deps.clock.now()):
        # Settled already (by the call, the janitor or an earlier event), or no news.
        return WebhookEventStatus.STALE, payment.id
    await uow.refunds.save(refund)
    if payment.pending_events:
        await uow.payments.save(payment, expected)
    return WebhookEventStatus.APPLIED, payment.id
