"""The one page-token format every List RPC uses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.errors import InvalidArgument
from server.domain.ids import PAYMENT_ID, REFUND_ID
from server.service import page_tokens

ID = PAYMENT_ID.new()


@given(value=st.one_of(st.integers(), st.text()), scope=st.text())
def test_round_trip(value: int | str, scope: str) -> None:
    token = page_tokens.encode(scope, value, ID)
    assert page_tokens.decode(scope, token, PAYMENT_ID) == (value, ID)


def test_a_token_is_bound_to_its_query_and_id_kind() -> None:
    token = page_tokens.encode("query-a", 5, ID)
    for scope, kind in (("query-b", PAYMENT_ID), ("query-a", REFUND_ID)):
        with pytest.raises(InvalidArgument) as error:
            page_tokens.decode(scope, token, kind)
        assert error.value.reason == "INVALID_PAGE_TOKEN"
        assert error.value.violations[0].field == "page_token"


@given(token=st.text())
def test_arbitrary_text_is_invalid_argument_or_a_cursor(token: str) -> None:
    try:
        value, last_id = page_tokens.decode("scope", token, PAYMENT_ID)
    except InvalidArgument:
        return
    assert PAYMENT_ID.matches(last_id)
    assert isinstance(value, int | str)


def test_decode_time_wants_an_aware_time() -> None:
    moment = datetime(2026, 11, 1, tzinfo=UTC)
    assert page_tokens.decode_time(moment.isoformat()) == moment
    for bad in ("2026-11-01T00:00:00", "yesterday", 5):
        with pytest.raises(InvalidArgument):
            page_tokens.decode_time(bad)
