"""Strict parser for the subset of AIP-160 filter syntax accepted by our List RPCs.

Only ``FIELD OP VALUE`` comparisons joined by upper-case ``AND`` are accepted. OR, NOT,
parentheses, ``-`` negation and the ``:`` has-operator are rejected rather than ignored, so a
client never gets results for a filter other than the one it meant. Error positions are 1-based
character offsets into the filter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MAX_COMPARISONS",
    "MAX_FILTER_LENGTH",
    "OPERATORS",
    "Comparison",
    "FilterSyntaxError",
    "parse_filter",
]

MAX_FILTER_LENGTH: Final = 1000
MAX_COMPARISONS: Final = 20
OPERATORS: Final = ("=", "!=", "<", "<=", ">", ">=")

_FIELD_RE: Final = re.compile(r"[a-z][a-z0-9_]*")
# Two-character operators come first so "<=" is not read as "<" followed by "=".
_TOKEN_RE: Final = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<string>"(?:[^"\\]|\\[\s\S])*")
    | (?P<quote>")
    | (?P<op>!=|<=|>=|=|<|>)
    | (?P<word>[A-Za-z0-9_.:-]+)
    | (?P<paren>[()])
    """,
    re.VERBOSE,
)
_ESCAPE_RE: Final = re.compile(r"\\([\s\S])")
_KEYWORDS: Final = frozenset({"AND", "OR", "NOT"})


@dataclass(frozen=True, slots=True)
class Comparison:
    """One ``field op value`` term of a filter."""

    field: str
    op: str  # one of OPERATORS
    value: str  # unquoted, unescaped text


class FilterSyntaxError(ValueError):
    """The filter is not in the accepted syntax; str(error) is a message fit for a client."""


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "string", "op", "word" or "end"
    raw: str  # source text, for error messages
    value: str  # unescaped content for strings, else the same as raw
    pos: int  # 0-based offset into the filter


def parse_filter(text: str, allowed: Mapping[str, frozenset[str]]) -> list[Comparison]:
    """Parse `text`; `allowed` maps each filterable field to the operators it accepts."""
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterSyntaxError(
            f"filter is too long: {len(text)} characters, at most {MAX_FILTER_LENGTH} allowed"
        )
    tokens = _tokenize(text)
    if tokens[0].kind == "end":
        return []
    result: list[Comparison] = []
    i = 0
    while True:
        if len(result) == MAX_COMPARISONS:
            raise FilterSyntaxError(
                f"too many comparisons: at most {MAX_COMPARISONS} allowed"
                f" (the next one starts at position {tokens[i].pos + 1})"
            )
        comparison, i = _parse_comparison(tokens, i, allowed)
        result.append(comparison)
        tok = tokens[i]
        if tok.kind == "end":
            return result
        if tok.kind == "word" and tok.raw == "AND":
            i += 1
            continue
        _reject_unsupported(tok)
        lower_and = tok.kind == "word" and tok.raw.upper() == "AND"
        hint = " (AND must be upper-case)" if lower_and else ""
        raise FilterSyntaxError(
            f"expected AND or end of filter at position {tok.pos + 1}, found {_describe(tok)}{hint}"
        )


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise FilterSyntaxError(f"unexpected character {text[pos]!r} at position {pos + 1}")
        kind, raw = match.lastgroup, match.group()
        if kind == "quote":
            raise FilterSyntaxError(f"unterminated string starting at position {pos + 1}")
        if kind == "paren":
            raise FilterSyntaxError(f"parentheses are not supported (position {pos + 1})")
        if kind == "string":
            tokens.append(_Token("string", raw, _unescape(raw, pos), pos))
        elif kind in ("op", "word"):
            tokens.append(_Token(kind, raw, raw, pos))
        pos = match.end()
    tokens.append(_Token("end", "", "", len(text)))
    return tokens


def _unescape(raw: str, pos: int) -> str:
    def replace(match: re.Match[str]) -> str:
        char = match.group(1)
        if char not in ('"', "\\"):
            raise FilterSyntaxError(
                f"unsupported escape {match.group()!r} at position {pos + match.start() + 1};"
                ' only \\" and \\\\ are allowed in strings'
            )
        return char

    return _ESCAPE_RE.sub(replace, raw[1:-1])


def _parse_comparison(
    tokens: list[_Token], i: int, allowed: Mapping[str, frozenset[str]]
) -> tuple[Comparison, int]:
    field_tok = tokens[i]
    _reject_unsupported(field_tok)
    if field_tok.kind != "word" or field_tok.raw in _KEYWORDS:
        raise FilterSyntaxError(
            f"expected a field name at position {field_tok.pos + 1}, found {_describe(field_tok)}"
        )
    field = field_tok.raw
    if not _FIELD_RE.fullmatch(field) or field not in allowed:
        raise FilterSyntaxError(
            f"unknown field {field!r} at position {field_tok.pos + 1};"
            f" allowed fields: {_join(sorted(allowed))}"
        )

    op_tok = tokens[i + 1]
    if op_tok.kind == "word" and op_tok.raw.startswith(":"):
        raise FilterSyntaxError(
            f"the has-operator ':' is not supported (position {op_tok.pos + 1})"
        )
    if op_tok.kind != "op":
        raise FilterSyntaxError(
            f"expected a comparison operator after {field!r} at position {op_tok.pos + 1},"
            f" found {_describe(op_tok)}"
        )
    field_ops = allowed[field]
    if op_tok.raw not in field_ops:
        raise FilterSyntaxError(
            f"operator {op_tok.raw!r} is not allowed for field {field!r}"
            f" (position {op_tok.pos + 1}); allowed operators: {_join(_ordered_ops(field_ops))}"
        )

    value_tok = tokens[i + 2]
    if value_tok.kind != "string" and (value_tok.kind != "word" or value_tok.raw in _KEYWORDS):
        raise FilterSyntaxError(
            f"missing value after '{field} {op_tok.raw}' at position {value_tok.pos + 1},"
            f" found {_describe(value_tok)}"
        )
    return Comparison(field, op_tok.raw, value_tok.value), i + 3


def _reject_unsupported(tok: _Token) -> None:
    """Name the unsupported AIP-160 feature instead of a generic "unexpected token"."""
    if tok.kind != "word":
        return
    where = f"(position {tok.pos + 1})"
    if tok.raw in ("OR", "NOT"):
        raise FilterSyntaxError(f"{tok.raw} is not supported {where}; combine comparisons with AND")
    if tok.raw.startswith("-"):
        raise FilterSyntaxError(f"negation with '-' is not supported {where}")
    if ":" in tok.raw:
        raise FilterSyntaxError(f"the has-operator ':' is not supported {where}")


def _describe(tok: _Token) -> str:
    if tok.kind == "end":
        return "end of filter"
    raw = tok.raw if len(tok.raw) <= 20 else tok.raw[:20] + "..."
    return repr(raw)


def _ordered_ops(ops: Iterable[str]) -> list[str]:
    known = [op for op in OPERATORS if op in ops]
    return known + sorted(op for op in ops if op not in OPERATORS)


def _join(items: list[str]) -> str:
    return ", ".join(items) if items else "(none)"
