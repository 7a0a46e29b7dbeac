"""PostgreSQL's CPU for one database, apart from what other databases on the server use.

The machine is shared: other work keeps other databases of the same PostgreSQL busy,
and counting every postgres process would charge their work to the benchmark. A
backend (and an autovacuum worker) names its database in its process title; the
processes that name none (WAL writer, checkpointer, background writer, launchers)
serve every database and are counted apart, as `shared`.
"""

from __future__ import annotations

from bench.grpc_load import CpuSample


def _title(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().decode(errors="replace").split()
    except OSError:
        return []  # gone meanwhile


def used(before: CpuSample, after: CpuSample, database: str) -> tuple[float, float]:
    """CPU seconds between the samples of the postgres processes on `database`, and of
    the server-wide ones. A process that began in between counts whole; call it while
    the benchmark's connections are open, as their titles say which database."""
    ours = shared = 0.0
    for pid, times in after.processes.items():
        if times.name != "postgres":
            continue
        then = before.processes.get(pid)
        cpu = times.cpu - (then.cpu if then is not None and then.started == times.started else 0)
        title = _title(pid)
        if not title:
            continue  # ended since the sample: nothing says whose it was
        if database in title:
            ours += cpu
        elif not any("(" in word or word == "[local]" for word in title) and not (
            "autovacuum" in title and "worker" in title
        ):
            # No client address, no database: the postmaster or a server-wide process.
            shared += cpu
    return ours, shared
