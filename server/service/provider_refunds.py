"""Refunds made at the provider itself (Stripe's dashboard), and lost disputes: refund rows.

A refund we asked for carries our idempotency key in its metadata, so an
event about it always finds our row, even before our call has saved the
provider's refund id. A refund without it was made elsewhere: it is recorded
as a refund of its payment, with its amount, once (by the provider's refund
id), and moves the payment like one of ours (refund.issued). A refund that
failed or was canceled there moved no money and is not recorded. A dispute
the customer won (charge.dispute.closed, status lost) took its amount back
through the bank: it is recorded the same way, keyed by the dispute's id; a
dispute still open or won by us changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from server.adapters.providers.base import ProviderRefundStatus
from server.adapters.providers.stripe_provider import StripeProvider, refund_data_view
from server.domain.errors import FailedPrecondition
from server.domain.ids import REFUND_ID
from server.domain.money import Money
from server.domain.refund import new_refund
from server.domain.webhook_events import WebhookEventStatus
from server.service.dependencies import Dependencies
from server.service.unit_of_work import UnitOfWork

_log = logging.getLogger(__name__)
STRIPE = StripeProvider.name
# The metadata key our refund calls carry (see StripeProvider.refund_payment).
OUR_KEY = "idempotency_key"
MADE_AT_PROVIDER = "made at the provider"
DISPUTE_LOST = "dispute lost"
DISPUTE_EVENTS = frozenset({"charge.dispute.closed"})


def our_refund_id(obj: Mapping[str, Any]) -> str | None:
    """Our refund's id if the provider's refund object is one we asked for."""
    metadata = obj.get("metadata")
    key = metadata.get(OUR_KEY) if isinstance(metadata, Mapping) else None
    if not isinstance(key, str) or not key.endswith(":refund"):
        return None
    return key.removesuffix(":refund")


async def apply_dispute_event(
    deps: Dependencies, uow: UnitOfWork, obj: Mapping[str, Any]
) -> tuple[WebhookEventStatus, str]:
    """A closed dispute: if lost, its amount is recorded as a refund, once."""
    dispute_id = obj.get("id")
    if obj.get("object") != "dispute" or not isinstance(dispute_id, str) or not dispute_id:
        return WebhookEventStatus.IGNORED, ""
    if obj.get("status") != "lost":
        return WebhookEventStatus.IGNORED, ""
    recorded = await uow.refunds.find_by_provider_refund_id(STRIPE, dispute_id)
    if recorded is not None:
        return WebhookEventStatus.STALE, recorded.payment_id
    as_refund = {**obj, "status": "succeeded"}
    return await record_refund_made_at_provider(deps, uow, as_refund, reason=DISPUTE_LOST)


async def record_refund_made_at_provider(
    deps: Dependencies, uow: UnitOfWork, obj: Mapping[str, Any], *, reason: str = MADE_AT_PROVIDER
) -> tuple[WebhookEventStatus, str]:
    """Record money the provider gave back without us; the stored status and payment id."""
    intent_id, amount = obj.get("payment_intent"), obj.get("amount")
    if not isinstance(intent_id, str) or not isinstance(amount, int) or amount <= 0:
        return WebhookEventStatus.IGNORED, ""
    payment = await uow.payments.find_by_provider_payment_id(STRIPE, intent_id, for_update=True)
    if payment is None:
        return WebhookEventStatus.IGNORED, ""
    view = refund_data_view(obj)
    if view.status not in (ProviderRefundStatus.SUCCEEDED, ProviderRefundStatus.PENDING):
        return WebhookEventStatus.IGNORED, payment.id
    now = deps.clock.now()
    refund = new_refund(
        refund_id=REFUND_ID.new(),
        payment_id=payment.id,
        amount=Money(payment.amount.currency_code, amount),
        provider=STRIPE,
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
