"""Keyset paging shared by every List RPC: the page size, the cursor after a row, its token.

The tokens themselves are made and checked by page_tokens.py; a query names
its `scope` so that a token only ever continues the query that made it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from server.domain.errors import Validator
from server.domain.ids import IdKind
from server.service import page_tokens
from server.service.payments.requests import check_reference

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class TimeCursor:
    """Where the previous page ended: its last row's create_time and id."""

    create_time: datetime
    id: str


class Row(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def create_time(self) -> datetime: ...


R = TypeVar("R", bound=Row)


def page_size(validator: Validator, requested: int) -> int:
    """The requested size, 0 meaning the default, at most MAX_PAGE_SIZE."""
    validator.check(requested >= 0, "page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


@dataclass(frozen=True, slots=True)
class UserPage:
    """A checked request for one page of one user's rows: what the repository is asked."""

    user_id: str
    page_size: int
    # Tokens are bound to the user, without carrying the user id.
    scope: str
    after: TimeCursor | None


def user_page(user_id: str, requested_size: int, token: str, kind: IdKind) -> UserPage:
    """user_id and page_size checked together (every violation at once), then the token."""
    validator = Validator()
    check_reference(validator, "user_id", user_id)
    size = page_size(validator, requested_size)
    validator.raise_if_any()
    scope = page_tokens.user_tag(user_id)
    return UserPage(user_id, size, scope, time_cursor(scope, token, kind))


@dataclass(frozen=True, slots=True)
class TimePage(Generic[R]):
    """One page of rows in (create_time, id) order, and whether more follow it."""

    rows: list[R]
    more: bool


def rows_and_token(scope: str, page: TimePage[R]) -> tuple[list[R], str]:
    """What a List answers: the page's rows and the next page's token ("" on the last)."""
    last = after(page.rows[-1]) if page.more and page.rows else None
    return page.rows, time_token(scope, last)


def after(row: Row) -> TimeCursor:
    return TimeCursor(row.create_time, row.id)


def time_token(scope: str, cursor: TimeCursor | None) -> str:
    """The token of the page after `cursor` ("" when there is none: the last page)."""
    if cursor is None:
        return ""
    return page_tokens.encode(scope, cursor.create_time.isoformat(), cursor.id)


def time_cursor(scope: str, token: str, kind: IdKind) -> TimeCursor | None:
    """The cursor in `token` (None without one); INVALID_ARGUMENT if not for `scope`."""
    if not token:
        return None
    value, last_id = page_tokens.decode(scope, token, kind)
    return TimeCursor(page_tokens.decode_time(value), last_id)
