"""Start-up and shutdown of the real process: zero configuration, schema check, drain."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from grpc_health.v1 import health_pb2

from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.server_process import PAYMENTS, ServerProcess, health_status


def test_zero_configuration_creates_the_sqlite_database(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, env={"PAYMENTS_DATABASE_URL": ""}).start()
    try:
        assert (tmp_path / "payments.db").exists()
    finally:
        assert server.stop() == 0
    # A second start finds the schema current and serves again.
    again = ServerProcess(tmp_path, env={"PAYMENTS_DATABASE_URL": ""}).start()
    assert again.stop() == 0


def test_sigterm_reports_not_serving_while_draining(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path, env={"PAYMENTS_DATABASE_URL": "", "PAYMENTS_DRAIN_SECONDS": "3"}
    ).start()
    server.signal(signal.SIGTERM)
    seen = set()
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        seen.add(health_status(server.address, timeout=0.5))
        seen.add(health_status(server.address, "payments.v1.PaymentService", timeout=0.5))
        if seen == {health_pb2.HealthCheckResponse.NOT_SERVING}:
            break
        time.sleep(0.1)
    assert health_pb2.HealthCheckResponse.NOT_SERVING in seen
    assert server.wait() == 0
    assert "draining" in server.log


def test_postgres_schema_must_be_migrated_first(tmp_path: Path) -> None:
    url = create_postgres_database("payments_unmigrated", migrate=False)
    env = {"PAYMENTS_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    try:
        refused = subprocess.run(
            [PAYMENTS, "serve"], env=env, capture_output=True, text=True, timeout=30, check=False
        )
        assert refused.returncode == 2
        assert "run `payments migrate`" in refused.stderr
        subprocess.run([PAYMENTS, "migrate"], env=env, check=True, capture_output=True)
        served = ServerProcess(tmp_path, env={"PAYMENTS_DATABASE_URL": url}).start()
        assert served.stop() == 0
    finally:
        drop_postgres_database(url)


def test_bad_configuration_exits_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [PAYMENTS, "serve"],
        env={"PAYMENTS_ENV": "prod", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "PAYMENTS_ENV must be one of" in result.stderr
