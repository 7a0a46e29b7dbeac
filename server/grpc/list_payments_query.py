"""ListPaymentsRequest (filter, order_by, page_size) to a PaymentQuery."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from payments.v1 import payments_pb2

from server.domain.errors import FieldViolation, InvalidArgument
from server.domain.payment_states import PaymentState
from server.domain.text import UNSAFE_TEXT, is_safe_text
from server.grpc.filter_syntax import FilterSyntaxError, parse_filter
from server.service.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from server.service.payments.pages import PaymentQuery, SortKey, TimeBound

FILTERABLE = {
    "user_id": frozenset({"="}),
    "order_id": frozenset({"="}),
    "state": frozenset({"=", "!="}),
    "create_time": frozenset({"<", "<=", ">", ">="}),
}
ORDERINGS = {
    "": (SortKey.CREATE_TIME, True),
    "create_time desc": (SortKey.CREATE_TIME, True),
    "create_time": (SortKey.CREATE_TIME, False),
    "create_time asc": (SortKey.CREATE_TIME, False),
    "amount": (SortKey.AMOUNT, False),
    "amount asc": (SortKey.AMOUNT, False),
    "amount desc": (SortKey.AMOUNT, True),
}


def _invalid(field: str, description: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation(field, description)])


def _state(value: str) -> PaymentState:
    name = value.removeprefix("PAYMENT_STATE_")
    try:
        return PaymentState(name)
    except ValueError:
        raise _invalid("filter", f"unknown state {value!r}") from None


def _moment(value: str) -> datetime:
    """An aware time, in UTC: one an offset would push past year 1 or 9999 is refused."""
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    raise _invalid(
        "filter",
        f"create_time needs an RFC 3339 time with offset between years 1 and 9999, not {value!r}",
    )


def query_from_request(request: payments_pb2.ListPaymentsRequest) -> PaymentQuery:
    return _query(request.filter, request.order_by, request.page_size)


# Callers send the same request page after page: each distinct one is parsed once. Only
# queries are kept (a refused request raises, and is parsed again); 1024 of at most
# MAX_FILTER_LENGTH characters each.
@functools.lru_cache(maxsize=1024)
def _query(filter_text: str, order_by: str, page_size: int) -> PaymentQuery:
    if page_size < 0:
        raise _invalid("page_size", "must not be negative")
    ordering = ORDERINGS.get(" ".join(order_by.split()))
    if ordering is None:
        raise _invalid(
            "order_by", f"must be one of: {', '.join(sorted(o for o in ORDERINGS if o))}"
        )
    try:
        comparisons = parse_filter(filter_text, FILTERABLE)
    except FilterSyntaxError as error:
        raise _invalid("filter", str(error)) from None
    equal: dict[str, str] = {}
    states: frozenset[PaymentState] | None = None
    excluded: set[PaymentState] = set()
    bounds: list[TimeBound] = []
    for comparison in comparisons:
        if not is_safe_text(comparison.value):
            raise _invalid("filter", f"{comparison.field}: values {UNSAFE_TEXT}")
        if comparison.field == "state":
            state = _state(comparison.value)
            if comparison.op == "!=":
                excluded.add(state)
            else:
                states = frozenset({state}) if states is None else states & {state}
        elif comparison.field == "create_time":
            bounds.append(TimeBound(comparison.op, _moment(comparison.value)))
        elif equal.setdefault(comparison.field, comparison.value) != comparison.value:
            raise _invalid("filter", f"{comparison.field} may be compared only once")
    sort, descending = ordering
    return PaymentQuery(
        user_id=equal.get("user_id"),
        order_id=equal.get("order_id"),
        states=states,
        excluded_states=frozenset(excluded),
        create_time=tuple(bounds),
        sort=sort,
        descending=descending,
        page_size=min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
    )
