"""A real `payments gateway` process (the webhook sidecar) on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.server_process import PAYMENTS, free_port


def http_status(url: str, timeout: float = 1.0) -> int | None:
    try:
        return httpx.get(url, timeout=timeout).status_code
    except httpx.TransportError:
        return None


class GatewayProcess:
    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.cwd = cwd
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.log_path = cwd / f"gateway-{self.port}.log"
        self.env = {**os.environ, "PAYMENTS_GATEWAY_ADDRESS": self.address, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> GatewayProcess:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [PAYMENTS, "gateway"], cwd=self.cwd, env=self.env, stdout=log, stderr=log
        )
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.log}")
            if http_status(f"{self.url}/healthz", timeout=0.5) == 200:
                return
            time.sleep(0.1)
        raise RuntimeError(f"gateway did not become healthy:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)
