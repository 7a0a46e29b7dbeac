"""Reads off the primary: a server with PAYMENTS_DATABASE_REPLICA_URL on a real streaming replica.

While the replica's replay is paused, what it answers is frozen: lists and analytics
(sent to the replica) miss a new payment, GetPayment (kept on the primary) finds it.
Once replay resumes, the lists catch up.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from payments.v1 import (
    analytics_pb2,
    analytics_pb2_grpc,
    money_pb2,
    payments_pb2,
    payments_pb2_grpc,
)

from server.adapters.db.migrations import upgrade
from tests.support.postgres_cluster import PostgresCluster, replica_of
from tests.support.server_process import ServerProcess

USER = "replica-user"


def psql(cluster: PostgresCluster, sql: str) -> str:
    command = ["psql", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-tAc", sql]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def wait_until(condition: Callable[[], bool], what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.1)


def on(cluster: PostgresCluster, database: str) -> str:
    return cluster.url.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[PostgresCluster, PostgresCluster]]:
    """A private primary and its streaming replica, each on its own port."""
    primary = PostgresCluster().init().start()
    replica = None
    try:
        psql(primary, "CREATE DATABASE payments")
        upgrade(on(primary, "payments"))
        replica = replica_of(primary)
        yield primary, replica
    finally:
        if replica is not None:
            replica.remove()
        primary.remove()


def create_payment(stub: payments_pb2_grpc.PaymentServiceStub) -> str:
    payment = stub.CreatePayment(
        payments_pb2.CreatePaymentRequest(
            request_id=f"replica-{uuid.uuid4().hex}",
            order_id=f"order-{uuid.uuid4().hex[:12]}",
            user_id=USER,
            amount=money_pb2.Money(currency_code="EUR", minor_units=700),
            payment_method_id="pm_card_visa",
            confirm=True,
        ),
        timeout=10,
    )
    return str(payment.id)


def test_lists_and_analytics_read_the_replica_and_gets_the_primary(
    clusters: tuple[PostgresCluster, PostgresCluster], tmp_path: Path
) -> None:
    primary, replica = clusters
    env = {
        "PAYMENTS_DATABASE_URL": on(primary, "payments"),
        "PAYMENTS_DATABASE_REPLICA_URL": on(replica, "payments"),
    }
    server = ServerProcess(tmp_path, args=("serve", "--no-jobs"), env=env).start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            payments = payments_pb2_grpc.PaymentServiceStub(channel)
            analytics = analytics_pb2_grpc.AnalyticsServiceStub(channel)
            start = Timestamp(seconds=int(time.time()) - 3600)
            end = Timestamp(seconds=int(time.time()) + 3600)

            def listed() -> set[str]:
                request = payments_pb2.ListPaymentsRequest(filter=f'user_id = "{USER}"')
                return {p.id for p in payments.ListPayments(request, timeout=10).payments}

            def counted() -> int:
                request = analytics_pb2.GetPaymentStatsRequest(start_time=start, end_time=end)
                stats = analytics.GetPaymentStats(request, timeout=10)
                return sum(c.figures.payment_count for c in stats.currencies)

            first = create_payment(payments)
            wait_until(lambda: first in listed(), "the replica shows the first payment")
            assert counted() == 1

            psql(replica, "SELECT pg_wal_replay_pause()")
            wait_until(
                lambda: psql(replica, "SELECT pg_get_wal_replay_pause_state()") == "paused",
                "replay paused",
            )
            second = create_payment(payments)
            # Read-your-writes: the caller's own payment, from the primary.
            assert payments.GetPayment(payments_pb2.GetPaymentRequest(id=second)).id == second
            # The replica is frozen before the second payment: lists and analytics lag.
            assert listed() == {first}
            assert counted() == 1

            psql(replica, "SELECT pg_wal_replay_resume()")
            wait_until(lambda: listed() == {first, second}, "the replica catches up")
            assert counted() == 2
    finally:
        assert server.stop() == 0, server.log
