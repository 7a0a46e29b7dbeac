"""Every shell and Python example in README.md works when pasted."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(sh|python)\n(.*?)```", README, flags=re.S)
SHELL = [code for kind, code in BLOCKS if kind == "sh" and "make run" not in code]
# Examples with tokens run against a server with the secret the README gives.
AUTH_SHELL = [code for code in SHELL if "authorization: Bearer" in code]
OPEN_SHELL = [code for code in SHELL if code not in AUTH_SHELL]
README_SECRET = re.search(r"PAYMENTS_AUTH_JWT_SECRET='([^']+)' \.venv/bin/payments serve", README)
PYTHON = [code for kind, code in BLOCKS if kind == "python"]
# The gRPC client example, and the event consumer (tests/integration/jobs runs it).
PAY = [code for code in PYTHON if "async def pay(" in code]
CONSUMER = [code for code in PYTHON if "async def consume(" in code]


def test_readme_starts_with_the_two_commands() -> None:
    first = next(code for kind, code in BLOCKS if kind == "sh")
    assert [line.split()[:2] for line in first.splitlines()] == [
        ["make", "run"],
        ["make", "test"],
    ]


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`payments serve` as the README's authentication section starts it."""
    assert README_SECRET is not None
    env = {"PAYMENTS_DATABASE_URL": "", "PAYMENTS_AUTH_JWT_SECRET": README_SECRET.group(1)}
    server = ServerProcess(tmp_path_factory.mktemp("readme-auth"), env=env).start()
    yield server
    assert server.stop() == 0, server.log


@pytest.mark.parametrize("block", OPEN_SHELL, ids=[f"sh-{i}" for i in range(len(OPEN_SHELL))])
def test_shell_examples(sqlite_server: ServerProcess, block: str) -> None:
    run_shell(sqlite_server, block)


@pytest.mark.parametrize("block", AUTH_SHELL, ids=[f"auth-{i}" for i in range(len(AUTH_SHELL))])
def test_shell_examples_with_tokens(auth_server: ServerProcess, block: str) -> None:
    assert "PAYMENTS_AUTH_JWT_SECRET" not in os.environ
    run_shell(auth_server, block)


def test_there_are_examples_with_tokens() -> None:
    assert len(AUTH_SHELL) == 1


def run_shell(server: ServerProcess, block: str) -> None:
    script = "set -euo pipefail\n" + block.replace("localhost:50051", server.address)
    result = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    if "|| true" in block:
        assert "Code: InvalidArgument" in result.stderr
    else:
        assert "ERROR" not in result.stderr, result.stderr


def test_python_example(sqlite_server: ServerProcess) -> None:
    assert len(PAY) == 1
    assert len(PYTHON) == len(PAY) + len(CONSUMER) == 2
    namespace: dict[str, object] = {}
    exec(PAY[0].replace("localhost:50051", sqlite_server.address), namespace)  # noqa: S102
    pay = namespace["pay"]
    assert callable(pay)
    payment = asyncio.run(pay("readme-python-order"))
    assert payment.state == 6  # PAYMENT_STATE_SUCCEEDED
