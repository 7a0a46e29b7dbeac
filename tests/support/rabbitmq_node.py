"""A private RabbitMQ node on free ports, for tests that must stop and restart a broker.

The machine's shared broker on 5672 serves every other test; killing it would
break them. This node has its own name, ports, data folder and cookie, so it can
be killed and brought back with its durable queues and persistent messages.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Self

from tests.support.server_process import free_port

# The Debian wrapper in /usr/sbin switches to the rabbitmq user and drops our
# environment; the scripts behind it take it as is.
_BIN = Path("/usr/lib/rabbitmq/bin")


def _script(name: str) -> str:
    path = _BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    # A missing broker must fail the run loudly, never skip.
    if found is None:
        raise RuntimeError(f"{name} not found: install RabbitMQ (Debian package rabbitmq-server)")
    return found


class RabbitNode:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.name = f"payments-test-{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self._pid_file = folder / "node.pid"
        (folder / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (folder / "enabled_plugins").write_text("[].\n")
        (folder / "rabbitmq-env.conf").write_text("")
        self.env = {
            **os.environ,
            "HOME": str(folder),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(folder / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_PID_FILE": str(self._pid_file),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> Self:
        self._pid_file.unlink(missing_ok=True)
        log = (self.folder / "server.out").open("ab")
        # Run in its folder: a crashing node writes its MnesiaCore dump into the working
        # directory, which must not be the repository.
        self._process = subprocess.Popen(
            [_script("rabbitmq-server")], env=self.env, stdout=log, stderr=log, cwd=self.folder
        )
        self._ctl("wait", str(self._pid_file), "--timeout", str(int(timeout)), timeout=timeout + 10)
        return self

    def kill(self) -> None:
        """Stop the node the hard way, as a crash or an OOM kill would."""
        pid = int(self._pid_file.read_text().strip())
        os.kill(pid, signal.SIGKILL)
        if self._process is not None:
            self._process.wait(30)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        try:
            self._ctl("stop", str(self._pid_file), timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.kill()
        self._process.wait(30)

    def _ctl(self, *args: str, timeout: float) -> None:
        subprocess.run(
            [_script("rabbitmqctl"), "-n", self.name, *args],
            env=self.env,
            cwd=self.folder,
            check=True,
            capture_output=True,
            timeout=timeout,
        )
