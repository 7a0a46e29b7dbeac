"""Tests for the AIP-160 filter subset parser."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from server.grpc.filter_syntax import (
    MAX_COMPARISONS,
    MAX_FILTER_LENGTH,
    Comparison,
    FilterSyntaxError,
    parse_filter,
)

ALLOWED: dict[str, frozenset[str]] = {
    "user_id": frozenset({"=", "!="}),
    "state": frozenset({"=", "!="}),
    "create_time": frozenset({"<", "<=", ">", ">="}),
    "amount": frozenset({"=", "!=", "<", "<=", ">", ">="}),
}

C = Comparison

VALID: list[tuple[str, list[Comparison]]] = [
    ("", []),
    ("   \t\n ", []),
    ('user_id = "u_1"', [C("user_id", "=", "u_1")]),
    (
        'user_id = "u_1" AND state = PAYMENT_STATE_SUCCEEDED'
        ' AND create_time >= "2026-01-01T00:00:00Z" AND create_time < "2026-02-01T00:00:00Z"',
        [
            C("user_id", "=", "u_1"),
            C("state", "=", "PAYMENT_STATE_SUCCEEDED"),
            C("create_time", ">=", "2026-01-01T00:00:00Z"),
            C("create_time", "<", "2026-02-01T00:00:00Z"),
        ],
    ),
    (r'user_id = "say \"hi\" \\ bye"', [C("user_id", "=", 'say "hi" \\ bye')]),
    ('user_id = "  two  spaces "', [C("user_id", "=", "  two  spaces ")]),
    ('user_id = ""', [C("user_id", "=", "")]),
    ('user_id = "AND OR NOT ( ) : -"', [C("user_id", "=", "AND OR NOT ( ) : -")]),
    ('user_id = "héllo\nwörld"', [C("user_id", "=", "héllo\nwörld")]),
    ("state != PAYMENT_STATE_FAILED", [C("state", "!=", "PAYMENT_STATE_FAILED")]),
    ("create_time >= 2026-01-01T00:00:00Z", [C("create_time", ">=", "2026-01-01T00:00:00Z")]),
    (
        "amount > 100 AND amount <= -5 AND amount >= 1.5",
        [C("amount", ">", "100"), C("amount", "<=", "-5"), C("amount", ">=", "1.5")],
    ),
    (
        '  user_id="u"AND\tstate  =\n X  ',
        [C("user_id", "=", "u"), C("state", "=", "X")],
    ),
    ("amount<=1 AND amount>2", [C("amount", "<=", "1"), C("amount", ">", "2")]),
    (
        " AND ".join(["amount = 1"] * MAX_COMPARISONS),
        [C("amount", "=", "1")] * MAX_COMPARISONS,
    ),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid(text: str, expected: list[Comparison]) -> None:
    assert parse_filter(text, ALLOWED) == expected


def test_max_length_is_accepted() -> None:
    prefix = 'user_id = "'
    text = prefix + "x" * (MAX_FILTER_LENGTH - len(prefix) - 1) + '"'
    assert len(text) == MAX_FILTER_LENGTH
    assert parse_filter(text, ALLOWED)[0].value == "x" * (MAX_FILTER_LENGTH - len(prefix) - 1)


INVALID: list[tuple[str, list[str]]] = [
    (
        'foo = "x"',
        [
            "unknown field 'foo'",
            "position 1",
            "allowed fields: amount, create_time, state, user_id",
        ],
    ),
    ('User_id = "x"', ["unknown field 'User_id'"]),
    ('user_id = "x" AND a.b = "y"', ["unknown field 'a.b'", "position 19"]),
    (
        'user_id < "x"',
        ["operator '<' is not allowed for field 'user_id'", "position 9", "operators: =, !="],
    ),
    (
        "create_time = 2026",
        ["operator '=' is not allowed", "allowed operators: <, <=, >, >="],
    ),
    ('user_id = "abc', ["unterminated string", "position 11"]),
    ('user_id = "abc\\"', ["unterminated string", "position 11"]),
    ('user_id = "a" AND state = "b', ["unterminated string", "position 27"]),
    ('user_id = "a\\n"', ["unsupported escape '\\\\n'", "position 12"]),
    ("user_id =", ["missing value after 'user_id ='", "position 10", "end of filter"]),
    ("user_id = AND state = X", ["missing value", "found 'AND'"]),
    ("user_id = = 1", ["missing value", "found '='"]),
    ("user_id", ["expected a comparison operator after 'user_id'", "end of filter"]),
    ('user_id "x"', ["expected a comparison operator", "position 9"]),
    ('user_id = "x" state = X', ["expected AND or end of filter", "position 15", "'state'"]),
    ('user_id = "x" "y"', ["expected AND or end of filter", "position 15"]),
    ('user_id = "x" and state = X', ["expected AND", "AND must be upper-case"]),
    ('user_id = "x" AND', ["expected a field name", "position 18", "end of filter"]),
    ('AND user_id = "x"', ["expected a field name", "position 1", "'AND'"]),
    ('= "x"', ["expected a field name", "'='"]),
    ('user_id = "x" OR user_id = "y"', ["OR is not supported", "position 15"]),
    ('OR user_id = "y"', ["OR is not supported", "position 1"]),
    ('NOT user_id = "x"', ["NOT is not supported", "position 1"]),
    ('user_id = "x" AND NOT state = X', ["NOT is not supported", "position 19"]),
    ('(user_id = "x")', ["parentheses are not supported", "position 1"]),
    ('user_id = ("x")', ["parentheses are not supported", "position 11"]),
    ('-user_id = "x"', ["negation with '-' is not supported", "position 1"]),
    ('user_id:"x"', ["has-operator ':' is not supported", "position 1"]),
    ('user_id : "x"', ["has-operator ':' is not supported", "position 9"]),
    ('user_id = "x" & state = X', ["unexpected character '&'", "position 15"]),
    ("user_id = 'x'", ['unexpected character "\'"', "position 11"]),
    ("user_id ! x", ["unexpected character '!'", "position 9"]),
    ("state = é", ["unexpected character 'é'", "position 9"]),
    (
        'user_id = "' + "x" * MAX_FILTER_LENGTH + '"',
        ["filter is too long", f"at most {MAX_FILTER_LENGTH}"],
    ),
    (
        " AND ".join(["amount = 1"] * (MAX_COMPARISONS + 1)),
        ["too many comparisons", f"at most {MAX_COMPARISONS}"],
    ),
]


@pytest.mark.parametrize(("text", "fragments"), INVALID)
def test_invalid(text: str, fragments: list[str]) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text, ALLOWED)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_no_filterable_fields() -> None:
    with pytest.raises(FilterSyntaxError, match=r"allowed fields: \(none\)"):
        parse_filter('user_id = "x"', {})


def test_field_without_operators() -> None:
    with pytest.raises(FilterSyntaxError, match=r"allowed operators: \(none\)"):
        parse_filter('user_id = "x"', {"user_id": frozenset()})


def test_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        parse_filter("OR", ALLOWED)


# Grammar fragments make random filters get past the tokenizer far more often than plain text.
_FRAGMENTS = st.sampled_from(
    [
        *ALLOWED,
        "foo",
        "AND",
        "and",
        "OR",
        "NOT",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        ":",
        "-",
        "(",
        ")",
        '"',
        '"x"',
        '"a\\"b"',
        '"\\\\"',
        '"\\n"',
        "X_1",
        "2026-01-01T00:00:00Z",
        "-5",
        "",
        " ",
    ]
)


@given(st.one_of(st.text(), st.lists(_FRAGMENTS, max_size=30).map(" ".join)))
@example("\\")
@example('"\\')
@example(" AND ".join(['user_id = "x"'] * 30))
def test_arbitrary_text_only_raises_filter_syntax_error(text: str) -> None:
    outcome = _parse_or_message(text)
    if isinstance(outcome, str):
        assert outcome
    else:
        assert all(c.field in ALLOWED and c.op in ALLOWED[c.field] for c in outcome)


def _parse_or_message(text: str) -> list[Comparison] | str:
    """Any exception other than FilterSyntaxError propagates and fails the test."""
    try:
        return parse_filter(text, ALLOWED)
    except FilterSyntaxError as error:
        return str(error)


_FIELD_OPS = [(field, op) for field, ops in ALLOWED.items() for op in sorted(ops)]


def _render(comparisons: list[Comparison]) -> str:
    def quote(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return " AND ".join(f"{c.field} {c.op} {quote(c.value)}" for c in comparisons)


@given(
    st.lists(
        st.builds(
            lambda field_op, value: Comparison(field_op[0], field_op[1], value),
            st.sampled_from(_FIELD_OPS),
            st.text(),
        ),
        max_size=MAX_COMPARISONS,
    )
)
@example([Comparison("user_id", "=", '\\"\\\\" AND OR ( ) :')])
def test_round_trip(comparisons: list[Comparison]) -> None:
    text = _render(comparisons)
    if len(text) > MAX_FILTER_LENGTH:
        with pytest.raises(FilterSyntaxError, match="too long"):
            parse_filter(text, ALLOWED)
    else:
        assert parse_filter(text, ALLOWED) == comparisons
