"""Enforce the per-path coverage floors of pyproject.toml's [tool.coverage-floors].

coverage.py's own fail_under is one figure for everything; the money paths need
their own. Reads the combined data in .coverage (run `coverage combine` first),
prints the line+branch coverage of each floored path and of each module under
it, and exits 1 when a path is below its floor.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def floors() -> dict[str, float]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {path: float(floor) for path, floor in config["tool"]["coverage-floors"].items()}


def per_file() -> dict[str, tuple[int, int]]:
    """Covered and coverable (statements plus branches) per file, relative to ROOT."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "coverage.json"
        subprocess.run(
            [sys.executable, "-m", "coverage", "json", "-q", "-o", str(report)],
            check=True,
            cwd=ROOT,
        )
        files = json.loads(report.read_text(encoding="utf-8"))["files"]
    found = {}
    for name, data in files.items():
        summary = data["summary"]
        covered = summary["covered_lines"] + summary.get("covered_branches", 0)
        total = summary["num_statements"] + summary.get("num_branches", 0)
        relative = Path(name).resolve().relative_to(ROOT).as_posix()
        found[relative] = (covered, total)
    return found


def percent(covered: int, total: int) -> float:
    return 100.0 * covered / total if total else 100.0


def main() -> int:
    files = per_file()
    failed = []
    print(f"{'path':<48} {'cover':>7} {'floor':>7}")
    for path, floor in floors().items():
        folder = path.rstrip("/") + "/"
        under = {f: v for f, v in files.items() if f == path or f.startswith(folder)}
        if not under:
            failed.append(f"{path}: no measured file")
            continue
        sums: dict[str, int] = defaultdict(int)
        for covered, total in under.values():
            sums["covered"] += covered
            sums["total"] += total
        figure = percent(sums["covered"], sums["total"])
        mark = "" if figure >= floor else "  BELOW FLOOR"
        print(f"{path:<48} {figure:6.1f}% {floor:6.1f}%{mark}")
        if len(under) > 1:
            for name, (covered, total) in sorted(under.items()):
                print(f"  {name:<46} {percent(covered, total):6.1f}%")
        if figure < floor:
            failed.append(f"{path}: {figure:.1f}% < {floor:.1f}%")
    for failure in failed:
        print(f"coverage floor not met: {failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
