"""`payments webhook send`: a realistic, signed Stripe event about one of our payments.

Like `stripe trigger`, but for an existing payment: the event carries the payment's
PaymentIntent id, amount, currency and our ids in metadata, exactly where Stripe puts
them, so the sidecar handles it as it would Stripe's own delivery.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.signature import sign
from server.config import ConfigError
from server.domain.payment import Payment

# Event type -> the PaymentIntent's status in it, as Stripe sends them.
INTENT_STATUS = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "requires_payment_method",
    "payment_intent.canceled": "canceled",
    "payment_intent.requires_action": "requires_action",
    "payment_intent.processing": "processing",
    "payment_intent.amount_capturable_updated": "requires_capture",
}
_DECLINE = {
    "code": "card_declined",
    "decline_code": "generic_decline",
    "message": "Your card was declined.",
    "type": "card_error",
}
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def ignored(self) -> bool:
        """The sidecar stored the event without applying it."""
        try:
            outcome = json.loads(self.body).get("outcome") if self.ok else None
        except (ValueError, AttributeError):
            return False
        return bool(outcome == "ignored")


def intent_of(payment: Payment, status: str) -> dict[str, Any]:
    """The PaymentIntent object of an event about `payment`."""
    if not payment.provider_payment_id:
        raise ConfigError(
            f"payment {payment.id} has no PaymentIntent yet (it was never sent to the provider)"
        )
    amount = payment.amount.minor_units
    captured = status == "succeeded"
    return {
        "id": payment.provider_payment_id,
        "object": "payment_intent",
        "status": status,
        "amount": amount,
        "amount_capturable": amount if status == "requires_capture" else 0,
        "amount_received": amount if captured else 0,
        "currency": payment.amount.currency_code.lower(),
        "capture_method": payment.capture_method.value.lower(),
        "livemode": False,
        "metadata": {"payment_id": payment.id, "order_id": payment.order_id},
        "last_payment_error": _DECLINE if status == "requires_payment_method" else None,
        "cancellation_reason": "requested_by_customer" if status == "canceled" else None,
    }


def event_for(event_type: str, payment: Payment, now: int) -> bytes:
    if event_type not in INTENT_STATUS:
        raise ConfigError(
            f"cannot make a {event_type!r} event; one of: {', '.join(sorted(INTENT_STATUS))}"
        )
    event = {
        "id": f"evt_cli_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": now,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": intent_of(payment, INTENT_STATUS[event_type])},
    }
    return json.dumps(event, indent=2).encode()


async def post_event(url: str, body: bytes, secret: str) -> Answer:
    """POST `body` signed with `secret`, as Stripe does; the sidecar's answer."""
    headers = {
        "Content-Type": "application/json",
        "Stripe-Signature": sign(body, secret, int(time.time())),
    }
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
            response = await client.post(url, content=body, headers=headers)
    except httpx.TransportError as error:
        raise ConfigError(f"cannot reach the webhook sidecar at {url}: {error}") from None
    return Answer(response.status_code, response.text)


def sidecar_url(gateway_address: str) -> str:
    """The sidecar's webhook URL on this machine, from PAYMENTS_GATEWAY_ADDRESS."""
    host, _, port = gateway_address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - a wildcard: call it locally
        host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/webhooks/stripe"
