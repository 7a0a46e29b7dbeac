"""Stripe's invoice and subscription webhooks, applied to the subscriptions Stripe bills.

invoice.payment_succeeded starts the paid period (ACTIVE), invoice.payment_failed
makes it PAST_DUE (Stripe retries on its own schedule), and
customer.subscription.* keep cancel_at_period_end and the end in step. A move
the state table forbids (an event about an ended subscription) is stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from server.adapters.providers.stripe_billing import subscription_view
from server.domain.errors import FailedPrecondition
from server.domain.subscription import Subscription
from server.domain.webhook_events import WebhookEventStatus
from server.service.unit_of_work import UnitOfWork

STRIPE = "stripe"
INVOICE_PAID = frozenset({"invoice.payment_succeeded", "invoice.paid"})
INVOICE_FAILED = "invoice.payment_failed"
SUBSCRIPTION_DELETED = "customer.subscription.deleted"
SUBSCRIPTION_CHANGED = frozenset(
    {"customer.subscription.created", "customer.subscription.updated", SUBSCRIPTION_DELETED}
)
SUBSCRIPTION_WEBHOOKS = INVOICE_PAID | SUBSCRIPTION_CHANGED | {INVOICE_FAILED}
_ENDED = frozenset({"canceled", "incomplete_expired"})


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _invoice_subscription(invoice: Mapping[str, Any]) -> str:
    """The invoice's subscription id: `subscription`, or `parent` in newer API versions."""
    found = invoice.get("subscription")
    if isinstance(found, Mapping):
        found = found.get("id")
    if not found:
        details = _mapping(_mapping(invoice.get("parent")).get("subscription_details"))
        found = details.get("subscription")
    return found if isinstance(found, str) else ""


def _invoice_period(invoice: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    """The period the invoice pays: its subscription line's, else the invoice's own."""
    lines = _mapping(invoice.get("lines")).get("data")
    period = _mapping(lines[0]).get("period") if isinstance(lines, list) and lines else None
    start, end = (
        (_mapping(period).get("start"), _mapping(period).get("end"))
        if period
        else (invoice.get("period_start"), invoice.get("period_end"))
    )
    if not isinstance(start, int) or not isinstance(end, int) or end <= start:
        return None
    return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)


async def _find(uow: UnitOfWork, obj: Mapping[str, Any], provider_id: str) -> Subscription | None:
    """Ours by metadata.subscription_id (the id may not be recorded yet), else by Stripe's id."""
    our_id = _mapping(obj.get("metadata")).get("subscription_id")
    if isinstance(our_id, str) and our_id:
        found = await uow.subscriptions.get(our_id, for_update=True)
        if (
            found is not None
            and found.provider == STRIPE
            and found.provider_subscription_id in ("", provider_id)
        ):
            return found
    return await uow.subscriptions.find_by_provider_subscription_id(
        STRIPE, provider_id, for_update=True
    )


async def apply_subscription_event(
    uow: UnitOfWork, event_type: str, data: Mapping[str, Any], now: datetime
) -> WebhookEventStatus:
    obj = _mapping(_mapping(data.get("data")).get("object"))
    invoice = event_type in INVOICE_PAID or event_type == INVOICE_FAILED
    provider_id = _invoice_subscription(obj) if invoice else str(obj.get("id") or "")
    if not provider_id:
        return WebhookEventStatus.IGNORED
    subscription = await _find(uow, {} if invoice else obj, provider_id)
    if subscription is None:
        return WebhookEventStatus.IGNORED
    subscription.provider_subscription_id = provider_id
    try:
        if event_type in INVOICE_PAID:
            period = _invoice_period(obj)
            # A trial's 0.00 invoice pays for nothing.
            if period is None or obj.get("amount_paid") == 0:
                return WebhookEventStatus.IGNORED
            subscription.provider_period_paid(*period, now)
        elif event_type == INVOICE_FAILED:
            subscription.provider_payment_failed(now)
        else:
            remote = subscription_view(obj)
            if event_type == SUBSCRIPTION_DELETED or remote.status in _ENDED:
                if not subscription.provider_ended(remote.status, now):
                    return WebhookEventStatus.APPLIED
            else:
                subscription.update(now, cancel_at_period_end=remote.cancel_at_period_end)
    except FailedPrecondition:
        return WebhookEventStatus.STALE
    await uow.subscriptions.save(subscription)
    return WebhookEventStatus.APPLIED
