"""The fault suite's world: private PostgreSQL, Redis and RabbitMQ, a server and a worker.

Everything runs as real processes on ports of its own, so every piece can be
killed without touching the machine's shared services or another test.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.postgres_cluster import PostgresCluster
from tests.support.rabbitmq_node import RabbitNode
from tests.support.redis_server import RedisServer
from tests.support.server_process import PAYMENTS, PaymentsProcess, ServerProcess


class WorkerProcess(PaymentsProcess):
    """`payments worker`, up once this start said its jobs run (the log spans restarts)."""

    kind = "worker"
    _MARK = "worker running background jobs"
    _seen = 0

    def start(self, wait: bool = True) -> WorkerProcess:
        self._seen = self.log.count(self._MARK)
        super().start(wait)
        return self

    def ready(self) -> bool:
        return self.log.count(self._MARK) > self._seen


def service_env(folder: Path, database_url: str, broker_url: str, redis_url: str) -> dict[str, str]:
    """Short schedules, so that what a fault leaves behind settles within seconds."""
    return {
        "PAYMENTS_ENV": "test",
        "PAYMENTS_DATABASE_URL": database_url,
        "PAYMENTS_BROKER_URL": broker_url,
        "PAYMENTS_REDIS_URL": redis_url,
        # Rate limiting on, through Redis, but never the limit: Redis is on the path.
        "PAYMENTS_RATE_LIMIT_PER_SECOND": "100000",
        "PAYMENTS_MOCK_STORE": str(folder / "mock.sqlite"),
        "PAYMENTS_MOCK_LATENCY_MS": "20",
        "PAYMENTS_IDEMPOTENCY_LEASE_SECONDS": "2",
        "PAYMENTS_RECONCILE_INTERVAL_SECONDS": "1",
        "PAYMENTS_RECONCILE_SCHEDULE_SECONDS": "1,2,5",
        "PAYMENTS_STRANDED_AFTER_SECONDS": "6",
        "PAYMENTS_HEALTH_INTERVAL_SECONDS": "0.5",
        "PAYMENTS_PROVIDER_TIMEOUT_SECONDS": "2",
        "PAYMENTS_DRAIN_SECONDS": "0",
    }


@dataclass
class Fault:
    """One injected fault: what, and when it started and ended (monotonic seconds)."""

    kind: str
    started: float
    ended: float = 0.0


@dataclass
class World:
    folder: Path
    postgres: PostgresCluster
    redis: RedisServer
    rabbit: RabbitNode
    server: ServerProcess
    worker: WorkerProcess
    faults: list[Fault] = field(default_factory=list)

    @classmethod
    def start(cls, folder: Path) -> World:
        """Everything up, or (if any piece fails to start) everything started so far down."""
        started: list[Callable[[], object]] = []
        try:
            postgres = PostgresCluster().init()
            started.append(postgres.remove)
            postgres.start()
            redis = RedisServer(folder)
            started.append(redis.stop)
            redis.start()
            (folder / "rabbit").mkdir()
            rabbit = RabbitNode(folder / "rabbit")
            started.append(rabbit.stop)
            rabbit.start()
            env = service_env(folder, postgres.url, rabbit.url, redis.url)
            subprocess.run(
                [PAYMENTS, "migrate"], env={**env, "PATH": "/usr/bin:/bin"}, check=True, timeout=120
            )
            server = ServerProcess(folder, env, args=("serve",))
            worker = WorkerProcess(folder, ("worker",), env)
            started += [server.stop, worker.stop]
            server.start(wait=False)
            worker.start(wait=False)
            server.wait_ready(60)
            worker.wait_ready(60)
        except BaseException:
            for stop in reversed(started):
                stop()
            raise
        return cls(folder, postgres, redis, rabbit, server, worker)

    def stop(self) -> None:
        for process in (self.server, self.worker):
            process.stop()
        self.rabbit.stop()
        self.redis.stop()
        self.postgres.remove()

    @property
    def mock_store(self) -> Path:
        return self.folder / "mock.sqlite"

    def _record(self, kind: str, started: float) -> None:
        self.faults.append(Fault(kind, started, time.monotonic()))

    def kill_server(self) -> None:
        started = time.monotonic()
        self.server.signal(signal.SIGKILL)
        self.server.wait(30)
        self.server.start(wait=False)
        self.server.wait_ready(60)
        self._record("server SIGKILL", started)

    def kill_worker(self) -> None:
        started = time.monotonic()
        self.worker.signal(signal.SIGKILL)
        self.worker.wait(30)
        self.worker.start(wait=False)
        self.worker.wait_ready(60)
        self._record("worker SIGKILL", started)

    def kill_postgres(self, down_for: float) -> None:
        started = time.monotonic()
        self.postgres.kill()
        time.sleep(down_for)  # the outage itself: how long the database stays away
        self.postgres.start()
        self._record(f"PostgreSQL SIGKILL, down {down_for:.0f} s", started)

    def bounce_redis(self, down_for: float) -> None:
        started = time.monotonic()
        self.redis.stop()
        time.sleep(down_for)  # the outage itself
        self.redis.start()
        self._record(f"Redis stopped {down_for:.0f} s", started)

    def kill_rabbit(self) -> None:
        started = time.monotonic()
        self.rabbit.kill()
        self.rabbit.start()
        self._record("RabbitMQ SIGKILL and restart", started)
