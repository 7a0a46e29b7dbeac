"""Fitting a W3C `tracestate` into what we store (outbox.tracestate) and pass on.

W3C trace-context, section 3.3.1.5: at most 32 list members; when the header must
be shortened, members over 128 characters go first, then members from the end
(the right-most are the oldest). Whole members only: a cut member would be garbage.
"""

from __future__ import annotations

MAX_MEMBERS = 32
# The column's size, and the length W3C asks every vendor to propagate at least.
MAX_LENGTH = 512
LONG_MEMBER = 128


def fitted_tracestate(header: str, limit: int = MAX_LENGTH) -> str:
    """`header` with members dropped by the W3C rules until it fits in `limit` characters."""
    members = [m.strip() for m in header.split(",") if m.strip()][:MAX_MEMBERS]

    def joined() -> str:
        return ",".join(members)

    if len(joined()) <= limit:
        return joined()
    members = [m for m in members if len(m) <= LONG_MEMBER]
    while members and len(joined()) > limit:
        members.pop()
    return joined()
