"""PostgreSQL's CPU for one database, apart from what other databases on the server use.

The machine is shared: other work keeps other databases of the same PostgreSQL busy,
and counting every postgres process would charge their work to the benchmark. A
backend (and an autovacuum worker) names its database in its process title; the
processes that name none (WAL writer, checkpointer, background writer, launchers)
serve every database and are counted apart, as `shared`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class PostgresCpu:
    """CPU seconds so far of the postgres processes alive at the sample."""

    ours: dict[int, float]
    shared: dict[int, float]


def sample(database: str) -> PostgresCpu:
    ours: dict[int, float] = {}
    shared: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                raw = stat.read()
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                title = cmdline.read().decode(errors="replace").split()
        except OSError:
            continue  # gone meanwhile
        if raw[raw.index("(") + 1 : raw.rindex(")")] != "postgres":
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND  # utime + stime
        if database in title:
            ours[int(entry.name)] = cpu
        elif not any("(" in word or word == "[local]" for word in title) and not (
            "autovacuum" in title and "worker" in title
        ):
            # No client address, no database: the postmaster or a server-wide process.
            shared[int(entry.name)] = cpu
    return PostgresCpu(ours, shared)


def used(before: PostgresCpu, after: PostgresCpu) -> tuple[float, float]:
    """CPU seconds (ours, shared) between the samples; a process that started meanwhile
    counts from zero, one that ended is lost."""

    def delta(old: dict[int, float], new: dict[int, float]) -> float:
        return sum(cpu - old.get(pid, 0.0) for pid, cpu in new.items())

    return delta(before.ours, after.ours), delta(before.shared, after.shared)
