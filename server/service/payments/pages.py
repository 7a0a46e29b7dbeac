"""What ListPayments asks the repository for, and the page it gets back."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from server.domain.payment import Payment
from server.domain.payment_states import PaymentState
from server.service.paging import DEFAULT_PAGE_SIZE


class SortKey(StrEnum):
    CREATE_TIME = "create_time"
    AMOUNT = "amount"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the previous page ended: its last row's sort value and id."""

    value: str | int
    id: str


@dataclass(frozen=True, slots=True)
class TimeBound:
    op: str  # one of <, <=, >, >=
    moment: datetime


@dataclass(frozen=True, slots=True)
class PaymentQuery:
    user_id: str | None = None
    order_id: str | None = None
    states: frozenset[PaymentState] | None = None
    excluded_states: frozenset[PaymentState] = frozenset()
    create_time: tuple[TimeBound, ...] = ()
    sort: SortKey = SortKey.CREATE_TIME
    descending: bool = True
    page_size: int = DEFAULT_PAGE_SIZE
    after: Cursor | None = field(default=None, compare=False)

    def fingerprint(self) -> str:
        """Identifies the filter and order, so a token is only used with the query it came from."""
        return _fingerprint(
            (
                ("u", self.user_id),
                ("o", self.order_id),
                ("s", tuple(sorted(self.states)) if self.states is not None else None),
                ("x", tuple(sorted(self.excluded_states))),
                ("t", tuple((b.op, b.moment.isoformat()) for b in self.create_time)),
                ("k", self.sort.value),
                ("d", self.descending),
            )
        )


# Every page of a list asks for it again (twice from the second page on): the hash of
# each shape is made once.
@functools.lru_cache(maxsize=1024)
def _fingerprint(shape: tuple[tuple[str, object], ...]) -> str:
    return hashlib.sha256(json.dumps(dict(shape), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class PaymentPage:
    payments: list[Payment]
    next_cursor: Cursor | None


def page_of(found: list[Payment], query: PaymentQuery) -> PaymentPage:
    """The page in `found`, read with a limit one past the page size to tell if more follow."""
    shown = found[: query.page_size]
    more = len(found) > query.page_size
    cursor = Cursor(sort_value(shown[-1], query.sort), shown[-1].id) if more else None
    return PaymentPage(shown, cursor)


def is_users_newest_first(query: PaymentQuery) -> bool:
    """One user's payments, newest first, and no other filter: the customer's own list."""
    return (
        query.user_id is not None
        and query.order_id is None
        and query.states is None
        and not query.excluded_states
        and not query.create_time
        and query.sort is SortKey.CREATE_TIME
        and query.descending
    )


def sort_value(payment: Payment, sort: SortKey) -> str | int:
    if sort is SortKey.AMOUNT:
        return payment.amount.minor_units
    return payment.create_time.isoformat()
