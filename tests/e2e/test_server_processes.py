"""`payments serve` as a group of server processes on one port (PAYMENTS_SERVER_PROCESSES=2).

Which process answered a call is read from the group's metrics endpoint, where every
series carries `process`: a channel is one connection, which the kernel gives to one
process, so a call on it moves that process's count. With a channel on each process
the tests can then ask each one in turn.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from payments.v1 import money_pb2, payments_pb2, payments_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.server_process import PAYMENTS, ServerProcess, free_port

MEMBERS = ("1", "2")
BROKER = "amqp://guest:guest@127.0.0.1:5672/"
WITHIN_S = 90.0  # deadlines, not speed checks: member start-up is slow under coverage
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def wait_for(check: Callable[[], bool], what: str, within: float = WITHIN_S) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:.0f} s: {what}")
        time.sleep(0.1)


class Group(ServerProcess):
    """A supervisor and its two members; up once every member has said it serves."""

    def __init__(self, folder: Path, env: dict[str, str], args: tuple[str, ...]) -> None:
        self.metrics_port = free_port()
        group_env = {
            **env,
            "PAYMENTS_SERVER_PROCESSES": str(len(MEMBERS)),
            "PAYMENTS_METRICS_ADDRESS": f"127.0.0.1:{self.metrics_port}",
        }
        super().__init__(folder, group_env, args)

    def ready(self) -> bool:
        return "with 2 processes" in self.log

    def member_pids(self) -> dict[str, int]:
        """Each member's pid, the newest one when it was started again."""
        found = re.findall(r"server process (\d+) serving \(pid (\d+)\)", self.log)
        return {index: int(pid) for index, pid in found}

    def calls_by_process(self) -> Counter[str]:
        return self._sum_by_process("payments_rpc_duration_seconds_count")

    def _sum_by_process(self, sample_name: str) -> Counter[str]:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
        counts: Counter[str] = Counter()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == sample_name:
                    counts[sample.labels["process"]] += int(sample.value)
        return counts

    def published_by_process(self) -> Counter[str]:
        return self._sum_by_process("payments_outbox_published_total")


def call_anything(channel: grpc.Channel) -> None:
    """A call every process answers and counts: a payment that does not exist."""
    stub = payments_pb2_grpc.PaymentServiceStub(channel)
    with pytest.raises(grpc.RpcError):
        stub.GetPayment(payments_pb2.GetPaymentRequest(id="pay_none"), timeout=10)


def channel_on_each_process(group: Group) -> dict[str, grpc.Channel]:
    """New connections until one has landed on each member, told by the metrics."""
    found: dict[str, grpc.Channel] = {}
    deadline = time.monotonic() + WITHIN_S
    while set(found) != set(MEMBERS):
        assert time.monotonic() < deadline, f"connections landed only on {sorted(found)}"
        # A channel of its own, not one from grpc's process-wide pool: a new connection.
        channel = grpc.insecure_channel(group.address, [("grpc.use_local_subchannel_pool", 1)])
        before = group.calls_by_process()
        call_anything(channel)
        wait_for(partial(counted_beyond, group, before.total()), "the call counted")
        (landed,) = (group.calls_by_process() - before).keys()
        if landed in found:
            channel.close()
        else:
            found[landed] = channel
    return found


def counted_beyond(group: Group, total: int) -> bool:
    return group.calls_by_process().total() > total


def says(channel: grpc.Channel, status: int, service: str = "") -> Callable[[], bool]:
    return lambda: health(channel, service) == status


def health(channel: grpc.Channel, service: str = "") -> int | None:
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    except grpc.RpcError:
        return None
    return int(reply.status)


def gone(pid: int) -> bool:
    """No such process, or a zombie nobody has reaped yet: either way it serves nothing."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


def payment(user: str) -> payments_pb2.CreatePaymentRequest:
    return payments_pb2.CreatePaymentRequest(
        request_id=f"group-{uuid.uuid4().hex[:12]}",
        order_id=f"group-order-{uuid.uuid4().hex[:12]}",
        user_id=user,
        amount=money_pb2.Money(currency_code="USD", minor_units=1250),
        payment_method_id="pm_card_visa",
        confirm=True,
    )


@pytest.fixture
def database_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    url = create_postgres_database("payments_group")
    # The mock keeps its payments in a file every process shares, as Stripe would.
    yield {"PAYMENTS_DATABASE_URL": url, "PAYMENTS_MOCK_STORE": str(tmp_path / "mock.sqlite")}
    drop_postgres_database(url)


@pytest.fixture
def start_group(tmp_path: Path, database_env: dict[str, str]) -> Iterator[Callable[..., Group]]:
    groups: list[Group] = []

    def start(args: tuple[str, ...] = ("serve", "--no-jobs"), **env: str) -> Group:
        group = Group(tmp_path, {**database_env, **env}, args)
        groups.append(group)
        return group.start()

    yield start
    for group in groups:
        group.stop()


def test_two_processes_serve_one_port_and_the_jobs_run_once(
    start_group: Callable[..., Group],
) -> None:
    group = start_group(("serve",), PAYMENTS_BROKER_URL=BROKER)
    pids = group.member_pids()
    assert sorted(pids) == list(MEMBERS)
    assert len(set(pids.values()) | {group.process.pid if group.process else 0}) == 3
    channels = channel_on_each_process(group)
    # Both answer health, and both report the relay's health, which runs in the supervisor.
    for channel in channels.values():
        assert health(channel) == SERVING
        wait_for(says(channel, SERVING, "payments.events"), "payments.events")
    # The jobs run in the supervisor alone: its relay publishes what a member stored.
    stub = payments_pb2_grpc.PaymentServiceStub(channels["2"])
    made = stub.CreatePayment(payment("user-group"), timeout=30)
    assert made.state == payments_pb2.PAYMENT_STATE_SUCCEEDED
    wait_for(lambda: group.published_by_process()["supervisor"] >= 2, "events published")
    assert set(group.published_by_process()) == {"supervisor"}
    assert group.log.count("jobs=on") == 1
    assert group.log.count("jobs=off") == len(MEMBERS)
    for channel in channels.values():
        channel.close()
    assert group.stop() == 0, group.log


def test_sigterm_drains_every_process(start_group: Callable[..., Group]) -> None:
    # Each held payment waits 2 x 2.5 s at the mock (create, confirm): past the 2 s drain,
    # well inside the 10 s grace that follows it.
    group = start_group(PAYMENTS_DRAIN_SECONDS="2", PAYMENTS_MOCK_LATENCY_MS="2500")
    channels = channel_on_each_process(group)
    held = {
        name: payments_pb2_grpc.PaymentServiceStub(channel).CreatePayment.future(
            payment("user-drain"), timeout=60
        )
        for name, channel in channels.items()
    }
    lister = payments_pb2_grpc.PaymentServiceStub(channels["1"])
    listing = payments_pb2.ListPaymentsRequest(filter='user_id = "user-drain"')
    wait_for(lambda: len(lister.ListPayments(listing, timeout=10).payments) == 2, "both held")

    group.signal(signal.SIGTERM)
    for channel in channels.values():  # every process says NOT_SERVING at once...
        wait_for(says(channel, NOT_SERVING), "NOT_SERVING while draining")
    for channel in channels.values():  # ...then refuses new calls...
        stub = payments_pb2_grpc.PaymentServiceStub(channel)

        def refused(stub: payments_pb2_grpc.PaymentServiceStub = stub) -> bool:
            try:
                stub.GetPayment(payments_pb2.GetPaymentRequest(id="pay_none"), timeout=5)
            except grpc.RpcError as error:
                return error.code() == grpc.StatusCode.UNAVAILABLE
            return False

        wait_for(refused, "new calls refused")
    for call in held.values():  # ...and lets the calls in flight finish.
        assert call.result().state == payments_pb2.PAYMENT_STATE_SUCCEEDED
    assert group.wait(60) == 0, group.log
    assert group.log.count("draining: NOT_SERVING for 2.0 s") == len(MEMBERS)
    assert group.log.rstrip().endswith('"message": "stopped"}')


def test_a_member_that_dies_is_started_again(start_group: Callable[..., Group]) -> None:
    group = start_group()
    first = group.member_pids()
    os.kill(first["1"], signal.SIGKILL)
    wait_for(lambda: group.member_pids().get("1") not in (None, first["1"]), "member 1 again")
    assert "server process 1 exited with signal SIGKILL; starting it again" in group.log
    assert group.member_pids()["2"] == first["2"]
    channels = channel_on_each_process(group)  # the new one serves too
    for channel in channels.values():
        assert health(channel) == SERVING
        channel.close()
    assert group.stop() == 0, group.log


def test_killing_the_supervisor_leaves_no_member_serving(
    start_group: Callable[..., Group],
) -> None:
    group = start_group()
    pids = group.member_pids()
    group.signal(signal.SIGKILL)
    group.wait(30)
    for pid in pids.values():
        wait_for(partial(gone, pid), f"member {pid} gone")
    with grpc.insecure_channel(group.address) as channel:
        assert health(channel) is None


def test_a_port_in_use_is_refused_not_shared(tmp_path: Path, database_env: dict[str, str]) -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        address = f"127.0.0.1:{stranger.getsockname()[1]}"
        env = {
            **os.environ,
            **database_env,
            "PAYMENTS_SERVER_PROCESSES": "2",
            "PAYMENTS_GRPC_ADDRESS": address,
        }
        refused = subprocess.run(
            [PAYMENTS, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert refused.returncode == 2
    assert f"cannot listen on {address}" in refused.stderr
    assert "server process" not in refused.stderr  # no member was started
