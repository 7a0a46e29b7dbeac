"""Stripe's webhook events, read here and handed to the service as neutral ProviderEvents.

Only the event types that move something of ours carry a report; every other
event is stored and acknowledged as ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from server.adapters.providers.stripe_billing import subscription_view
from server.adapters.providers.stripe_provider import (
    StripeProvider,
    failure_from,
    refund_data_view,
    view_data,
)
from server.service.provider import (
    DisputeReport,
    MalformedWebhookEvent,
    PaymentReport,
    ProviderEvent,
    ProviderPayment,
    ProviderStatus,
    RefundReport,
    Report,
    SubscriptionNews,
    SubscriptionReport,
)
from server.service.webhooks.rejections import check_depth, content_problem

MAX_ID_LENGTH = 255
PAYMENT_FAILED = "payment_intent.payment_failed"
# The PaymentIntent events that move a payment.
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
REFUND_EVENTS = frozenset(
    {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
)
DISPUTE_CLOSED = "charge.dispute.closed"
# The metadata key our refund calls carry (StripeProvider.refund_payment); its value is
# our refund's idempotency key, "<refund id>:refund".
OUR_REFUND_KEY = "idempotency_key"
INVOICE_PAID = frozenset({"invoice.payment_succeeded", "invoice.paid"})
INVOICE_FAILED = "invoice.payment_failed"
SUBSCRIPTION_DELETED = "customer.subscription.deleted"
SUBSCRIPTION_CHANGED = frozenset(
    {"customer.subscription.created", "customer.subscription.updated", SUBSCRIPTION_DELETED}
)
# Every type that can move something of ours; any other is stored as ignored.
APPLIED_EVENTS = (
    PAYMENT_INTENT_EVENTS
    | REFUND_EVENTS
    | {DISPUTE_CLOSED}
    | INVOICE_PAID
    | {INVOICE_FAILED}
    | SUBSCRIPTION_CHANGED
)


class StripeEvents:
    def parse(self, body: bytes | str) -> ProviderEvent:
        """The event in a verified body; MalformedWebhookEvent if it is not one, TooDeep
        if it nests too deep to read."""
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
        obj = _mapping(_mapping(data.get("data")).get("object"))
        return ProviderEvent(
            StripeProvider.name,
            event_id,
            event_type,
            text,
            partial(report, event_type, obj),
            content_problem(event_id, event_type, data, text),
        )


def report(event_type: str, obj: Mapping[str, Any]) -> Report:
    """What the event's object says, in neutral terms; None if it concerns nothing of ours."""
    if event_type in PAYMENT_INTENT_EVENTS:
        return _payment_report(event_type, obj)
    if event_type in REFUND_EVENTS:
        return _refund_report(obj)
    if event_type == DISPUTE_CLOSED:
        return _dispute_report(obj)
    if event_type in INVOICE_PAID or event_type == INVOICE_FAILED:
        return _invoice_report(event_type, obj)
    if event_type in SUBSCRIPTION_CHANGED:
        remote = subscription_view(obj)
        news = (
            SubscriptionNews.DELETED
            if event_type == SUBSCRIPTION_DELETED
            else SubscriptionNews.CHANGED
        )
        our_id = _mapping(obj.get("metadata")).get("subscription_id")
        return SubscriptionReport(
            news,
            str(obj.get("id") or ""),
            subscription_id=our_id if isinstance(our_id, str) else "",
            status=remote.status,
            cancel_at_period_end=remote.cancel_at_period_end,
        )
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _refund_report(refund: Mapping[str, Any]) -> RefundReport | None:
    refund_id = refund.get("id")
    if refund.get("object") != "refund" or not isinstance(refund_id, str) or not refund_id:
        return None
    key = _mapping(refund.get("metadata")).get(OUR_REFUND_KEY)
    ours = key.removesuffix(":refund") if isinstance(key, str) and key.endswith(":refund") else ""
    intent_id, amount = refund.get("payment_intent"), refund.get("amount")
    return RefundReport(
        refund_id,
        refund_data_view(refund),
        refund_id=ours,
        provider_payment_id=intent_id if isinstance(intent_id, str) else "",
        amount=amount if isinstance(amount, int) else None,
    )


def _dispute_report(dispute: Mapping[str, Any]) -> DisputeReport | None:
    dispute_id = dispute.get("id")
    if dispute.get("object") != "dispute" or not isinstance(dispute_id, str) or not dispute_id:
        return None
    intent_id, amount = dispute.get("payment_intent"), dispute.get("amount")
    return DisputeReport(
        dispute_id,
        intent_id if isinstance(intent_id, str) else "",
        amount if isinstance(amount, int) else None,
        lost=dispute.get("status") == "lost",
    )


def _payment_report(event_type: str, intent: Mapping[str, Any]) -> PaymentReport | None:
    if intent.get("object", "payment_intent") != "payment_intent":
        return None
    intent_id = intent.get("id")
    if not isinstance(intent_id, str) or not intent_id:
        return None
    our_id = _mapping(intent.get("metadata")).get("payment_id")
    return PaymentReport(
        intent_id, our_id if isinstance(our_id, str) else "", _reported(event_type, intent)
    )


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


def _invoice_report(event_type: str, invoice: Mapping[str, Any]) -> SubscriptionReport:
    provider_id = _invoice_subscription(invoice)
    if event_type == INVOICE_FAILED:
        return SubscriptionReport(SubscriptionNews.PAYMENT_FAILED, provider_id)
    paid = invoice.get("amount_paid")
    return SubscriptionReport(
        SubscriptionNews.PERIOD_PAID,
        provider_id,
        period=_invoice_period(invoice),
        amount_paid=paid if isinstance(paid, int) else None,
    )


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
