"""Resource ids: a prefix and a ULID, so ids sort by creation time and index well."""

from __future__ import annotations

import os
import re
import time

from server.domain.errors import Validator

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID = r"[0-9A-HJKMNP-TV-Z]{26}"


def new_ulid(now_ms: int | None = None) -> str:
    """48 bits of milliseconds then 80 random bits, in Crockford base32."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


class IdKind:
    """One kind of id: its prefix, a generator and a strict format check."""

    def __init__(self, prefix: str, noun: str = "") -> None:
        self.prefix = prefix
        # What the kind is called in messages: "must be a payment id like ...".
        self.noun = noun or prefix
        self._pattern = re.compile(rf"{re.escape(prefix)}_{_ULID}")

    def new(self) -> str:
        return f"{self.prefix}_{new_ulid()}"

    def matches(self, text: str) -> bool:
        return self._pattern.fullmatch(text) is not None

    @property
    def example(self) -> str:
        return f"{self.prefix}_01JD0000000000000000000000"


PAYMENT_ID = IdKind("pay", "payment")
# "pm_" is Stripe's prefix for its payment methods; ours must never be mistaken for one.
PAYMENT_METHOD_ID = IdKind("pmt", "payment method")
REFUND_ID = IdKind("ref", "refund")
# Three letters like the others, so every id fits the 30-character id columns.
PLAN_ID = IdKind("pln", "plan")
SUBSCRIPTION_ID = IdKind("sub", "subscription")


def check_id(
    validator: Validator, kind: IdKind, value: str, name: str = "id", noun: str = ""
) -> None:
    """Every id a request names is checked alike: present, and of `kind`."""
    if validator.check(bool(value), name, "is required"):
        validator.check(
            kind.matches(value), name, f"must be a {noun or kind.noun} id like {kind.example}"
        )


def require_id(kind: IdKind, value: str) -> None:
    """INVALID_ARGUMENT unless `value` (the request's `id`) is an id of `kind`."""
    validator = Validator()
    check_id(validator, kind, value)
    validator.raise_if_any()
