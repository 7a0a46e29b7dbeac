"""The environment variables the code reads, found in its source."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_NAME = re.compile(r"\"((?:PAYMENTS|STRIPE|OTEL)_[A-Z0-9_]+)\"")


def env_names_in_code() -> set[str]:
    """Every quoted PAYMENTS_*, STRIPE_* and OTEL_* name in server/ and gateway/."""
    names: set[str] = set()
    for folder in ("server", "gateway"):
        for path in (ROOT / folder).rglob("*.py"):
            names.update(_NAME.findall(path.read_text()))
    return names
