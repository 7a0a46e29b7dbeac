"""Stripe-Signature verification on the raw body.

The header is `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">[,v1=...]`
(other schemes, such as v0, are ignored). Any `v1` that matches any of the
endpoint secrets passes, so a secret can be rolled without dropping events.
The timestamp must be within the tolerance either way: older means a replay,
newer means a clock that cannot be trusted.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

TOLERANCE_SECONDS = 300
# Far more than Stripe ever sends; bounds the work a forged header can cause.
MAX_SIGNATURES = 16
_MAX_TIMESTAMP_DIGITS = 12


class SignatureError(Exception):
    """The signature is missing, malformed, expired or wrong; the message is safe to log."""


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """A Stripe-Signature header for `payload`: what Stripe (and the tests) send."""
    return f"t={timestamp},v1={_digest(secret, str(timestamp).encode(), payload)}"


def verify_signature(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> int:
    """The signed timestamp if `header` signs `payload` with one of `secrets`, or SignatureError."""
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    timestamp_text: str | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, separator, value = item.strip().partition("=")
        if not separator:
            continue
        if key == "t":
            if timestamp_text is not None:
                raise SignatureError("malformed Stripe-Signature header")
            timestamp_text = value
        elif key == "v1" and value.isascii() and len(signatures) < MAX_SIGNATURES:
            signatures.append(value)
    if (
        timestamp_text is None
        or not timestamp_text.isascii()
        or not timestamp_text.isdigit()
        or len(timestamp_text) > _MAX_TIMESTAMP_DIGITS
    ):
        raise SignatureError("malformed Stripe-Signature header")
    if not signatures:
        raise SignatureError("no v1 signature in Stripe-Signature header")
    timestamp = int(timestamp_text)
    if abs(now - timestamp) > tolerance:
        raise SignatureError("Stripe-Signature timestamp outside the tolerance")
    prefix = timestamp_text.encode("ascii")
    for secret in secrets:
        expected = _digest(secret, prefix, payload).encode("ascii")
        # Every candidate is compared, in constant time each.
        if any([hmac.compare_digest(expected, given.encode("ascii")) for given in signatures]):
            return timestamp
    raise SignatureError("no matching signature")


def _digest(secret: str, timestamp: bytes, payload: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), timestamp + b"." + payload, hashlib.sha256).hexdigest()
