"""Opaque keyset page tokens: where the last page ended, bound to the query that made it."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime

from server.domain.errors import FieldViolation, InvalidArgument
from server.domain.ids import IdKind


def invalid_page_token() -> InvalidArgument:
    return InvalidArgument(
        [FieldViolation("page_token", "is not a page token from this query; start without one")],
        reason="INVALID_PAGE_TOKEN",
    )


def encode(scope: str, value: str | int, last_id: str) -> str:
    """A token for the page after the row (`value`, `last_id`) of the query named by `scope`."""
    raw = json.dumps({"v": value, "i": last_id, "q": scope})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(scope: str, token: str, kind: IdKind) -> tuple[str | int, str]:
    """The (value, last id) in `token`; INVALID_ARGUMENT unless ours, for `scope` and `kind`."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        value, last_id, token_scope = raw["v"], raw["i"], raw["q"]
    except (ValueError, TypeError, KeyError):
        raise invalid_page_token() from None
    if (
        token_scope != scope
        or not isinstance(value, str | int)
        or isinstance(value, bool)
        or not isinstance(last_id, str)
        or not kind.matches(last_id)
    ):
        raise invalid_page_token()
    return value, last_id


def decode_time(value: str | int) -> datetime:
    """A create_time sort value back from a token; INVALID_ARGUMENT if it is not an aware time."""
    try:
        moment = datetime.fromisoformat(str(value)) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise invalid_page_token()
    return moment


def user_tag(user_id: str) -> str:
    """Binds a token to its user, without putting the user id itself in the token."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]
