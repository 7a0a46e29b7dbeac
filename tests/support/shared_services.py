"""Databases and localstripe shared by many short pytest processes (the mutation run).

mutmut runs pytest once per mutant. Creating, migrating and dropping a PostgreSQL
database and starting localstripe cost each of those processes about 9 s on the
loaded 2-core machine, more than most mutants' tests. When `PAYMENTS_TEST_SLOTS`
names a folder made by `serve_slots`, a pytest process takes a free slot for its
session and reuses that slot's databases and localstripe. The slot is an exclusive
file lock, which the kernel drops when the process ends, however it ends (mutmut
kills a mutant that runs too long). The tests empty the tables they use before they
start, as they do with a database of their own, so a slot's earlier user leaves
nothing they can see.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SLOTS_ENV = "PAYMENTS_TEST_SLOTS"
# Longer than a mutant may run, so a wait for a slot only fails when something is stuck.
_WAIT_FOR_SLOT_S = 900.0


@dataclass(frozen=True)
class Slot:
    folder: Path

    @property
    def token(self) -> str:
        """This pool's mark, in the name of every database it made."""
        return (self.folder.parent / "token").read_text().strip()

    def localstripe_url(self) -> str:
        return (self.folder / "localstripe.url").read_text().strip()

    def database(self, prefix: str, make: Callable[[str], str]) -> str:
        """The slot's database for `prefix`, made by `make(name)` on first use."""
        record = self.folder / f"{prefix}.url"
        if record.exists():
            return record.read_text().strip()
        # The name is fixed, so a database a killed process left half-made is made again.
        url = make(f"{prefix}_{self.folder.name}_{self.token}")
        record.write_text(url)
        return url


# The slot this process holds: (pid, open lock file, slot). The pid tells a forked
# child that the lock it inherited is its parent's, not its own.
_held: tuple[int, int, Slot] | None = None


def current_slot() -> Slot | None:
    """This process's slot, taken on first use; None when slots are not shared."""
    global _held
    pool = os.environ.get(SLOTS_ENV)
    if not pool:
        return None
    if _held is not None and _held[0] == os.getpid():
        return _held[2]
    folders = sorted(p for p in Path(pool).iterdir() if p.is_dir())
    deadline = time.monotonic() + _WAIT_FOR_SLOT_S
    while True:
        for folder in folders:
            fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            _held = (os.getpid(), fd, Slot(folder))
            return _held[2]
        if time.monotonic() > deadline:
            raise RuntimeError(f"no free slot in {pool} after {_WAIT_FOR_SLOT_S:.0f} s")
        time.sleep(0.1)


def release_slot() -> None:
    """Give this process's slot back (the end of its pytest session)."""
    global _held
    if _held is not None and _held[0] == os.getpid():
        os.close(_held[1])
    _held = None


@contextmanager
def serve_slots(
    folder: Path,
    count: int,
    start_localstripe: Callable[[Path], tuple[str, int]],
    drop_databases: Callable[[str], None],
) -> Iterator[dict[str, str]]:
    """Make `count` slots in `folder`, each with its own localstripe; yield the environment.

    `start_localstripe(folder)` answers (url, pid); `drop_databases(token)` drops every
    database whose name ends in the token, when the slots are no longer needed.
    """
    stop_leftovers(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "token").exists():  # a run that was killed before it cleaned up
        drop_databases((folder / "token").read_text().strip())
    for old in folder.glob("slot-*"):
        for path in old.iterdir():
            path.unlink()
        old.rmdir()
    token = secrets.token_hex(4)
    (folder / "token").write_text(token)
    try:
        for index in range(count):
            slot = folder / f"slot-{index}"
            slot.mkdir()
            url, pid = start_localstripe(slot)
            (slot / "localstripe.url").write_text(url)
            (slot / "localstripe.pid").write_text(str(pid))
        yield {SLOTS_ENV: str(folder)}
    finally:
        stop_leftovers(folder)
        drop_databases(token)


def stop_leftovers(folder: Path) -> None:
    """Stop the localstripe processes a pool in `folder` started (after a crash too)."""
    for record in folder.glob("slot-*/localstripe.pid"):
        pid = int(record.read_text())
        try:
            if b"localstripe" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)
        except (FileNotFoundError, ProcessLookupError):
            pass
        record.unlink()
