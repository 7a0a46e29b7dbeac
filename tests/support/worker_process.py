"""A real `payments worker` process, up once it consumes the command queue."""

from __future__ import annotations

from pathlib import Path

from tests.support.server_process import PAYMENTS, PaymentsProcess


class WorkerProcess(PaymentsProcess):
    kind = "worker"

    def __init__(self, cwd: Path, env: dict[str, str], executable: str = PAYMENTS) -> None:
        super().__init__(cwd, ("worker",), env, executable)

    def ready(self) -> bool:
        return "consuming commands from" in self.log
