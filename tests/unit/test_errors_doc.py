"""docs/errors.md lists exactly the ErrorInfo reasons the code can send."""

from __future__ import annotations

import re

from tests.support.env_names import ROOT

DOC = ROOT / "docs" / "errors.md"
# `reason="X"` in a raise, `reason = "X"` on an error class, and the catch-all INTERNAL.
_IN_CODE = re.compile(r'\breason\s*=\s*"([A-Z][A-Z0-9_]+)"|rich_status\([^)]*"([A-Z_]+)"\)', re.S)


def reasons_in_code() -> set[str]:
    found: set[str] = set()
    for folder in ("server", "gateway"):
        for path in (ROOT / folder).rglob("*.py"):
            for match in _IN_CODE.finditer(path.read_text()):
                found.add(match.group(1) or match.group(2))
    return found


def reasons_in_doc() -> set[str]:
    section = DOC.read_text().split("## Every reason", 1)[1]
    return {
        line.split("|")[1].strip().strip("`")
        for line in section.splitlines()
        if line.startswith("| `")
    }


def test_the_scan_finds_the_reasons_it_should() -> None:
    found = reasons_in_code()
    assert {"INVALID_PAYMENT_STATE", "REFUND_EXCEEDS_CAPTURED", "RATE_LIMITED", "INTERNAL"} <= found


def test_every_reason_the_code_sends_is_documented_and_no_other() -> None:
    code, doc = reasons_in_code(), reasons_in_doc()
    assert not code - doc, f"add to docs/errors.md: {sorted(code - doc)}"
    assert not doc - code, (
        f"docs/errors.md lists reasons the code never sends: {sorted(doc - code)}"
    )
