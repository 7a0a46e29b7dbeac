"""The provider's invoice and subscription events, applied to the subscriptions it bills.

invoice.payment_succeeded starts the paid period (ACTIVE), invoice.payment_failed
makes it PAST_DUE (Stripe retries on its own schedule), and
customer.subscription.* keep cancel_at_period_end and the end in step. A move
the state table forbids (an event about an ended subscription) is stale.
"""

from __future__ import annotations

from datetime import datetime
from operator import attrgetter

from server.domain.errors import FailedPrecondition
from server.domain.webhook_events import WebhookEventStatus
from server.service.provider import SubscriptionNews, SubscriptionReport
from server.service.reported import ReportedLookup
from server.service.unit_of_work import UnitOfWork

_ENDED = frozenset({"canceled", "incomplete_expired"})


_REPORTED = ReportedLookup(lambda uow: uow.subscriptions, attrgetter("provider_subscription_id"))


async def apply_subscription_event(
    uow: UnitOfWork, provider: str, report: SubscriptionReport, now: datetime
) -> WebhookEventStatus:
    if not report.provider_subscription_id:
        return WebhookEventStatus.IGNORED
    subscription = await _REPORTED(
        uow, provider, report.subscription_id, report.provider_subscription_id
    )
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
