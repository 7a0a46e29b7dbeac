"""The provider's refund events (Stripe: refund.updated, ...) move our refund.

A refund is found by its provider id, which CreateRefund saves once Stripe
answered, or by the key in its metadata before that; a refund made at Stripe
itself becomes a refund row (made_at_provider.py). Locks follow CreateRefund's order
(payment, then refund), so the two never deadlock.
"""

from __future__ import annotations

from server.domain.webhook_events import WebhookEventStatus
from server.service.dependencies import Dependencies
from server.service.provider import RefundReport
from server.service.refunds.made_at_provider import record_refund_made_at_provider
from server.service.refunds.provider_outcomes import apply_refund_outcome
from server.service.unit_of_work import UnitOfWork


async def apply_refund_event(
    deps: Dependencies, uow: UnitOfWork, provider: str, report: RefundReport
) -> tuple[WebhookEventStatus, str]:
    """Apply one refund report; the stored status and the payment id it concerns."""
    found = await uow.refunds.find_by_provider_refund_id(provider, report.provider_refund_id)
    if found is None and report.refund_id:
        found = await uow.refunds.get(report.refund_id)  # ours, before our call saved its id
    if found is None:
        return await record_refund_made_at_provider(deps, uow, provider, report)
    payment = await uow.payments.get(found.payment_id, for_update=True)
    refund = await uow.refunds.get(found.id, for_update=True)
    if payment is None or refund is None:
        return WebhookEventStatus.IGNORED, ""
    expected = payment.event_sequence
    if not apply_refund_outcome(payment, refund, report.reported, deps.clock.now()):
        # Settled already (by the call, the janitor or an earlier event), or no news.
        return WebhookEventStatus.STALE, payment.id
    await uow.refunds.save(refund)
    if payment.pending_events:
        await uow.payments.save(payment, expected)
    return WebhookEventStatus.APPLIED, payment.id
