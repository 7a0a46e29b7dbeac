"""The runbook's configuration table lists every variable the code reads."""

from __future__ import annotations

import re

from tests.support.env_names import ROOT, env_names_in_code

RUNBOOK = ROOT / "docs" / "operations.md"


def documented() -> set[str]:
    """Names in the first column of the configuration table."""
    text = RUNBOOK.read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_every_variable_read_in_code_is_in_the_configuration_table() -> None:
    missing = env_names_in_code() - documented()
    assert not missing, f"add to docs/operations.md: {sorted(missing)}"


def test_every_metric_the_code_makes_is_in_the_runbook() -> None:
    source = (ROOT / "server" / "observability" / "metrics.py").read_text()
    made = re.findall(r'"(payments\.[a-z_.]+)"', source)
    text = RUNBOOK.read_text()
    for name in made:
        exposed = "payments_" + name.removeprefix("payments.").replace(".", "_")
        assert exposed in text, f"{exposed} is not in docs/operations.md"
