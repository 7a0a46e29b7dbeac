"""A real `payments serve` process on a free port, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

BIN = Path(sys.executable).parent
PAYMENTS = str(BIN / "payments")
GRPCURL = str(BIN / "grpcurl")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def health_status(address: str, service: str = "", timeout: float = 2.0) -> int | None:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return None
    return int(reply.status)


class PaymentsProcess:
    """One `payments <command>` process with its log in `cwd`; subclasses say when it is up."""

    kind = "process"

    def __init__(
        self, cwd: Path, args: tuple[str, ...], env: dict[str, str], executable: str = PAYMENTS
    ) -> None:
        self.cwd = cwd
        self.executable = executable
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_path = cwd / f"{self.kind}-{self.port}.log"
        self.env = {**os.environ, **env}
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> Self:
        log = self.log_path.open("ab")  # a restarted process adds to its log
        self.process = subprocess.Popen(
            [self.executable, *self.args], cwd=self.cwd, env=self.env, stdout=log, stderr=log
        )
        if wait:
            self.wait_ready()
        return self

    def ready(self) -> bool:
        raise NotImplementedError

    # A deadline, not a speed check: under coverage on a loaded 2-core machine a
    # start (imports, migrations) can take far longer than the usual second.
    def wait_ready(self, timeout: float = 90.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} exited with {self.process.returncode}:\n{self.log}"
                )
            if self.ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not become healthy:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

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


class ServerProcess(PaymentsProcess):
    """`payments serve`, up when its gRPC health says SERVING."""

    kind = "server"

    def __init__(
        self,
        cwd: Path,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = ("serve", "--no-jobs"),
        executable: str = PAYMENTS,
    ) -> None:
        # One process unless a test asks for a group: on PostgreSQL with a shared mock
        # store `auto` would start one per CPU, and each test's server costs a core anyway.
        defaults = {"PAYMENTS_DRAIN_SECONDS": "0", "PAYMENTS_SERVER_PROCESSES": "1"}
        super().__init__(cwd, args, {**defaults, **(env or {})}, executable)
        self.env["PAYMENTS_GRPC_ADDRESS"] = self.address

    def ready(self) -> bool:
        status = health_status(self.address, timeout=0.5)
        return status == int(health_pb2.HealthCheckResponse.SERVING)


def grpcurl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [GRPCURL, *args], capture_output=True, text=True, timeout=30, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"grpcurl {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result
