"""What text a client may send: one rule for every name, description and identifier.

Refused everywhere: control characters (NUL, which PostgreSQL cannot store, ESC of
ANSI escapes, line breaks that forge log lines), format characters (the bidi overrides
and isolates that make text read differently than it is stored, zero-width spaces and
joiners that make two names look the same), line and paragraph separators, and lone
surrogates. Refused, not removed: what we store is what the client sent.
"""

from __future__ import annotations

import unicodedata

# Cc control, Cf format (bidi, zero-width), Cs surrogate, Zl/Zp line/paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
UNSAFE_TEXT = "must not contain control, bidi-override or zero-width characters"


def unsafe_character(text: str) -> str | None:
    """The first character of `text` that no stored or logged text may hold, else None."""
    for char in text:
        if unicodedata.category(char) in _UNSAFE_CATEGORIES:
            return char
    return None


def is_safe_text(text: str) -> bool:
    return unsafe_character(text) is None
