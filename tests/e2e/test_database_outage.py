"""Readiness follows the database: NOT_SERVING while it is cut off, SERVING once it is back.

Meanwhile a call answers UNAVAILABLE with DATABASE_UNAVAILABLE and a RetryInfo, never INTERNAL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from tests.support.databases import (
    create_postgres_database,
    drop_postgres_database,
    set_postgres_database_reachable,
)
from tests.support.gateway_process import GatewayProcess, http_status
from tests.support.server_process import ServerProcess, grpcurl, health_status

SERVING = int(health_pb2.HealthCheckResponse.SERVING)
NOT_SERVING = int(health_pb2.HealthCheckResponse.NOT_SERVING)
SERVICE = "payments.v1.PaymentService"
NEW_PAYMENT = {
    "request_id": "during-outage",
    "order_id": "order-outage",
    "user_id": "user-1",
    "amount": {"currency_code": "EUR", "minor_units": 1000},
}


def wait_until(condition: Callable[[], bool], what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.1)


@pytest.fixture
def outage_database() -> Iterator[str]:
    """A database of its own, so cutting it off touches nobody else's."""
    url = create_postgres_database("payments_outage")
    yield url
    set_postgres_database_reachable(url, True)
    drop_postgres_database(url)


def test_readiness_follows_a_database_outage(outage_database: str, tmp_path: Path) -> None:
    env = {
        "PAYMENTS_DATABASE_URL": outage_database,
        "PAYMENTS_HEALTH_INTERVAL_SECONDS": "0.2",
        "STRIPE_WEBHOOK_SECRET": "whsec_outage",
    }
    server = ServerProcess(tmp_path, env=env).start()
    gateway = GatewayProcess(tmp_path, env=env)
    try:
        gateway.start()
        readyz = f"{gateway.url}/readyz"
        assert health_status(server.address) == SERVING
        assert health_status(server.address, "payments.database") == SERVING
        assert health_status(server.address, "payments.liveness") == SERVING
        assert http_status(readyz) == 200

        set_postgres_database_reachable(outage_database, False)
        wait_until(lambda: health_status(server.address) == NOT_SERVING, "overall NOT_SERVING")
        assert health_status(server.address, SERVICE) == NOT_SERVING
        assert health_status(server.address, "payments.database") == NOT_SERVING
        create = grpcurl(
            "-plaintext",
            "-d",
            json.dumps(NEW_PAYMENT),
            server.address,
            f"{SERVICE}/CreatePayment",
            check=False,
        )
        answer = (create.stdout + create.stderr).replace(" ", "")
        assert "Code:Unavailable" in answer, answer
        assert '"reason":"DATABASE_UNAVAILABLE"' in answer
        assert "google.rpc.RetryInfo" in answer
        # The Kubernetes liveness probe's entry: the process is alive, do not restart it.
        assert health_status(server.address, "payments.liveness") == SERVING
        probe = grpcurl("-plaintext", server.address, "grpc.health.v1.Health/Check")
        assert '"status": "NOT_SERVING"' in probe.stdout
        wait_until(lambda: http_status(readyz, timeout=5) == 503, "sidecar not ready")
        assert http_status(f"{gateway.url}/healthz") == 200  # alive, just not ready

        set_postgres_database_reachable(outage_database, True)
        wait_until(lambda: health_status(server.address) == SERVING, "overall SERVING again")
        assert health_status(server.address, SERVICE) == SERVING
        assert health_status(server.address, "payments.database") == SERVING
        wait_until(lambda: http_status(readyz, timeout=5) == 200, "sidecar ready again")
    finally:
        assert server.stop() == 0, server.log
        assert gateway.stop() == 0, gateway.log
    assert "database unreachable" in server.log
