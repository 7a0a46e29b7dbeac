"""A fault plan for the mock provider: which call fails, times out or answers "unknown".

The plan is a small JSON file (PAYMENTS_MOCK_FAULTS) mapping a call name to a
fault, read again whenever it changes, so a test flips faults on and off in
running servers and workers without restarting them:

    {"confirm": "timeout", "refund": "unavailable", "capture": "unknown"}

Faults: `unavailable` (nothing happens at the provider; the call raises
ProviderUnavailable, like a refused connection), `timeout` (the call takes
effect, then raises ProviderUnavailable: the answer was lost), `unknown` (the
call takes effect, the answer says processing/pending; asking again tells
the truth). Calls: create, confirm, capture, cancel, refund, retrieve,
retrieve_refund, find.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

CALLS = frozenset(
    {"create", "confirm", "capture", "cancel", "refund", "retrieve", "retrieve_refund", "find"}
)


class Fault(StrEnum):
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"


class FaultPlan:
    """The faults in force now; no file, or no entry for a call, means it behaves."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._faults: dict[str, Fault] = {}

    def fault_for(self, call: str) -> Fault | None:
        self._reload()
        return self._faults.get(call)

    def _reload(self) -> None:
        if self._path is None:
            return
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            self._stamp, self._faults = None, {}
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        self._faults = parse_plan(self._path.read_text(encoding="utf-8"))
        self._stamp = stamp


def parse_plan(text: str) -> dict[str, Fault]:
    """{"call": "fault"}; ValueError naming what is wrong."""
    raw = json.loads(text) if text.strip() else {}
    if not isinstance(raw, dict):
        raise ValueError("a mock fault plan is a JSON object of call -> fault")
    faults = {}
    for call, fault in raw.items():
        if call not in CALLS:
            raise ValueError(f"unknown mock call {call!r}; one of {', '.join(sorted(CALLS))}")
        faults[call] = Fault(fault)
    return faults


def write_plan(path: Path, faults: dict[str, str]) -> None:
    """Replace the plan atomically (a reader never sees half a file)."""
    parse_plan(json.dumps(faults))
    partial = path.with_name(path.name + ".new")
    partial.write_text(json.dumps(faults), encoding="utf-8")
    partial.replace(path)
