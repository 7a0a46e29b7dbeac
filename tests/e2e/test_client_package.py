"""The payments-client distribution against real server processes.

One test installs it alone into a fresh venv (no server dependencies) and calls a
server; the other kills a server in the middle of a CreatePayment and starts it again
on the same port: gRPC's own retry resends the same request_id and one payment is stored.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import venv
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import grpc
import pytest
from payments.v1 import money_pb2, payments_pb2
from payments_client import PaymentsClient, RetryPolicy, connect, error_info

from tests.support.auth import AUDIENCE, ISSUER, JWT_SECRET, hs256_token
from tests.support.polling import until
from tests.support.server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"
SERVER_ONLY = ("sqlalchemy", "stripe", "uvicorn", "starlette", "aio-pika", "alembic", "redis")

CALLER = """
import asyncio, sys
from payments.v1 import money_pb2, payments_pb2
from payments_client import PaymentsClient, connect

async def main() -> None:
    async with PaymentsClient(connect(sys.argv[1])) as client:
        request = payments_pb2.CreatePaymentRequest(
            order_id="fresh-venv-order", user_id="user-1", confirm=True,
            amount=money_pb2.Money(currency_code="USD", minor_units=1234),
            payment_method_id="pm_card_visa",
        )
        payment = await client.payments.CreatePayment(request)
        again = await client.payments.GetPayment(payments_pb2.GetPaymentRequest(id=payment.id))
        print(request.request_id, payments_pb2.PaymentState.Name(again.state))

asyncio.run(main())
"""


def test_installs_alone_and_calls_a_server(sqlite_server: ServerProcess, tmp_path: Path) -> None:
    # A copy, so that the in-tree build writes nothing into the repository; copying
    # follows src/payments, the link to generated/payments.
    source = tmp_path / "client"
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    venv.create(tmp_path / "venv", with_pip=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(source)],
        check=True,
        timeout=300,
    )
    installed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.lower()
    assert "payments-client==" in installed
    assert [name for name in SERVER_ONLY if f"{name}==" in installed] == []
    script = tmp_path / "caller.py"
    script.write_text(CALLER)
    result = subprocess.run(
        [python, str(script), sqlite_server.address],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    request_id, state = result.stdout.split()
    assert len(request_id) == 36  # made for the caller: a UUID
    assert state == "PAYMENT_STATE_SUCCEEDED"


def visa_payment(order_id: str, minor_units: int) -> payments_pb2.CreatePaymentRequest:
    """A request without a request_id: the client package makes one."""
    return payments_pb2.CreatePaymentRequest(
        order_id=order_id,
        user_id="user-1",
        confirm=True,
        amount=money_pb2.Money(currency_code="USD", minor_units=minor_units),
        payment_method_id="pm_card_visa",
    )


def payments_stored(database: Path) -> int:
    with closing(sqlite3.connect(database)) as connection:
        (count,) = connection.execute("SELECT count(*) FROM payments").fetchone()
    return int(count)


@pytest.fixture
def slow_server(tmp_path: Path) -> ServerProcess:
    """A server whose mock provider takes 1.5 s, so a call can be caught in flight."""
    env = {
        "PAYMENTS_DATABASE_URL": "",
        "PAYMENTS_MOCK_LATENCY_MS": "1500",
        "PAYMENTS_MOCK_LEDGER": str(tmp_path / "ledger.jsonl"),
        "PAYMENTS_IDEMPOTENCY_LEASE_SECONDS": "1",
    }
    return ServerProcess(tmp_path, env=env)


async def test_a_retry_across_a_server_restart_stores_one_payment(
    slow_server: ServerProcess, tmp_path: Path
) -> None:
    server = slow_server.start()
    database = tmp_path / "payments.db"
    request = visa_payment("restart-order", 4200)
    try:
        # A restart on a busy machine can take long: the deadline is not what is tested.
        patient = {"payments.v1.PaymentService/CreatePayment": 120.0}
        channel = connect(server.address, retry=RetryPolicy(), deadlines=patient)
        async with PaymentsClient(channel) as client:

            async def create() -> payments_pb2.Payment:
                return await client.payments.CreatePayment(request)

            call = asyncio.create_task(create())

            async def stored() -> bool:
                return payments_stored(database) == 1

            # The attempt is persisted before the provider is asked: kill it right then.
            await until(stored, within=20, every=0.05)
            assert not call.done()
            request_id = request.request_id
            assert request_id, "the helper wrote the request_id into the message"
            assert server.process is not None
            server.process.kill()
            server.wait()
            server.start()  # same port, same database
            payment = await call
    finally:
        server.stop()
    assert payment.state == payments_pb2.PAYMENT_STATE_SUCCEEDED
    assert request.request_id == request_id
    assert payments_stored(database) == 1
    charges = (tmp_path / "ledger.jsonl").read_text().splitlines()
    assert len(charges) == 1, charges


EXAMPLE = ROOT / "examples" / "checkout" / "checkout.py"


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        "PAYMENTS_DATABASE_URL": "",
        "PAYMENTS_AUTH_JWT_SECRET": JWT_SECRET,
        "PAYMENTS_AUTH_ISSUER": ISSUER,
        "PAYMENTS_AUTH_AUDIENCE": AUDIENCE,
    }
    server = ServerProcess(tmp_path, env=env).start()
    yield server
    assert server.stop() == 0, server.log


async def test_the_token_callback_is_asked_before_every_call(auth_server: ServerProcess) -> None:
    asked: list[str] = []

    async def token() -> str:
        asked.append("token")
        return hs256_token("checkout", ("service",))

    request = visa_payment("token-order", 700)
    async with PaymentsClient(connect(auth_server.address, token=token)) as client:
        created = await client.payments.CreatePayment(request)
        read = await client.payments.GetPayment(payments_pb2.GetPaymentRequest(id=created.id))
    assert read.id == created.id
    assert asked == ["token", "token"]
    async with PaymentsClient(connect(auth_server.address)) as anonymous:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await anonymous.payments.GetPayment(payments_pb2.GetPaymentRequest(id=created.id))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = error_info(refused.value)
    assert info is not None
    assert info.reason == "UNAUTHENTICATED"
    assert info.domain == "payments.v1"


def test_the_example_checkout_charges_an_order_once(auth_server: ServerProcess) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(CLIENT / "src"),
        "PAYMENTS_TOKEN": hs256_token("checkout", ("service",)),
    }
    runs = [
        subprocess.run(
            [sys.executable, str(EXAMPLE), auth_server.address, "order-1001", "1999", "USD"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
    first, second = (run.stdout.split() for run in runs)
    assert first == second  # the same payment: the request_id comes from the order
    assert first[1] == "PAYMENT_STATE_SUCCEEDED"


async def test_calls_spread_over_every_address(tmp_path: Path) -> None:
    """round_robin: two servers behind one target both get calls (pick_first would not)."""
    folders = [tmp_path / "a", tmp_path / "b"]
    servers = []
    for folder in folders:
        folder.mkdir()
        servers.append(ServerProcess(folder, env={"PAYMENTS_DATABASE_URL": ""}).start())
    target = "ipv4:" + ",".join(server.address for server in servers)
    try:
        async with PaymentsClient(connect(target)) as client:
            for n in range(50):
                await client.payments.CreatePayment(visa_payment(f"spread-{n}", 100))
                counts = [payments_stored(folder / "payments.db") for folder in folders]
                if all(counts):
                    break
    finally:
        for server in servers:
            server.stop()
    assert all(counts), counts
