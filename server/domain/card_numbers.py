"""Finding card numbers (PANs) in free text, so that none is stored or logged.

A card number is 13 to 19 digits that pass the Luhn check, written plain or in
groups split by single spaces or dashes ("4242 4242 4242 4242"). Groups are
tried in every contiguous combination, so a PAN next to other digits
("order 1234 4242424242424242") is still found; a longer unbroken run of
digits is not a card number.
"""

from __future__ import annotations

import re

MIN_DIGITS = 13
MAX_DIGITS = 19
# Digit groups joined by single separators; a run is split into its groups below.
_RUN = re.compile(r"\d+(?:[ -]\d+)*")
_SEPARATOR = re.compile(r"[ -]")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _candidates(run: str) -> list[str]:
    groups = _SEPARATOR.split(run)
    found = []
    for start in range(len(groups)):
        digits = ""
        for group in groups[start:]:
            digits += group
            if len(digits) > MAX_DIGITS:
                break
            if len(digits) >= MIN_DIGITS:
                found.append(digits)
    return found


def contains_card_number(text: str) -> bool:
    return any(any(map(luhn_valid, _candidates(match.group()))) for match in _RUN.finditer(text))


MASK = "[card number]"


def mask_card_numbers(text: str) -> str:
    """`text` with every digit run that holds a card number replaced by MASK (for logs)."""
    return _RUN.sub(
        lambda match: MASK if any(map(luhn_valid, _candidates(match.group()))) else match.group(),
        text,
    )
