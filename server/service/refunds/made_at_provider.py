"""Refunds made at the provider itself (Stripe's dashboard), and lost disputes: refund rows.

A refund we asked for carries our idempotency key in its metadata (the adapter
reads it into RefundReport.refund_id), so an event about it always finds our
row, even before our call has saved the provider's refund id. A refund without
it was made elsewhere: it is recorded as a refund of its payment, with its
amount, once (by the provider's refund id), and moves the payment like one of
ours (refund.issued). A refund that failed or was canceled there moved no money
and is not recorded. A dispute the customer won (a closed dispute reported lost)
took its amount back through the bank: it is recorded the same way, keyed by
the dispute's id; a dispute still open or won by us changes nothing.
"""

from __future__ import annotations

import logging

from server.domain.errors import FailedPrecondition
from server.domain.ids import REFUND_ID
from server.domain.money import Money
from server.domain.refund import new_refund
from server.domain.webhook_events import WebhookEventStatus
from server.service.dependencies import Dependencies
from server.service.provider import (
    DisputeReport,
    ProviderRefund,
    ProviderRefundStatus,
    RefundReport,
)
from server.service.unit_of_work import UnitOfWork

_log = logging.getLogger(__name__)
MADE_AT_PROVIDER = "made at the provider"
DISPUTE_LOST = "dispute lost"


async def apply_dispute_event(
    deps: Dependencies, uow: UnitOfWork, provider: str, report: DisputeReport
) -> tuple[WebhookEventStatus, str]:
    """A closed dispute: if lost, its amount is recorded as a refund, once."""
    if not report.lost:
        return WebhookEventStatus.IGNORED, ""
    recorded = await uow.refunds.find_by_provider_refund_id(provider, report.provider_dispute_id)
    if recorded is not None:
        return WebhookEventStatus.STALE, recorded.payment_id
    as_refund = RefundReport(
        report.provider_dispute_id,
        ProviderRefund(report.provider_dispute_id, ProviderRefundStatus.SUCCEEDED),
        provider_payment_id=report.provider_payment_id,
        amount=report.amount,
    )
    return await record_refund_made_at_provider(deps, uow, provider, as_refund, reason=DISPUTE_LOST)


async def record_refund_made_at_provider(
    deps: Dependencies,
    uow: UnitOfWork,
    provider: str,
    report: RefundReport,
    *,
    reason: str = MADE_AT_PROVIDER,
) -> tuple[WebhookEventStatus, str]:
    """Record money the provider gave back without us; the stored status and payment id."""
    amount = report.amount
    if not report.provider_payment_id or amount is None or amount <= 0:
        return WebhookEventStatus.IGNORED, ""
    payment = await uow.payments.find_by_provider_id(
        provider, report.provider_payment_id, for_update=True
    )
    if payment is None:
        return WebhookEventStatus.IGNORED, ""
    view = report.reported
    if view.status not in (ProviderRefundStatus.SUCCEEDED, ProviderRefundStatus.PENDING):
        return WebhookEventStatus.IGNORED, payment.id
    now = deps.clock.now()
    refund = new_refund(
        refund_id=REFUND_ID.new(),
        payment_id=payment.id,
        amount=Money(payment.amount.currency_code, amount),
        provider=provider,
        reason=reason,
        now=now,
    )
    refund.provider_refund_id = view.provider_refund_id
    expected = payment.event_sequence
    if view.status is ProviderRefundStatus.SUCCEEDED:
        refund.succeed(view.provider_refund_id, now)
        try:
            payment.refund(refund.amount, now, refund=refund)
        except FailedPrecondition:
            # More than we know was captured: an operator must look; nothing is changed.
            _log.error("a refund at the provider exceeds what payment %s captured", payment.id)
            return WebhookEventStatus.STALE, payment.id
    await uow.refunds.add(refund)
    if payment.pending_events:
        await uow.payments.save(payment, expected)
    return WebhookEventStatus.APPLIED, payment.id
