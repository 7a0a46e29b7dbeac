"""Every shell and Python example in README.md works when pasted."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(sh|python)\n(.*?)```", README, flags=re.S)
SHELL = [code for kind, code in BLOCKS if kind == "sh" and "make run" not in code]
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


@pytest.mark.parametrize("block", SHELL, ids=[f"sh-{i}" for i in range(len(SHELL))])
def test_shell_examples(sqlite_server: ServerProcess, block: str) -> None:
    script = "set -euo pipefail\n" + block.replace("localhost:50051", sqlite_server.address)
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
