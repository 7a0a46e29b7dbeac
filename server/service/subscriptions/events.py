"""The provider's invoice and subscription events, applied to the subscriptions it bills.

invoice.payment_succeeded starts the paid period (ACTIVE), invoice.payment_failed
makes it PAST_DUE (Stripe retries on its own schedule), and
customer.subscription.* keep cancel_at_period_end and the end in step. A move
the state table forbids (an event about an ended subscription) is stale.
"""

from __future__ import annotations

from datetime import datetime

from server.domain.errors import FailedPrecondition
from server.domain.subscription import Subscription
from server.domain.webhook_events import WebhookEventStatus
from server.service.provider import SubscriptionNews, SubscriptionReport
from server.service.unit_of_work import UnitOfWork

_ENDED = frozenset({"canceled", "incomplete_expired"})


async def _find(uow: UnitOfWork, provider: str, report: SubscriptionReport) -> Subscription | None:
    """Ours by the id we sent (it may not be recorded yet), else by the provider's id."""
    provider_id = report.provider_subscription_id
    if report.subscription_id:
        found = await uow.subscriptions.get(report.subscription_id, for_update=True)
        if (
            found is not None
            and found.provider == provider
            and found.provider_subscription_id in ("", provider_id)
        ):
            return found
    return await uow.subscriptions.find_by_provider_subscription_id(
        provider, provider_id, for_update=True
    )


async def apply_subscription_event(
    uow: UnitOfWork, provider: str, report: SubscriptionReport, now: datetime
) -> WebhookEventStatus:
    if not report.provider_subscription_id:
        return WebhookEventStatus.IGNORED
    subscription = await _find(uow, provider, report)
    if subscription is None:
        return WebhookEventStatus.IGNORED
    subscription.provider_subscription_id = report.provider_subscription_id
    try:
        if report.news is SubscriptionNews.PERIOD_PAID:
            # A trial's 0.00 invoice pays for nothing.
            if report.period is None or report.amount_paid == 0:
                return WebhookEventStatus.IGNORED
            subscription.provider_period_paid(*report.period, now)
        elif report.news is SubscriptionNews.PAYMENT_FAILED:
            subscription.provider_payment_failed(now)
        elif report.news is SubscriptionNews.DELETED or report.status in _ENDED:
            if not subscription.provider_ended(report.status, now):
                return WebhookEventStatus.APPLIED
        else:
            subscription.update(now, cancel_at_period_end=report.cancel_at_period_end)
    except FailedPrecondition:
        return WebhookEventStatus.STALE
    await uow.subscriptions.save(subscription)
    return WebhookEventStatus.APPLIED
