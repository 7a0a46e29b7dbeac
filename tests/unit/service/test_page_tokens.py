"""The one page-token format every List RPC uses."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.errors import InvalidArgument
from server.domain.ids import PAYMENT_ID, REFUND_ID
from server.service import page_tokens

ID = PAYMENT_ID.new()


@given(
    value=st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=100)),
    scope=st.text(max_size=100),
)
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


def _body_and_tag(token: str) -> tuple[dict[str, object], str]:
    body, _, tag = token.partition(".")
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))), tag


def _rewritten(token: str, **changes: object) -> str:
    """What a client could make of an unsigned token: its JSON rewritten, its tag kept."""
    data, tag = _body_and_tag(token)
    raw = json.dumps({**data, **changes}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + tag


@pytest.mark.parametrize(
    "changes",
    [
        {"v": 2**64},
        {"v": -(2**70)},
        {"v": "0001-01-01T00:00:00+14:00"},
        {"v": "9999-12-31T23:59:59-14:00"},
        {"v": 0},
        {"i": PAYMENT_ID.new()},
        {"v": [[[[[[[[[[[]]]]]]]]]]]},
    ],
)
def test_a_rewritten_token_is_invalid_argument(changes: dict[str, object]) -> None:
    token = page_tokens.encode("scope", "2026-11-01T00:00:00+00:00", ID)
    with pytest.raises(InvalidArgument) as error:
        page_tokens.decode("scope", _rewritten(token, **changes), PAYMENT_ID)
    assert error.value.violations[0].field == "page_token"


def test_deeply_nested_json_is_refused_before_it_is_parsed() -> None:
    raw = b'{"v": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    forged = base64.urlsafe_b64encode(raw).decode()
    with pytest.raises(InvalidArgument):
        page_tokens.decode("scope", forged, PAYMENT_ID)


def test_a_token_signed_with_another_key_is_refused_and_keys_roll() -> None:
    old, new = "old-page-token-key-0123456789abcdef", "new-page-token-key-0123456789abcdef"
    try:
        page_tokens.use_keys([old])
        by_old = page_tokens.encode("scope", 5, ID)
        page_tokens.use_keys([new])
        with pytest.raises(InvalidArgument):
            page_tokens.decode("scope", by_old, PAYMENT_ID)
        # While rolling: sign with the new key, still accept the old one.
        page_tokens.use_keys([new, old])
        assert page_tokens.decode("scope", by_old, PAYMENT_ID) == (5, ID)
        by_new = page_tokens.encode("scope", 6, ID)
        page_tokens.use_keys([new])
        assert page_tokens.decode("scope", by_new, PAYMENT_ID) == (6, ID)
    finally:
        page_tokens.use_keys([])


@given(flip=st.integers(min_value=0))
def test_any_altered_character_makes_a_token_invalid(flip: int) -> None:
    genuine = page_tokens.encode("scope", 12, ID)
    position = flip % len(genuine)
    replacement = "A" if genuine[position] != "A" else "B"
    altered = genuine[:position] + replacement + genuine[position + 1 :]
    with pytest.raises(InvalidArgument):
        page_tokens.decode("scope", altered, PAYMENT_ID)
