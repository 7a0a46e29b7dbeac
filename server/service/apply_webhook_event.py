"""Apply a verified Stripe webhook event exactly once, through the payment state table.

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

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from server.adapters.db.outages import is_outage, is_refused_data
from server.adapters.providers.base import ProviderPayment, ProviderRejected, ProviderStatus
from server.adapters.providers.stripe_provider import StripeProvider, failure_from, view_data
from server.domain.errors import FailedPrecondition
from server.domain.payment import Payment
from server.domain.payment_states import PaymentOp
from server.domain.webhook_events import WebhookEvent, WebhookEventStatus
from server.observability.context import about_payment
from server.service.apply_refund_event import REFUND_EVENTS, apply_refund_event
from server.service.dependencies import Dependencies
from server.service.provider_outcomes import (
    BEFORE_CONFIRMATION,
    CONFIRMED_AT_PROVIDER,
    apply_provider_outcome,
)
from server.service.provider_refunds import DISPUTE_EVENTS, apply_dispute_event
from server.service.subscription_webhooks import SUBSCRIPTION_WEBHOOKS, apply_subscription_event
from server.service.unit_of_work import DuplicateWebhookEvent, UnitOfWork
from server.service.webhook_rejections import (
    INVALID_TYPE,
    TooDeep,
    check_depth,
    content_problem,
    failure_reason,
    storable_id,
    storable_type,
)

_log = logging.getLogger(__name__)

STRIPE = StripeProvider.name
PAYMENT_FAILED = "payment_intent.payment_failed"
# The PaymentIntent events that move a payment; refund events move a refund
# (apply_refund_event.py); invoices and subscriptions go to subscription_webhooks;
# everything else is stored as ignored.
PAYMENT_INTENT_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        PAYMENT_FAILED,
        "payment_intent.canceled",
        "payment_intent.requires_action",
        "payment_intent.amount_capturable_updated",
        "payment_intent.processing",
    }
)
MAX_ID_LENGTH = 255
# Raised by what the event holds (a string where a number belongs, bytes the database
# refuses, nesting too deep): the same each time, so such an event is rejected, not retried.
# Anything else, and any outage, is ours: stored as failed and answered 500.
_CONTENT_ERRORS = (TypeError, ValueError, LookupError, AttributeError, RecursionError)


def _caused_by_content(error: Exception) -> bool:
    if is_outage(error):
        return False
    return isinstance(error, _CONTENT_ERRORS) or is_refused_data(error)


class MalformedWebhookEvent(Exception):
    """A verified body that is not a Stripe event (not JSON, or no id or type)."""


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


@dataclass(frozen=True, slots=True)
class StripeEvent:
    id: str
    type: str
    # The body exactly as received and signed.
    payload: str
    data: Mapping[str, Any]


def parse_event(body: bytes | str) -> StripeEvent:
    """The event in a verified body; MalformedWebhookEvent if it is not one, TooDeep if it
    nests too deep to read."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        check_depth(text)
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        raise MalformedWebhookEvent("the body is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedWebhookEvent("the body is not a JSON object")
    event_id, event_type = data.get("id"), data.get("type")
    if (
        not isinstance(event_id, str)
        or not isinstance(event_type, str)
        or not 0 < len(event_id) <= MAX_ID_LENGTH
        or not 0 < len(event_type) <= MAX_ID_LENGTH
    ):
        raise MalformedWebhookEvent("the event has no valid id or type")
    return StripeEvent(event_id, event_type, text, data)


async def receive_webhook_event(deps: Dependencies, event: StripeEvent) -> WebhookOutcome:
    """Store and apply `event` once; WebhookApplyFailed (stored as failed) if applying raised."""
    received = deps.clock.now()
    problem = content_problem(event.id, event.type, event.data)
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
    deps: Dependencies, event: StripeEvent, reason: str
) -> WebhookOutcome:
    """Keep an event that can never be applied (raw body, `reason`) and acknowledge it."""
    event_id, event_type = storable_id(event.id, event.payload), storable_type(event.type)
    _log.warning("webhook event %s (%s) rejected: %s", event_id, event_type, reason)
    stored = StripeEvent(event_id, event_type, event.payload, event.data)
    await _record(deps, stored, deps.clock.now(), WebhookEventStatus.REJECTED, reason)
    return WebhookOutcome.REJECTED


async def reject_unreadable_body(deps: Dependencies, body: str, reason: str) -> WebhookOutcome:
    """Keep a signed body that cannot even be read as an event, and acknowledge it."""
    return await reject_webhook_event(deps, StripeEvent("", INVALID_TYPE, body, {}), reason)


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


async def replay_failed_webhook_events(deps: Dependencies, *, limit: int = 100) -> ReplayReport:
    """Apply again up to `limit` stored events whose application failed, oldest first."""
    async with deps.uow() as uow:
        stored = await uow.webhook_events.failed(limit)
    counts = dict.fromkeys(("applied", "stale", "ignored", "duplicate", "failed"), 0)
    for event in stored:
        try:
            outcome = await receive_webhook_event(deps, parse_event(event.payload))
        except (WebhookApplyFailed, MalformedWebhookEvent, TooDeep):
            counts["failed"] += 1
        else:
            counts[outcome.value] += 1
    if stored:
        _log.info("replayed %d failed webhook events: %s", len(stored), counts)
    return ReplayReport(**counts)


async def _apply_once(deps: Dependencies, event: StripeEvent, received: datetime) -> WebhookOutcome:
    try:
        async with deps.uow() as uow:
            stored = await uow.webhook_events.get(event.id, for_update=True)
            if stored is not None and stored.status is not WebhookEventStatus.FAILED:
                return WebhookOutcome.DUPLICATE
            status, payment_id = await _apply(deps, uow, event)
            now = deps.clock.now()
            if stored is None:
                await uow.webhook_events.add(
                    WebhookEvent(
                        event_id=event.id,
                        type=event.type,
                        payload=event.payload,
                        received_time=received,
                        status=status,
                        applied_time=now,
                        payment_id=payment_id,
                    )
                )
            else:
                stored.status = status
                stored.error = ""
                stored.attempts += 1
                stored.applied_time = now
                stored.payment_id = payment_id
                await uow.webhook_events.save(stored)
            await uow.commit()
    except DuplicateWebhookEvent:
        # Another delivery of the same event committed first; its effect stands, ours is undone.
        return WebhookOutcome.DUPLICATE
    _log.info("webhook event %s (%s): %s", event.id, event.type, status.value)
    return WebhookOutcome(status.value)


async def _record(
    deps: Dependencies,
    event: StripeEvent,
    received: datetime,
    status: WebhookEventStatus,
    error: str,
) -> None:
    """Store `event` as FAILED or REJECTED with `error`, unless another delivery handled it."""
    try:
        async with deps.uow() as uow:
            stored = await uow.webhook_events.get(event.id, for_update=True)
            if stored is None:
                await uow.webhook_events.add(
                    WebhookEvent(
                        event_id=event.id,
                        type=event.type,
                        payload=event.payload,
                        received_time=received,
                        status=status,
                        error=error,
                    )
                )
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
    deps: Dependencies, uow: UnitOfWork, event: StripeEvent
) -> tuple[WebhookEventStatus, str]:
    if event.type in SUBSCRIPTION_WEBHOOKS:
        status = await apply_subscription_event(uow, event.type, event.data, deps.clock.now())
        return status, ""
    obj = event.data.get("data")
    if event.type in DISPUTE_EVENTS:
        dispute = obj.get("object") if isinstance(obj, Mapping) else None
        if not isinstance(dispute, Mapping):
            return WebhookEventStatus.IGNORED, ""
        return await apply_dispute_event(deps, uow, dispute)
    if event.type in REFUND_EVENTS:
        refund = obj.get("object") if isinstance(obj, Mapping) else None
        if not isinstance(refund, Mapping):
            return WebhookEventStatus.IGNORED, ""
        return await apply_refund_event(deps, uow, refund)
    if event.type not in PAYMENT_INTENT_EVENTS:
        return WebhookEventStatus.IGNORED, ""
    intent = obj.get("object") if isinstance(obj, Mapping) else None
    if not isinstance(intent, Mapping) or intent.get("object", "payment_intent") != (
        "payment_intent"
    ):
        return WebhookEventStatus.IGNORED, ""
    intent_id = intent.get("id")
    if not isinstance(intent_id, str) or not intent_id:
        return WebhookEventStatus.IGNORED, ""
    payment = await _find_payment(uow, intent, intent_id)
    if payment is None:
        return WebhookEventStatus.IGNORED, ""
    about_payment(payment.id, order_id=payment.order_id, provider=payment.provider)
    expected = payment.event_sequence
    before = (payment.state, payment.provider_payment_id)
    now = deps.clock.now()
    try:
        apply_provider_outcome(payment, _reported(event.type, intent), now)
    except FailedPrecondition:
        if payment.state not in BEFORE_CONFIRMATION or not await _confirmed_elsewhere(
            deps, payment, intent_id
        ):
            return WebhookEventStatus.STALE, payment.id
    if (payment.state, payment.provider_payment_id) != before:
        await uow.payments.save(payment, expected)
    return WebhookEventStatus.APPLIED, payment.id


async def _find_payment(
    uow: UnitOfWork, intent: Mapping[str, Any], intent_id: str
) -> Payment | None:
    """Ours by the intent's metadata.payment_id, else by (stripe, the intent's id)."""
    metadata = intent.get("metadata")
    our_id = metadata.get("payment_id") if isinstance(metadata, Mapping) else None
    if isinstance(our_id, str) and our_id:
        payment = await uow.payments.get(our_id, for_update=True)
        if (
            payment is not None
            and payment.provider == STRIPE
            and payment.provider_payment_id in ("", intent_id)
        ):
            return payment
    return await uow.payments.find_by_provider_payment_id(STRIPE, intent_id, for_update=True)


def _reported(event_type: str, intent: Mapping[str, Any]) -> ProviderPayment:
    reported = view_data(intent)
    if event_type == PAYMENT_FAILED and reported.status is not ProviderStatus.FAILED:
        # Stripe hands a failed intent back for another method; without a
        # last_payment_error the decline code is unknown, not the failure.
        error = intent.get("last_payment_error")
        code, decline = (
            (error.get("code"), error.get("decline_code"))
            if isinstance(error, Mapping)
            else (None, None)
        )
        return ProviderPayment(
            reported.provider_payment_id, ProviderStatus.FAILED, 0, failure_from(code, decline)
        )
    return reported


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
