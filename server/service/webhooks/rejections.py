"""Signed webhook events that can never be applied: kept for an operator, acknowledged.

Stripe retries every non-2xx answer for three days; an event whose content we cannot
take would fail each time. Such an event is stored with status REJECTED, its raw body
and a reason that names the problem, never the content (payloads carry names, emails
and addresses), and answered 200. Only our own outages answer 5xx.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from server.domain.text import is_safe_text

# Deeper than any Stripe object; Python's json would hit its recursion limit far below
# what a body of MAX_BODY_BYTES can nest.
MAX_DEPTH = 64
UNPARSED_PREFIX = "unparsed_"
INVALID_TYPE = "invalid"


class TooDeep(Exception):
    """A JSON body nested deeper than MAX_DEPTH."""


# A JSON string, or an unterminated one up to the end (where a lone backslash may be last).
_STRING = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


def check_depth(text: str) -> None:
    """TooDeep when `text`'s brackets nest deeper than MAX_DEPTH (strings skipped)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # not even every bracket, in strings or not, could nest that deep
    # Only the brackets outside strings are walked; the regular expressions drop the rest.
    brackets = _NOT_A_BRACKET.sub("", _STRING.sub("", text))
    depth = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise TooDeep
        else:
            depth -= 1


def storable_id(event_id: str, payload: str) -> str:
    """The id to store the event under: its own, unless a database or log cannot hold it."""
    if event_id and is_safe_text(event_id) and event_id.isascii():
        return event_id
    return UNPARSED_PREFIX + hashlib.sha256(payload.encode()).hexdigest()[:40]


def storable_type(event_type: str) -> str:
    return event_type if is_safe_text(event_type) and event_type.isascii() else INVALID_TYPE


def _strings(data: Any) -> Iterator[str]:
    """Every key and string value in `data`, without recursion."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, Mapping):
            for key, value in item.items():
                yield str(key)
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def content_problem(
    event_id: str, event_type: str, data: Mapping[str, Any], text: str | None = None
) -> str | None:
    """Why the event's content can never be applied, in words safe to store; None if it can.

    `text` is the JSON `data` was read from, if at hand: JSON can hold a NUL only as the
    escape \\u0000, so without one in `text` no string needs looking at.
    """
    if not is_safe_text(event_id) or not event_id.isascii():
        return "the event id holds characters that are not printable ASCII"
    if not is_safe_text(event_type) or not event_type.isascii():
        return "the event type holds characters that are not printable ASCII"
    if text is not None and "\\u0000" not in text:
        return None
    if any("\x00" in value for value in _strings(data)):
        return "a string in the event holds a NUL character"
    return None


def failure_reason(error: BaseException) -> str:
    """A stored reason for an event whose application raised: the class only, no message."""
    return f"applying it raised {type(error).__name__}"
