"""The one paging helper: the page size rule, user pages, and tokens that round-trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.errors import InvalidArgument, Validator
from server.domain.ids import SUBSCRIPTION_ID
from server.service import paging


@given(st.integers(min_value=0, max_value=10**9))
def test_a_page_size_is_the_default_or_at_most_the_maximum(requested: int) -> None:
    validator = Validator()
    size = paging.page_size(validator, requested)
    assert not validator.violations
    assert 1 <= size <= paging.MAX_PAGE_SIZE
    if requested == 0:
        assert size == paging.DEFAULT_PAGE_SIZE
    elif requested <= paging.MAX_PAGE_SIZE:
        assert size == requested


@given(st.integers(max_value=-1))
def test_a_negative_page_size_is_a_violation(requested: int) -> None:
    validator = Validator()
    paging.page_size(validator, requested)
    assert [v.field for v in validator.violations] == ["page_size"]


def test_a_user_page_names_every_bad_field_at_once() -> None:
    with pytest.raises(InvalidArgument) as raised:
        paging.user_page("", -1, "", SUBSCRIPTION_ID)
    assert {v.field for v in raised.value.violations} == {"user_id", "page_size"}


def test_a_token_continues_only_its_own_user() -> None:
    cursor = paging.TimeCursor(datetime(2026, 12, 1, tzinfo=UTC), SUBSCRIPTION_ID.new())
    mine = paging.user_page("user-1", 0, "", SUBSCRIPTION_ID)
    token = paging.time_token(mine.scope, cursor)
    assert paging.user_page("user-1", 0, token, SUBSCRIPTION_ID).after == cursor
    with pytest.raises(InvalidArgument):
        paging.user_page("user-2", 0, token, SUBSCRIPTION_ID)


def test_the_last_page_has_no_token() -> None:
    assert paging.time_token("scope", None) == ""
