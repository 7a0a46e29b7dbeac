"""Apply a verified provider event exactly once, through the state tables.

The event row and its effect (the payment's new state and its outbox events)
are written in one transaction, so a crash leaves either both or neither, and
a second delivery of the same event id finds the row and does nothing.

Events arrive late, twice and out of order. A payment never moves backwards:
a move the state table forbids (a late payment_failed after succeeded)
changes nothing and the event is stored as stale. The provider is asked only
when in doubt: the payment was never confirmed by us (Stripe.js confirmed it
in the browser) and the event reports it further along. On the happy path no
provider call is made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from operator import attrgetter

from server.domain.errors import (
    DatabaseUnavailable,
    FailedPrecondition,
    ProviderUnavailable,
    TransactionConflict,
)
from server.domain.payment import Payment
from server.domain.payment_states import PaymentOp
from server.domain.webhook_events import WebhookEvent, WebhookEventStatus
from server.observability.context import about_payment
from server.service.audit.context import current_call
from server.service.dependencies import Dependencies
from server.service.payments.provider_outcomes import (
    BEFORE_CONFIRMATION,
    CONFIRMED_AT_PROVIDER,
    apply_provider_outcome,
)
from server.service.provider import (
    DisputeReport,
    MalformedWebhookEvent,
    PaymentReport,
    ProviderEvent,
    ProviderEvents,
    ProviderRejected,
    RefundReport,
    SubscriptionReport,
)
from server.service.refunds.events import apply_refund_event
from server.service.refunds.made_at_provider import apply_dispute_event
from server.service.reported import ReportedLookup
from server.service.subscriptions.events import apply_subscription_event
from server.service.unit_of_work import (
    DuplicateWebhookEvent,
    PaymentWebhookWrites,
    UnitOfWork,
    ValueRefused,
)
from server.service.webhooks.rejections import (
    INVALID_TYPE,
    TooDeep,
    failure_reason,
    storable_id,
    storable_type,
)

_log = logging.getLogger(__name__)
_REPORTED = ReportedLookup(lambda uow: uow.payments, attrgetter("provider_payment_id"))

# Raised by what the event holds (a string where a number belongs, a value the database
# refuses, nesting too deep): the same each time, so such an event is rejected, not retried.
# Anything else, and any outage, is ours: stored as failed and answered 500.
_CONTENT_ERRORS = (TypeError, ValueError, LookupError, AttributeError, RecursionError, ValueRefused)
_OUTAGES = (DatabaseUnavailable, TransactionConflict, ProviderUnavailable, OSError)


def _caused_by_content(error: Exception) -> bool:
    if isinstance(error, _OUTAGES):
        return False
    return isinstance(error, _CONTENT_ERRORS)


class WebhookApplyFailed(Exception):
    """Applying the event raised; it is stored as failed for a retry or a replay."""


class WebhookOutcome(StrEnum):
    APPLIED = "applied"
    STALE = "stale"
    IGNORED = "ignored"
    # Stored before (and not failed): acknowledged, nothing done.
    DUPLICATE = "duplicate"
    # Its content can never be applied: stored for an operator, acknowledged.
    REJECTED = "rejected"


async def receive_webhook_event(deps: Dependencies, event: ProviderEvent) -> WebhookOutcome:
    """Store and apply `event` once; WebhookApplyFailed (stored as failed) if applying raised."""
    received = deps.clock.now()
    problem = event.problem
    if problem is not None:
        return await reject_webhook_event(deps, event, problem)
    try:
        return await _apply_once(deps, event, received)
    except Exception as error:
        if _caused_by_content(error):
            return await reject_webhook_event(deps, event, failure_reason(error))
        failure = error
    # The class name only: messages may quote SQL parameters, that is, the payload.
    name = type(failure).__name__
    _log.error("webhook event %s (%s) failed to apply: %s", event.id, event.type, name)
    try:
        await _record(deps, event, received, WebhookEventStatus.FAILED, name)
    except Exception as again:
        _log.error(
            "webhook event %s could not be stored as failed: %s", event.id, type(again).__name__
        )
    raise WebhookApplyFailed(event.id) from None


async def reject_webhook_event(
    deps: Dependencies, event: ProviderEvent, reason: str
) -> WebhookOutcome:
    """Keep an event that can never be applied (raw body, `reason`) and acknowledge it."""
    event_id, event_type = storable_id(event.id, event.payload), storable_type(event.type)
    _log.warning("webhook event %s (%s) rejected: %s", event_id, event_type, reason)
    stored = replace(event, id=event_id, type=event_type)
    await _record(deps, stored, deps.clock.now(), WebhookEventStatus.REJECTED, reason)
    return WebhookOutcome.REJECTED


async def reject_unreadable_body(
    deps: Dependencies, provider: str, body: str, reason: str
) -> WebhookOutcome:
    """Keep a signed body that cannot even be read as an event, and acknowledge it."""
    unreadable = ProviderEvent(provider, "", INVALID_TYPE, body, lambda: None)
    return await reject_webhook_event(deps, unreadable, reason)


@dataclass(frozen=True, slots=True)
class ReplayReport:
    applied: int = 0
    stale: int = 0
    ignored: int = 0
    # Handled meanwhile by a redelivery.
    duplicate: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.applied + self.stale + self.ignored + self.duplicate + self.failed


async def replay_failed_webhook_events(
    deps: Dependencies, events: ProviderEvents, *, limit: int = 100
) -> ReplayReport:
    """Apply again up to `limit` stored events whose application failed, oldest first."""
    async with deps.uow() as uow:
        stored = await uow.webhook_events.failed(limit)
    counts = dict.fromkeys(("applied", "stale", "ignored", "duplicate", "failed"), 0)
    for event in stored:
        try:
            outcome = await receive_webhook_event(deps, events.parse(event.payload))
        except (WebhookApplyFailed, MalformedWebhookEvent, TooDeep):
            counts["failed"] += 1
        else:
            counts[outcome.value] += 1
    if stored:
        _log.info("replayed %d failed webhook events: %s", len(stored), counts)
    return ReplayReport(**counts)


async def _apply_once(
    deps: Dependencies, event: ProviderEvent, received: datetime
) -> WebhookOutcome:
    writes = deps.payment_webhooks
    report = _payment_report(event) if writes is not None and current_call() is None else None
    try:
        if writes is not None and report is not None:
            status = await _apply_payment_event(deps, writes, event, report, received)
        else:
            status = await _apply_in_unit_of_work(deps, event, received)
    except DuplicateWebhookEvent:
        # Another delivery of the same event committed first; its effect stands, ours is undone.
        return WebhookOutcome.DUPLICATE
    if status is None:
        return WebhookOutcome.DUPLICATE
    _log.info("webhook event %s (%s): %s", event.id, event.type, status.value)
    return WebhookOutcome(status.value)


def _payment_report(event: ProviderEvent) -> PaymentReport | None:
    """The event's report if it is about a payment; None sends it the general way, which
    also reads it again and handles what reading it raises."""
    try:
        report = event.read_report()
    except Exception:
        return None
    return report if isinstance(report, PaymentReport) else None


async def _apply_payment_event(
    deps: Dependencies,
    writes: PaymentWebhookWrites,
    event: ProviderEvent,
    report: PaymentReport,
    received: datetime,
) -> WebhookEventStatus | None:
    """A payment's event in one transaction of two statements; None: stored before."""
    async with writes.transaction() as transaction:
        stored, payment = await transaction.load(
            event.id, event.provider, report.payment_id, report.provider_payment_id
        )
        if stored is not None and stored.status is not WebhookEventStatus.FAILED:
            return None
        expected = payment.event_sequence if payment is not None else 0
        status, changed = await _move_payment(deps, payment, report)
        row = _settled(event, stored, status, payment.id if payment else "", received, deps)
        await transaction.finish(
            row,
            stored=stored is not None,
            payment=payment if changed else None,
            expected_sequence=expected,
        )
    return status


async def _apply_in_unit_of_work(
    deps: Dependencies, event: ProviderEvent, received: datetime
) -> WebhookEventStatus | None:
    """Any event, through the repositories; None: stored before."""
    async with deps.uow() as uow:
        stored = await uow.webhook_events.get(event.id, for_update=True)
        if stored is not None and stored.status is not WebhookEventStatus.FAILED:
            return None
        status, payment_id = await _apply(deps, uow, event)
        row = _settled(event, stored, status, payment_id, received, deps)
        if stored is None:
            await uow.webhook_events.add(row)
        else:
            await uow.webhook_events.save(row)
        await uow.commit()
    return status


def _settled(
    event: ProviderEvent,
    stored: WebhookEvent | None,
    status: WebhookEventStatus,
    payment_id: str,
    received: datetime,
    deps: Dependencies,
) -> WebhookEvent:
    """The event's row once applied: a new one, or the stored (failed) one updated."""
    now = deps.clock.now()
    if stored is None:
        return WebhookEvent(
            event_id=event.id,
            type=event.type,
            payload=event.payload,
            received_time=received,
            status=status,
            applied_time=now,
            payment_id=payment_id,
        )
    stored.status = status
    stored.error = ""
    stored.attempts += 1
    stored.applied_time = now
    stored.payment_id = payment_id
    return stored


async def _record(
    deps: Dependencies,
    event: ProviderEvent,
    received: datetime,
    status: WebhookEventStatus,
    error: str,
) -> None:
    """Store `event` as FAILED or REJECTED with `error`, unless another delivery handled it."""
    try:
        async with deps.uow() as uow:
            stored = await uow.webhook_events.get(event.id, for_update=True)
            if stored is None:
                first = WebhookEvent(event.id, event.type, event.payload, received, status)
                await uow.webhook_events.add(replace(first, error=error))
            elif stored.status is WebhookEventStatus.FAILED:
                stored.attempts += 1
                stored.status = status
                stored.error = error
                await uow.webhook_events.save(stored)
            else:
                return  # handled by another delivery meanwhile
            await uow.commit()
    except DuplicateWebhookEvent:
        return


async def _apply(
    deps: Dependencies, uow: UnitOfWork, event: ProviderEvent
) -> tuple[WebhookEventStatus, str]:
    report = event.read_report()
    if isinstance(report, SubscriptionReport):
        status = await apply_subscription_event(uow, event.provider, report, deps.clock.now())
        return status, ""
    if isinstance(report, DisputeReport):
        return await apply_dispute_event(deps, uow, event.provider, report)
    if isinstance(report, RefundReport):
        return await apply_refund_event(deps, uow, event.provider, report)
    if report is None:
        return WebhookEventStatus.IGNORED, ""
    payment = await _REPORTED(uow, event.provider, report.payment_id, report.provider_payment_id)
    if payment is None:
        return WebhookEventStatus.IGNORED, ""
    expected = payment.event_sequence
    status, changed = await _move_payment(deps, payment, report)
    if changed:
        await uow.payments.save(payment, expected)
    return status, payment.id


async def _move_payment(
    deps: Dependencies, payment: Payment | None, report: PaymentReport
) -> tuple[WebhookEventStatus, bool]:
    """Apply the report to `payment` through its state table: the status, and whether the
    payment changed (and must be written)."""
    if payment is None:
        return WebhookEventStatus.IGNORED, False
    about_payment(payment.id, order_id=payment.order_id, provider=payment.provider)
    before = (payment.state, payment.provider_payment_id)
    now = deps.clock.now()
    try:
        apply_provider_outcome(payment, report.reported, now)
    except FailedPrecondition:
        if payment.state not in BEFORE_CONFIRMATION or not await _confirmed_elsewhere(
            deps, payment, report.provider_payment_id
        ):
            return WebhookEventStatus.STALE, False
    return WebhookEventStatus.APPLIED, (payment.state, payment.provider_payment_id) != before


async def _confirmed_elsewhere(deps: Dependencies, payment: Payment, intent_id: str) -> bool:
    """In doubt: a payment we never confirmed that the event reports further along.

    The provider's current view decides; if it says the payment was confirmed
    (in the browser, by Stripe.js), the payment goes through CONFIRM to it.
    """
    try:
        truth = await deps.provider.retrieve_payment(intent_id)
    except ProviderRejected:
        return False
    if truth.status not in CONFIRMED_AT_PROVIDER:
        return False
    now = deps.clock.now()
    try:
        payment.apply(PaymentOp.CONFIRM, now)
        apply_provider_outcome(payment, truth, now)
    except FailedPrecondition:
        return False
    return True
