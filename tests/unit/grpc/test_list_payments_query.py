"""ListPaymentsRequest to PaymentQuery: each distinct request parsed once, a refusal every time."""

from __future__ import annotations

from typing import Any

import pytest
from payments.v1 import payments_pb2

from server.domain.errors import InvalidArgument
from server.domain.payment_states import PaymentState
from server.grpc.list_payments_query import query_from_request
from server.service.payments.pages import PaymentQuery, SortKey


def request(**fields: Any) -> payments_pb2.ListPaymentsRequest:
    return payments_pb2.ListPaymentsRequest(**fields)


def test_the_same_request_gives_the_same_query() -> None:
    asked = request(filter='user_id = "u-1" AND state = SUCCEEDED', page_size=20)
    first = query_from_request(asked)
    assert first == PaymentQuery(
        user_id="u-1", states=frozenset({PaymentState.SUCCEEDED}), page_size=20
    )
    assert query_from_request(asked) is first


def test_each_part_of_the_request_counts() -> None:
    base = query_from_request(request(filter='user_id = "u-1"', page_size=20))
    assert query_from_request(request(filter='user_id = "u-1"', page_size=21)).page_size == 21
    assert query_from_request(request(filter='user_id = "u-2"', page_size=20)).user_id == "u-2"
    by_amount = query_from_request(
        request(filter='user_id = "u-1"', page_size=20, order_by="amount desc")
    )
    assert (by_amount.sort, by_amount.descending) == (SortKey.AMOUNT, True)
    assert base.sort is SortKey.CREATE_TIME


@pytest.mark.parametrize(
    "fields",
    [
        {"filter": 'user_id = "u-1" OR state = FAILED'},
        {"page_size": -1},
        {"order_by": "user_id"},
    ],
)
def test_a_refused_request_is_refused_every_time(fields: dict[str, Any]) -> None:
    for _ in range(2):
        with pytest.raises(InvalidArgument):
            query_from_request(request(**fields))
