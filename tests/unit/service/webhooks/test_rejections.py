"""What makes a signed webhook event one that can never be applied."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.service.webhooks.rejections import (
    MAX_DEPTH,
    UNPARSED_PREFIX,
    TooDeep,
    check_depth,
    content_problem,
    storable_id,
    storable_type,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=20,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


@given(json_values)
def test_depth_is_measured_as_json_nests_whatever_the_strings_hold(value: Any) -> None:
    text = json.dumps({"s": '[[[{{{\\"]]]', "v": value})
    if depth(value) + 1 > MAX_DEPTH:
        with pytest.raises(TooDeep):
            check_depth(text)
    else:
        check_depth(text)


def test_nesting_past_the_limit_is_too_deep() -> None:
    check_depth("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    with pytest.raises(TooDeep):
        check_depth("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))


@pytest.mark.parametrize(
    ("event_id", "event_type", "data", "problem"),
    [
        ("evt_\x00", "payment_intent.succeeded", {}, "event id"),
        ("evt_é", "payment_intent.succeeded", {}, "event id"),
        ("evt_1", "payment_intent.succeeded\u202e", {}, "event type"),
        ("evt_1", "x", {"data": {"object": {"id": "pi_\x00"}}}, "NUL"),
        ("evt_1", "x", {"data": [{"k\x00": 1}]}, "NUL"),
    ],
)
def test_content_that_no_database_or_log_takes_is_named(
    event_id: str, event_type: str, data: dict[str, Any], problem: str
) -> None:
    found = content_problem(event_id, event_type, data)
    assert found is not None
    assert problem in found


def test_an_ordinary_event_has_no_problem() -> None:
    data = {"data": {"object": {"id": "pi_1", "metadata": {"name": "Zoë 日本"}}}}
    assert content_problem("evt_1", "payment_intent.succeeded", data) is None


def test_ids_that_cannot_be_stored_are_replaced_by_the_bodys_digest() -> None:
    assert storable_id("evt_1", "{}") == "evt_1"
    for bad in ("", "evt_\x00", "evt_é"):
        replaced = storable_id(bad, '{"a": 1}')
        assert replaced.startswith(UNPARSED_PREFIX)
        assert replaced == storable_id(bad, '{"a": 1}')
        assert replaced != storable_id(bad, '{"a": 2}')
    assert storable_type("invoice.paid") == "invoice.paid"
    assert storable_type("invoice\x00") == "invalid"


def _depth_char_by_char(text: str) -> int:
    """The deepest nesting of `text`'s brackets outside strings, one character at a time."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


@given(st.text(alphabet='[]{}"\\ a\n', max_size=200), st.integers(0, MAX_DEPTH + 2))
def test_depth_is_that_of_a_walk_char_by_char_whatever_the_text(tail: str, nesting: int) -> None:
    """Unbalanced brackets, unterminated strings, stray backslashes: the same verdict."""
    text = "[" * nesting + tail
    if _depth_char_by_char(text) > MAX_DEPTH:
        with pytest.raises(TooDeep):
            check_depth(text)
    else:
        check_depth(text)


@pytest.mark.parametrize(
    "data", [{"a": "x\x00"}, {"k\x00": 1}, [["\x00"]], {"a": ["b", {"c": "\x00d"}]}]
)
def test_a_nul_is_found_from_the_json_text_too(data: Any) -> None:
    text = json.dumps(data)
    assert "\\u0000" in text
    found = content_problem("evt_1", "x", {"data": data}, text)
    assert found is not None
    assert "NUL" in found
    assert content_problem("evt_1", "x", {"data": "clean"}, json.dumps("clean")) is None
