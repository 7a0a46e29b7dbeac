"""Stripe events as Stripe (and localstripe) send them: JSON bodies, signed."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from gateway.signature import sign

_ids = itertools.count(1)


def intent_object(
    intent_id: str,
    status: str,
    *,
    payment_id: str = "",
    amount: int = 1000,
    decline_code: str = "",
) -> dict[str, Any]:
    intent: dict[str, Any] = {
        "id": intent_id,
        "object": "payment_intent",
        "status": status,
        "amount": amount,
        "amount_received": amount if status == "succeeded" else 0,
        "currency": "usd",
        "client_secret": f"{intent_id}_secret_abcdef",
        "metadata": {"payment_id": payment_id} if payment_id else {},
        "last_payment_error": None,
    }
    if decline_code:
        intent["last_payment_error"] = {"code": "card_declined", "decline_code": decline_code}
    return intent


def event_body(
    event_type: str, obj: dict[str, Any], *, event_id: str = "", created: int | None = None
) -> bytes:
    event = {
        "id": event_id or f"evt_test_{next(_ids):06d}_{time.monotonic_ns()}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()) if created is None else created,
        "data": {"object": obj},
    }
    return json.dumps(event, indent=2).encode()


def signed_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    when = int(time.time()) if timestamp is None else timestamp
    return {"Content-Type": "application/json", "Stripe-Signature": sign(body, secret, when)}
