"""With PAYMENTS_REDIS_URL set, the `payments.redis` health entry follows Redis.

A private redis-server on a free port is stopped and started again (the shared
one on 6379 serves other tests). Overall readiness stays SERVING: without Redis
each instance limits rates on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from server.grpc.app import REDIS_HEALTH
from tests.support.redis_server import RedisServer
from tests.support.server_process import ServerProcess, health_status

SERVING = int(health_pb2.HealthCheckResponse.SERVING)
NOT_SERVING = int(health_pb2.HealthCheckResponse.NOT_SERVING)


def wait_until(condition: Callable[[], bool], what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.1)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_health_follows_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    server = ServerProcess(
        tmp_path,
        env={
            "PAYMENTS_DATABASE_URL": "",
            "PAYMENTS_REDIS_URL": redis_server.url,
            "PAYMENTS_HEALTH_INTERVAL_SECONDS": "0.2",
        },
    ).start()
    try:

        def redis_is(status: int) -> Callable[[], bool]:
            return lambda: health_status(server.address, REDIS_HEALTH) == status

        wait_until(redis_is(SERVING), "payments.redis SERVING")
        redis_server.stop()
        wait_until(redis_is(NOT_SERVING), "payments.redis NOT_SERVING while Redis is down")
        assert health_status(server.address) == SERVING
        redis_server.start()
        wait_until(redis_is(SERVING), "payments.redis SERVING again")
    finally:
        assert server.stop() == 0, server.log
