"""A private PostgreSQL cluster (initdb + postgres) on its own port and data folder.

The machine's shared server on 5432 serves every other test; this one may be
SIGKILLed (the postmaster and every backend at once, like a container killed
by the OOM killer) and started again on the same port, where it recovers from
its WAL. PostgreSQL refuses to run as root, so as root it runs as `postgres`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from tests.support.server_process import free_port

_BIN_ROOT = Path("/usr/lib/postgresql")


def _binary(name: str) -> str:
    # A missing PostgreSQL must fail the run loudly, never skip.
    versions = sorted(_BIN_ROOT.glob("*/bin"), key=lambda p: int(p.parent.name))
    for folder in reversed(versions):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install PostgreSQL (Debian package postgresql)")
    return found


def _as_postgres() -> dict[str, Any]:
    """Popen's arguments to run a program as `postgres` when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


class PostgresCluster:
    """`folder` is made fresh in /tmp: as root, the `postgres` user must reach it,
    and pytest's own temporary folders are private to root.

    `settings` are server settings (`-c name=value`) over the defaults below; the tests
    run without fsync, bench/grpc_load.py turns it back on and loads pg_stat_statements.
    """

    def __init__(self, settings: Mapping[str, str] | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="payments-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        self.settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.folder),
            "max_connections": "200",
            "fsync": "off",
            **(settings or {}),
        }
        self._process: subprocess.Popen[bytes] | None = None

    def init(self) -> Self:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        subprocess.run(
            [_binary("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"],
            **_as_postgres(),
            check=True,
            capture_output=True,
            timeout=120,
        )
        return self

    def start(self, timeout: float = 30.0) -> Self:
        log = (self.folder / "postgres.log").open("ab")
        settings = [part for item in self.settings.items() for part in ("-c", "=".join(item))]
        self._process = subprocess.Popen(
            [_binary("postgres"), "-D", str(self.data), "-p", str(self.port), *settings],
            stdout=log,
            stderr=log,
            # Its own process group: a kill takes the postmaster and its backends together.
            start_new_session=True,
            **_as_postgres(),
        )
        self._wait_accepting(timeout)
        return self

    @property
    def pid(self) -> int | None:
        """The postmaster's; every other process of the cluster is its child."""
        return self._process.pid if self._process is not None else None

    def kill(self) -> None:
        """SIGKILL every process of the cluster at once: no shutdown, no checkpoint."""
        assert self._process is not None
        group = self._process.pid
        os.killpg(group, signal.SIGKILL)
        self._process.wait(30)
        # Backends are in the same group. Wait until none is left (a backend forked while
        # the kill was sent outlives it, and a new postmaster started beside it crashed
        # once), killing again what remains, and until none holds the port.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        while self._accepting() and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGINT)  # fast shutdown
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def log(self) -> str:
        path = self.folder / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _accepting(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def _wait_accepting(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                log = (self.folder / "postgres.log").read_text(errors="replace")
                raise RuntimeError(f"postgres exited with {self._process.returncode}:\n{log}")
            ready = subprocess.run(
                [
                    _binary("pg_isready"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    "-t",
                    "1",
                ],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("postgres did not accept connections in time")


def replica_of(primary: PostgresCluster) -> PostgresCluster:
    """A hot standby of `primary`, streaming from it: `pg_basebackup -R` into a new cluster.

    initdb's defaults already allow it: wal_level=replica, WAL senders, and trust for
    replication connections on loopback.
    """
    replica = PostgresCluster()
    if os.geteuid() == 0:
        shutil.chown(replica.folder, "postgres", "postgres")
    subprocess.run(
        [
            _binary("pg_basebackup"),
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            *("-D", str(replica.data), "-R", "-X", "stream", "--checkpoint=fast"),
        ],
        **_as_postgres(),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return replica.start()
