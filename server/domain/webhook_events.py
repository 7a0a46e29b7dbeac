"""Webhook events as we keep them: every verified delivery, and what became of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class WebhookEventStatus(StrEnum):
    # The event moved a payment, or found it already where the event says.
    APPLIED = "applied"
    # The move it asks for is behind the payment (a late failure after success): nothing changed.
    STALE = "stale"
    # Not about anything we keep: an unknown payment, or a type we do not handle (yet).
    IGNORED = "ignored"
    # Applying it raised; it is kept for `payments webhooks replay` (and Stripe's retry).
    FAILED = "failed"
    # Its content can never be applied (see service/webhook_rejections.py): kept for an
    # operator with its raw body and a reason, acknowledged so that Stripe stops retrying.
    REJECTED = "rejected"


@dataclass(slots=True)
class WebhookEvent:
    """One provider event, stored once per provider event id."""

    event_id: str
    type: str
    # The body exactly as it was signed and received.
    payload: str
    received_time: datetime
    status: WebhookEventStatus
    error: str = ""
    applied_time: datetime | None = None
    attempts: int = 1
    # The payment it was applied to, when we know it.
    payment_id: str = field(default="")
