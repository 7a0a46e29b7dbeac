"""payments-client without a server: its service config and request ids."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from grpc import aio
from payments.v1 import payments_pb2, refunds_pb2
from payments_client import (
    PaymentsClient,
    channel_options,
    default_deadlines,
    fill_request_id,
    service_config,
    target_of,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_ships_the_generated_stubs_not_a_copy() -> None:
    link = ROOT / "clients" / "python" / "src" / "payments"
    assert link.is_symlink()
    assert link.resolve() == (ROOT / "generated" / "payments").resolve()


def test_every_method_has_a_deadline_and_the_retry_policy() -> None:
    config = service_config()
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["retryThrottling"]["maxTokens"] > 0
    named = {
        f"{entry['name'][0]['service']}/{entry['name'][0]['method']}": entry
        for entry in config["methodConfig"]
    }
    assert set(named) == set(default_deadlines())
    assert "payments.v1.PaymentService/CreatePayment" in named
    for entry in named.values():
        assert entry["timeout"].endswith("s")
        assert entry["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE", "ABORTED"]


def test_writes_wait_longer_than_reads() -> None:
    deadlines = default_deadlines()
    assert deadlines["payments.v1.PaymentService/CreatePayment"] > 30  # 3 provider tries
    assert deadlines["payments.v1.PaymentService/GetPayment"] < 10


def test_overrides_change_one_method() -> None:
    config = service_config({"payments.v1.PaymentService/GetPayment": 1.5})
    get = next(e for e in config["methodConfig"] if e["name"][0]["method"] == "GetPayment")
    assert get["timeout"] == "1.5s"


def test_channel_options_turn_retries_and_keepalive_on() -> None:
    options = dict(channel_options())
    assert options["grpc.enable_retries"] == 1
    assert int(options["grpc.keepalive_time_ms"]) > 0
    assert json.loads(str(options["grpc.service_config"])) == service_config()


def test_a_request_id_is_made_once_and_kept() -> None:
    request = payments_pb2.CreatePaymentRequest(order_id="o-1")
    made = fill_request_id(request)
    assert made
    assert request.request_id == made
    assert fill_request_id(request) == made  # sending the message again: same operation


def test_a_given_request_id_is_left_alone_and_reads_get_none() -> None:
    assert fill_request_id(refunds_pb2.CreateRefundRequest(request_id="mine")) == "mine"
    assert fill_request_id(payments_pb2.GetPaymentRequest(id="pay_1")) is None


@pytest.mark.parametrize(
    ("address", "target"),
    [
        ("payments.internal:50051", "dns:///payments.internal:50051"),
        ("localhost:50051", "dns:///localhost:50051"),
        ("[::1]:50051", "dns:///[::1]:50051"),
        ("payments.internal", "dns:///payments.internal"),
        ("dns:///payments.internal:50051", "dns:///payments.internal:50051"),
        ("ipv4:10.0.0.1:50051,10.0.0.2:50051", "ipv4:10.0.0.1:50051,10.0.0.2:50051"),
        ("unix:/run/payments.sock", "unix:/run/payments.sock"),
    ],
)
def test_addresses_become_dns_targets(address: str, target: str) -> None:
    assert target_of(address) == target


def test_the_floors_are_the_versions_the_stubs_need() -> None:
    """Stubs refuse an older grpcio or protobuf at import: the package must not allow one."""
    stubs = ROOT / "generated" / "payments" / "v1"
    grpc_needed = re.search(
        r"GRPC_GENERATED_VERSION = '([\d.]+)'", (stubs / "payments_pb2_grpc.py").read_text()
    )
    protobuf_needed = re.search(
        r"Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),", (stubs / "payments_pb2.py").read_text()
    )
    assert grpc_needed is not None
    assert protobuf_needed is not None
    project = tomllib.loads((ROOT / "clients" / "python" / "pyproject.toml").read_text())
    dependencies = project["project"]["dependencies"]
    assert f"grpcio>={grpc_needed.group(1)}" in dependencies
    assert f"protobuf>={'.'.join(protobuf_needed.groups())}" in dependencies


async def test_every_service_in_the_stubs_has_a_stub_on_the_client() -> None:
    # Async: an aio channel needs the running loop (a sync test found none after others).
    services = {name.split("/")[0].rsplit(".", 1)[1] for name in default_deadlines()}
    async with aio.insecure_channel("localhost:1") as channel:
        attributes = list(vars(PaymentsClient(channel)).values())
    stubs = {type(value).__name__.removesuffix("Stub") for value in attributes}
    assert services <= stubs
    assert {"PaymentService", "ReceiptService", "AuditService"} <= services
