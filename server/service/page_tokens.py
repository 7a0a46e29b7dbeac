"""Opaque keyset page tokens: where the last page ended, bound to the query that made it.

A token is base64url JSON followed by an HMAC-SHA256 tag over it, made with the
server's page-token key (PAYMENTS_PAGE_TOKEN_KEY; several while one is rolled, the
current one first). A token whose tag does not verify was altered or comes from
elsewhere: INVALID_ARGUMENT, and its content is never parsed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from server.domain.errors import FieldViolation, InvalidArgument
from server.domain.ids import IdKind

# Only for development and test; staging and production refuse to start without a key.
DEVELOPMENT_KEY = "payments-development-page-token-key"
# Far more than any token we make (a scope, an id and an ISO time); checked before any work.
MAX_TOKEN_LENGTH = 4096
_TAG_BYTES = 16
_INT64 = 2**63
_keys: tuple[bytes, ...] = (DEVELOPMENT_KEY.encode(),)


def use_keys(keys: Sequence[str]) -> None:
    """Sign with the first of `keys`, accept a token signed with any; none: the development key."""
    global _keys
    _keys = tuple(key.encode() for key in keys) or (DEVELOPMENT_KEY.encode(),)


def invalid_page_token() -> InvalidArgument:
    return InvalidArgument(
        [FieldViolation("page_token", "is not a page token from this query; start without one")],
        reason="INVALID_PAGE_TOKEN",
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(key: bytes, body: str) -> bytes:
    return hmac.new(key, body.encode(), hashlib.sha256).digest()[:_TAG_BYTES]


def encode(scope: str, value: str | int, last_id: str) -> str:
    """A token for the page after the row (`value`, `last_id`) of the query named by `scope`."""
    body = _b64(json.dumps({"v": value, "i": last_id, "q": scope}).encode())
    return f"{body}.{_b64(_tag(_keys[0], body))}"


def _verified_body(token: str) -> bytes:
    """The JSON in `token` once its tag verifies with one of our keys."""
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise invalid_page_token()
    body, _, tag = token.partition(".")
    # The tag's text, not its bytes: base64 has spare bits, so no character may change.
    if not any(hmac.compare_digest(tag, _b64(_tag(key, body))) for key in _keys):
        raise invalid_page_token()
    try:
        return _unb64(body)
    except (ValueError, binascii.Error):
        raise invalid_page_token() from None


def decode(scope: str, token: str, kind: IdKind) -> tuple[str | int, str]:
    """The (value, last id) in `token`; INVALID_ARGUMENT unless ours, for `scope` and `kind`."""
    raw = _verified_body(token)
    try:
        data = json.loads(raw)
        value, last_id, token_scope = data["v"], data["i"], data["q"]
    except (ValueError, TypeError, KeyError):
        raise invalid_page_token() from None
    if (
        token_scope != scope
        or not isinstance(value, str | int)
        or isinstance(value, bool)
        or (isinstance(value, int) and not -_INT64 <= value < _INT64)
        or not isinstance(last_id, str)
        or not kind.matches(last_id)
    ):
        raise invalid_page_token()
    return value, last_id


def decode_time(value: str | int) -> datetime:
    """A create_time sort value back from a token; INVALID_ARGUMENT unless an aware UTC time."""
    try:
        moment = datetime.fromisoformat(str(value)) if isinstance(value, str) else None
        if moment is not None and moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        moment = None
    if moment is None or moment.tzinfo is None:
        raise invalid_page_token()
    return moment


def user_tag(user_id: str) -> str:
    """Binds a token to its user, without putting the user id itself in the token."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]
