"""Run mutmut on the money paths and print the mutation score.

    .venv/bin/python scripts/mutation.py          # every module of [tool.mutmut] only_mutate
    .venv/bin/python scripts/mutation.py --ci     # the fast subset that `make test` runs

The modules and tests are listed once, in pyproject.toml's [tool.mutmut]:
`only_mutate` and `pytest_add_cli_args_test_selection` for the full run,
`ci_only_mutate` and `ci_test_selection` for the subset (mutmut reads neither
of the latter; this script swaps them in). Mutants listed as equivalent in
docs/testing.md are left out of the score. Exits 1 below `--floor` percent.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "testing.md"
# Found by the tests, one way or another: a timeout is an endless loop the mutant caused.
DETECTED = {"killed", "timeout", "caught by type check", "segfault"}


def settings() -> dict[str, list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    table: dict[str, list[str]] = config["tool"]["mutmut"]
    return table


def equivalent_mutants() -> set[str]:
    """Mutant names in the `Equivalent mutants` table of docs/testing.md."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("### Equivalent mutants", 1)[-1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([\w.]+__mutmut_\d+)`", section, re.M))


def module_glob(path: str) -> str:
    """mutmut's name pattern for every mutant of one source file."""
    return path.removesuffix(".py").replace("/", ".") + ".*"


def run(ci: bool) -> None:
    table = settings()
    modules = table["ci_only_mutate"] if ci else table["only_mutate"]
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    if ci:
        from mutmut import configuration

        config = configuration.config()
        config.only_mutate = list(modules)
        config.pytest_add_cli_args_test_selection = list(table["ci_test_selection"])
    from mutmut.__main__ import cli

    try:
        cli(["run", *map(module_glob, modules)])
    except SystemExit as done:
        if done.code:
            raise


def results() -> dict[str, str]:
    shown = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = {}
    for line in shown.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if "__mutmut_" in name:
            found[name] = status
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ci", action="store_true", help="the fast subset only")
    parser.add_argument("--floor", type=float, default=90.0, help="minimum score, percent")
    parser.add_argument("--report-only", action="store_true", help="score the last run")
    options = parser.parse_args()
    if not options.report_only:
        run(options.ci)
    statuses = results()
    equivalent = equivalent_mutants() & statuses.keys()
    counted = {name: s for name, s in statuses.items() if name not in equivalent}
    tally = Counter(counted.values())
    detected = sum(n for status, n in tally.items() if status in DETECTED)
    score = 100.0 * detected / len(counted) if counted else 0.0
    for name, status in sorted(counted.items()):
        if status not in DETECTED:
            print(f"  {status:>10}  {name}")
    print(", ".join(f"{status}: {n}" for status, n in sorted(tally.items())))
    print(
        f"mutation score: {score:.1f}% ({detected} of {len(counted)} detected; "
        f"{len(equivalent)} equivalent mutants left out)"
    )
    return 0 if score >= options.floor else 1


if __name__ == "__main__":
    sys.exit(main())
