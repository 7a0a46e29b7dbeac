"""Run mutmut on the money paths and print the mutation score, module by module.

    .venv/bin/python scripts/mutation.py            # the full run; goes on where the last stopped
    .venv/bin/python scripts/mutation.py --fresh    # the full run from the start
    .venv/bin/python scripts/mutation.py --ci       # the fast subset that `make test` runs
    .venv/bin/python scripts/mutation.py --report-only
    .venv/bin/python scripts/mutation.py --retest-survivors   # after adding tests
    .venv/bin/python scripts/mutation.py --show NAME

The modules and tests are listed once, in pyproject.toml's [tool.mutmut]. The full
run mutates `only_mutate` in the groups of [tool.mutmut.groups], each with its own
tests and databases, in its own folder under .mutation/ (mutmut keeps every verdict
there, so an interrupted run goes on where it stopped). The subset mutates
`ci_only_mutate`, judged by `ci_test_selection`, from scratch every time.

A stopped process (SIGSTOP) makes the tests it runs fail or time out when it goes
on: every process of the run notes when it is continued, and a mutant killed or
timed out while that happened is judged again, as is every timeout once. Mutants
listed as equivalent in docs/testing.md are left out of the score. Exits 1 below
`--floor` percent.
"""

from __future__ import annotations

import argparse
import fcntl
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "testing.md"
WORK = ROOT / ".mutation"
CONTINUED = WORK / "continued.log"
MAX_CHILDREN = 2
# Found by the tests, one way or another: a timeout is an endless loop the mutant caused.
DETECTED = {"killed", "timeout", "caught by type check", "segfault"}
# Verdicts a stopped process can cause; not "survived": a stop fails tests, never passes them.
STOPPABLE = {"killed", "timeout", "segfault", "suspicious"}
STATUS = {
    None: "not checked",
    0: "survived",
    1: "killed",
    3: "killed",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    37: "caught by type check",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "segfault",
    -9: "segfault",
}


@dataclass(frozen=True)
class Group:
    name: str
    modules: list[str]
    tests: list[str]
    databases: list[str]

    @property
    def root(self) -> Path:
        return WORK / self.name

    @property
    def journal(self) -> Path:
        return self.root / "journal.jsonl"


def settings() -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    table: dict[str, Any] = config["tool"]["mutmut"]
    return table


def groups(ci: bool) -> list[Group]:
    table = settings()
    if ci:
        return [Group("ci", table["ci_only_mutate"], table["ci_test_selection"], ["sqlite"])]
    found = []
    for name, group in table["groups"].items():
        modules = [
            module
            for module in table["only_mutate"]
            if any(fnmatch.fnmatch(module, pattern) for pattern in group["modules"])
        ]
        found.append(Group(name, modules, group["tests"], group["databases"]))
    listed = [module for group in found for module in group.modules]
    if sorted(listed) != sorted(table["only_mutate"]):
        raise SystemExit("[tool.mutmut.groups] must take every module of only_mutate once")
    return found


def equivalent_mutants() -> set[str]:
    """Mutant names in the `Equivalent mutants` table of docs/testing.md."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("### Equivalent mutants", 1)[-1]
    section = re.split(r"\n##+ ", section, maxsplit=1)[0]
    return set(re.findall(r"^\| `([\w.ǁ]+__mutmut_\d+)`", section, re.M))


def module_of(name: str) -> str:
    """The source file a mutant name belongs to."""
    dotted = name.split(".x_")[0].split(".xǁ")[0]
    return dotted.replace(".", "/") + ".py"


# --- a group's own folder ---------------------------------------------------------


def prepare(group: Group, fresh: bool) -> None:
    """The group's folder: the repository's files by symlink, mutmut's mutants/ its own."""
    if fresh:
        shutil.rmtree(group.root, ignore_errors=True)
    group.root.mkdir(parents=True, exist_ok=True)
    for entry in ROOT.iterdir():
        if entry.name in {".git", ".mutation", "mutants", ".venv"}:
            continue
        link = group.root / entry.name
        if not link.is_symlink():
            link.symlink_to(entry)


def verdicts(group: Group) -> dict[str, int | None]:
    """Every mutant of the group's modules and its exit code (None: not checked yet)."""
    found: dict[str, int | None] = {}
    for module in group.modules:
        meta = group.root / "mutants" / (module + ".meta")
        if meta.exists():
            found.update(json.loads(meta.read_text())["exit_code_by_key"])
    return found


def forget_interrupted(group: Group) -> None:
    """A mutant whose tests were interrupted (exit code 2) has no verdict: judge it again."""
    for module in group.modules:
        meta = group.root / "mutants" / (module + ".meta")
        if not meta.exists():
            continue
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        if 2 in codes.values():
            data["exit_code_by_key"] = {k: None if v == 2 else v for k, v in codes.items()}
            meta.write_text(json.dumps(data, indent=4))


def status(code: int | None) -> str:
    return STATUS.get(code, "suspicious")


# --- inside one group's mutmut process ----------------------------------------------


def note_continued(signum: int, frame: FrameType | None) -> None:
    """SIGCONT: this process was stopped; the verdicts reached meanwhile are suspect."""
    fd = os.open(CONTINUED, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{time.time():.3f}\n".encode())
    finally:
        os.close(fd)


def run_group(group: Group, names: list[str]) -> None:
    """mutmut on one group, in this process (started in the group's folder)."""
    os.environ["PAYMENTS_TEST_DATABASES"] = ",".join(group.databases)
    import mutmut.__main__ as mutmut_main
    from mutmut import configuration
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.workers.isolation import MutantResult

    configuration.reset_config()
    config = configuration.config()
    config.only_mutate = list(group.modules)
    config.pytest_add_cli_args_test_selection = list(group.tests)

    register = mutmut_main._register_mutant_result

    def register_and_journal(
        result: MutantResult, mutation_data_by_mutant_name: dict[str, SourceFileMutationData]
    ) -> None:
        register(result, mutation_data_by_mutant_name)
        with group.journal.open("a") as journal:
            journal.write(
                json.dumps({"name": result.mutant_name, "end": time.time(), "s": result.duration})
                + "\n"
            )

    mutmut_main._register_mutant_result = register_and_journal
    try:
        mutmut_main.cli(["run", "--max-children", str(MAX_CHILDREN), *names])
    except SystemExit as done:
        if done.code:
            raise


# --- the driver ---------------------------------------------------------------------


def mutmut_in(group: Group, names: list[str]) -> None:
    """One mutmut process on the group (names: these mutants again; none: the unjudged)."""
    arguments = [sys.executable, str(Path(__file__).resolve()), "--group", group.name]
    names_file = group.root / "names.txt"
    names_file.write_text("\n".join(names))
    if names:
        arguments += ["--names", str(names_file)]
    if group.name == "ci":
        arguments.append("--ci")
    # Its own session: Ctrl-C reaches the driver alone, which stops the whole group
    # (mutmut and its mutants, no verdict recorded) before it takes the slots away.
    worker = subprocess.Popen(arguments, cwd=group.root, start_new_session=True)
    try:
        code = worker.wait()
    except BaseException:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        raise
    if code:
        raise subprocess.CalledProcessError(code, arguments)


def suspects(group: Group, retested: set[str]) -> list[str]:
    """Verdicts a stop may have caused, and timeouts not yet confirmed by a second run."""
    stops = [float(line) for line in CONTINUED.read_text().split()] if CONTINUED.exists() else []
    codes = verdicts(group)
    found = set()
    if group.journal.exists():
        for line in group.journal.read_text().splitlines():
            entry = json.loads(line)
            start, end = entry["end"] - entry["s"] - 1, entry["end"] + 1
            if status(codes.get(entry["name"])) in STOPPABLE and any(
                start <= t <= end for t in stops
            ):
                found.add(entry["name"])
    found |= {name for name, code in codes.items() if status(code) == "timeout"} - retested
    return sorted(found)


def run_full(chosen: list[Group], fresh: bool) -> None:
    with serve():
        for group in chosen:
            prepare(group, fresh)
            forget_interrupted(group)
            began = time.monotonic()
            if None in verdicts(group).values() or not verdicts(group):
                mutmut_in(group, [])
            retested: set[str] = set()
            for _ in range(3):
                again = suspects(group, retested)
                if not again:
                    break
                print(f"{group.name}: judging {len(again)} mutants again (timeouts, stops)")
                retested |= set(again)
                judge_again(group, again)
            print(f"{group.name}: {time.monotonic() - began:.0f} s of wall time")


@contextmanager
def serve() -> Iterator[None]:
    """The slots the groups' pytest processes share (databases, localstripe)."""
    from tests.support.databases import drop_postgres_databases_ending
    from tests.support.localstripe import LocalStripe
    from tests.support.shared_services import serve_slots

    def start_localstripe(folder: Path) -> tuple[str, int]:
        server = LocalStripe(folder).start()
        assert server.process is not None
        return server.url, server.process.pid

    WORK.mkdir(exist_ok=True)
    # One run at a time: a second would restart the first one's slots under it.
    lock = os.open(WORK / "run.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit("another mutation run is going on in this folder") from None
    signal.signal(signal.SIGCONT, note_continued)
    slots = serve_slots(
        WORK / "slots", MAX_CHILDREN + 1, start_localstripe, drop_postgres_databases_ending
    )
    with slots as environment:
        os.environ.update(environment)
        yield


def judge_again(group: Group, names: list[str]) -> None:
    """Run these mutants again; their journal entries give way to those of the new run."""
    if group.journal.exists():
        keep = [
            line
            for line in group.journal.read_text().splitlines()
            if json.loads(line)["name"] not in names
        ]
        group.journal.write_text("".join(line + "\n" for line in keep))
    mutmut_in(group, names)


def retest(chosen: list[Group], names: list[str]) -> None:
    """Judge these mutants again (with the tests added since), group by group."""
    for group in chosen:
        mine = sorted({name for name in names if module_of(name) in group.modules})
        if mine:
            judge_again(group, mine)


def report(chosen: list[Group], floor: float) -> int:
    equivalent = equivalent_mutants()
    detected_all = counted_all = 0
    partial = False
    for group in chosen:
        codes = verdicts(group)
        for module in group.modules:
            mine = {name: status(code) for name, code in codes.items() if module_of(name) == module}
            left_out = equivalent & mine.keys()
            counted = {name: s for name, s in mine.items() if name not in left_out}
            tally = Counter(counted.values())
            detected = sum(n for s, n in tally.items() if s in DETECTED)
            unchecked = tally.get("not checked", 0)
            judged = len(counted) - unchecked
            score = 100.0 * detected / judged if judged else 0.0
            # No meta file yet: mutmut has not reached the module. A file with no
            # mutants (no function to mutate) is complete.
            generated = (group.root / "mutants" / (module + ".meta")).exists()
            partial |= unchecked > 0 or not generated
            for name, s in sorted(counted.items()):
                if s not in DETECTED and s != "not checked":
                    print(f"  {s:>10}  {name}")
            note = f", PARTIAL: {unchecked} not checked" if unchecked or not generated else ""
            print(
                f"{module}: {score:.1f}% ({detected} of {judged} detected, "
                f"{len(left_out)} equivalent{note})"
            )
            detected_all += detected
            counted_all += judged
    score = 100.0 * detected_all / counted_all if counted_all else 0.0
    print(
        f"mutation score: {score:.1f}% ({detected_all} of {counted_all} detected"
        f"{'; PARTIAL' if partial else ''})"
    )
    return 0 if score >= floor and not partial else 1


def stop_on_term(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ci", action="store_true", help="the fast subset only")
    parser.add_argument("--fresh", action="store_true", help="forget the last run's verdicts")
    parser.add_argument("--floor", type=float, default=90.0, help="minimum score, percent")
    parser.add_argument("--report-only", action="store_true", help="score the last run")
    parser.add_argument(
        "--retest-survivors", action="store_true", help="judge survivors (and suspects) again"
    )
    parser.add_argument("--show", metavar="NAME", help="one mutant's diff and verdict")
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--names", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    chosen = groups(options.ci)
    if options.group:
        signal.signal(signal.SIGCONT, note_continued)
        group = next(g for g in chosen if g.name == options.group)
        names = options.names.read_text().split() if options.names else []
        run_group(group, names)
        return 0
    signal.signal(signal.SIGTERM, stop_on_term)
    sys.path.insert(0, str(ROOT))  # the driver uses tests/support; mutmut's processes must not
    if options.show:
        group = next(g for g in chosen if module_of(options.show) in g.modules)
        return subprocess.run(
            [sys.executable, "-m", "mutmut", "show", options.show], cwd=group.root
        ).returncode
    if options.ci and not options.report_only:
        prepare(chosen[0], fresh=True)
        mutmut_in(chosen[0], [])
    elif options.retest_survivors:
        names = [
            name
            for group in chosen
            for name, code in verdicts(group).items()
            if status(code) not in DETECTED and status(code) != "not checked"
        ]
        names = sorted(set(names) - equivalent_mutants())
        # And the verdicts a stop may have caused, with the timeouts, as the full run does.
        names += [name for group in chosen for name in suspects(group, set())]
        with serve():
            retest(chosen, names)
    elif not options.report_only:
        run_full(chosen, options.fresh)
    return report(chosen, options.floor)


if __name__ == "__main__":
    sys.exit(main())
