"""Private PostgreSQL clusters on their own ports: a primary and its streaming replica.

Built with the server programs of Debian's postgresql package (initdb, pg_ctl,
pg_basebackup), so a test can pause or stop them without touching the shared
server on 5432. PostgreSQL refuses to run as root: as root, they run as `postgres`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.server_process import free_port


def _server_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3])
    if not found:
        raise RuntimeError("PostgreSQL's server programs are missing: scripts/services.sh postgres")
    return found[-1].parent


def _run(*command: str) -> None:
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_owner, *command], check=True, capture_output=True, timeout=120)


@dataclass(frozen=True, slots=True)
class Cluster:
    data: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1"
        pg_ctl = str(_server_bin() / "pg_ctl")
        _run(pg_ctl, "-D", str(self.data), "-o", options, "-l", f"{self.data}.log", "-w", "start")

    def stop(self) -> None:
        _run(str(_server_bin() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def log(self) -> str:
        path = Path(f"{self.data}.log")
        return path.read_text() if path.exists() else ""


class PrimaryWithReplica:
    """A primary (wal_level=replica, trust on loopback) and a hot standby fed by streaming."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="payments-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self.primary = Cluster(self.folder / "primary", free_port())
        self.replica = Cluster(self.folder / "replica", free_port())

    def start(self) -> PrimaryWithReplica:
        bin_dir = _server_bin()
        _run(
            str(bin_dir / "initdb"), "-D", str(self.primary.data), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--no-instructions",
        )  # fmt: skip
        # initdb's pg_hba.conf already lets loopback replicate with trust.
        settings = "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\nfsync = off\n"
        _run("sh", "-c", f"printf '{settings}' >> {self.primary.data}/postgresql.conf")
        self.primary.start()
        _run(
            str(bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port),
            "-U", "postgres", "-D", str(self.replica.data), "-R", "-X", "stream",
            "--checkpoint=fast",
        )  # fmt: skip
        self.replica.start()
        return self

    def close(self) -> None:
        for cluster in (self.replica, self.primary):
            if (cluster.data / "postmaster.pid").exists():
                cluster.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
