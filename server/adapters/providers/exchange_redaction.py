"""What of a provider request or response may be kept: no secret, client secret or card data."""

from __future__ import annotations

from typing import Any

REMOVED = "[removed]"
# A key naming any of these is dropped wherever it appears, nested or not.
_SECRET_PARTS = ("secret", "password", "token", "cvc", "api_key", "authorization")
# Card data a request could carry (we never send it, the provider never returns it whole).
_CARD_KEYS = frozenset({"number", "card[number]", "exp_month", "exp_year"})


def _secret(key: str) -> bool:
    lowered = key.lower()
    return (
        lowered in _CARD_KEYS
        or any(part in lowered for part in _SECRET_PARTS)
        or ("[number]" in lowered)
    )


def scrub(value: Any) -> Any:
    """A copy of decoded JSON or form data with every secret value replaced."""
    if isinstance(value, dict):
        return {key: REMOVED if _secret(str(key)) else scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value
