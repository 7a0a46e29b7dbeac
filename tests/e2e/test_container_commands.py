"""The image's commands from a plain venv, built the way the Dockerfile builds it.

A wheel of the project (no dev extras) into a fresh venv, alembic.ini and
migrations/ in the working directory as in /app: `migrate`, then `serve`,
`worker` and `gateway` start, answer and stop cleanly. (No Docker engine here.)
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.env_names import ROOT
from tests.support.gateway_process import GatewayProcess, http_status
from tests.support.server_process import PaymentsProcess, ServerProcess, grpcurl


def run(*args: str | Path, cwd: Path | None = None) -> None:
    subprocess.run([str(a) for a in args], cwd=cwd, check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel installed, and the /app-like folder to run it in."""
    folder = tmp_path_factory.mktemp("image")
    venv, wheels, app = folder / "venv", folder / "wheels", folder / "app"
    run(sys.executable, "-m", "venv", venv)
    pip = venv / "bin" / "pip"
    run(pip, "install", "-q", "--upgrade", "pip")
    run(pip, "wheel", "-q", "--no-deps", "--wheel-dir", wheels, ROOT)
    run(pip, "install", "-q", *wheels.glob("payments-*.whl"))
    app.mkdir()
    shutil.copy(ROOT / "alembic.ini", app)
    shutil.copytree(ROOT / "migrations", app / "migrations")
    return app


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    url = create_postgres_database("payments_image", migrate=False)
    yield url
    drop_postgres_database(url)


def test_the_image_commands_work_from_a_plain_venv(image: Path, database: str) -> None:
    payments = str(image.parent / "venv" / "bin" / "payments")
    env = {"PAYMENTS_DATABASE_URL": database, "STRIPE_WEBHOOK_SECRET": "whsec_image"}
    migrate = subprocess.run(
        [payments, "migrate"], cwd=image, env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr
    assert "database schema is up to date" in migrate.stderr

    server = ServerProcess(image, env=env, args=("serve",), executable=payments).start()
    gateway = GatewayProcess(image, env=env, executable=payments)
    worker = PaymentsProcess(image, ("worker",), env, executable=payments)
    try:
        assert "payments.v1.PaymentService" in grpcurl("-plaintext", server.address, "list").stdout
        gateway.start()
        assert http_status(f"{gateway.url}/readyz") == 200
        worker.start(wait=False)
        deadline = time.monotonic() + 30
        while "worker running background jobs" not in worker.log:
            assert worker.process is not None
            assert worker.process.poll() is None, worker.log
            assert time.monotonic() < deadline, worker.log
            time.sleep(0.1)
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.log
    finally:
        assert server.stop() == 0, server.log
        assert gateway.stop() == 0, gateway.log
