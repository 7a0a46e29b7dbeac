"""The `payments` command as a person and as a process manager meet it."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
from pathlib import Path

from tests.support.server_process import PAYMENTS, ServerProcess

SECRET = "cli-test-secret-0123456789-abcdefghij"


def run_in_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal, as at a person's shell."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(argv, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    chunks = []
    while select.select([controller], [], [], 30)[0]:  # a hung child fails, never blocks
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    return process.wait(30), b"".join(chunks).decode()


def test_an_error_at_a_terminal_is_a_sentence_not_json() -> None:
    env = {"PATH": os.environ["PATH"]}
    code, output = run_in_terminal([PAYMENTS, "token", "--subject", "ops-1"], env)
    assert code == 2
    assert output.strip() == (
        "payments: error: payments token needs PAYMENTS_AUTH_JWT_SECRET (or _FILE)"
    )


def test_an_error_in_a_pipe_stays_a_json_line() -> None:
    result = subprocess.run(
        [PAYMENTS, "token", "--subject", "ops-1"],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith('{"timestamp": ')
    assert '"level": "ERROR"' in result.stderr


def test_ctrl_c_in_development_stops_at_once(tmp_path: Path) -> None:
    # A drain this long would outlast the wait below: the server must skip it.
    env = {"PAYMENTS_DATABASE_URL": "", "PAYMENTS_DRAIN_SECONDS": "600"}
    server = ServerProcess(tmp_path, env=env).start()
    try:
        server.signal(signal.SIGINT)
        assert server.wait(timeout=60) == 0
    finally:
        server.stop()
    assert "stopping without draining" in server.log
    assert "draining: NOT_SERVING" not in server.log


def test_ctrl_c_in_production_drains_like_sigterm(tmp_path: Path) -> None:
    env = {
        "PAYMENTS_DATABASE_URL": "",
        "PAYMENTS_ENV": "production",
        "PAYMENTS_AUTH_JWT_SECRET": SECRET,
        "PAYMENTS_PAGE_TOKEN_KEY": f"page-{SECRET}",
        "PAYMENTS_DRAIN_SECONDS": "1",
    }
    server = ServerProcess(tmp_path, env=env).start()
    try:
        server.signal(signal.SIGINT)
        assert server.wait() == 0
    finally:
        server.stop()
    assert "draining: NOT_SERVING for 1.0 s" in server.log
    assert "stopping without draining" not in server.log
