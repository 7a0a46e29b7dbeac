"""A real server and sidecar under a short load: metrics scraped, JSON logs, OTLP spans."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import grpc
import httpx
import pytest
from payments.v1 import money_pb2, payments_pb2, payments_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway_process import GatewayProcess
from tests.support.otlp_sink import OtlpSink
from tests.support.server_process import ServerProcess, free_port

STRIPE_KEY = "sk_test_51ObservabilityNeverLogged"
WEBHOOK_SECRET = "whsec_ObservabilityNeverLogged"
CARD = "4242424242424242"
TRACE_IDS = [f"{n:032x}" for n in range(0x5EC0DE01, 0x5EC0DE06)]


def create(n: int, method: str = "pm_card_visa", **fields: object) -> object:
    values: dict[str, object] = {
        "request_id": f"obs-{n}",
        "order_id": f"obs-order-{n}",
        "user_id": "user-obs",
        "amount": money_pb2.Money(currency_code="USD", minor_units=1000 + n),
        "payment_method_id": method,
        "confirm": True,
        **fields,
    }
    return payments_pb2.CreatePaymentRequest(**values)  # type: ignore[arg-type]


def call(stub: payments_pb2_grpc.PaymentServiceStub, request: object, trace_id: str = "") -> None:
    metadata = (("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"),) if trace_id else ()
    with contextlib.suppress(grpc.RpcError):  # the failures are part of the load
        stub.CreatePayment(request, metadata=metadata, timeout=10)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Serve and gateway with metrics and OTLP on, a short load, then both stopped."""
    folder = tmp_path_factory.mktemp("observed")
    server_metrics, gateway_metrics = free_port(), free_port()
    common = {
        "PAYMENTS_DATABASE_URL": "",
        "PAYMENTS_LOG_LEVEL": "DEBUG",
        "STRIPE_API_KEY": STRIPE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    with OtlpSink() as sink:
        common["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.endpoint
        server = ServerProcess(
            folder,
            env={
                **common,
                "PAYMENTS_METRICS_ADDRESS": f"127.0.0.1:{server_metrics}",
                "PAYMENTS_PROVIDER_TIMEOUT_SECONDS": "0.3",
                "PAYMENTS_PROVIDER_ATTEMPTS": "1",
            },
            args=("serve",),
        ).start()
        gateway = GatewayProcess(
            folder, env={**common, "PAYMENTS_METRICS_ADDRESS": f"127.0.0.1:{gateway_metrics}"}
        )
        try:
            gateway.start()
            with grpc.insecure_channel(server.address) as channel:
                stub = payments_pb2_grpc.PaymentServiceStub(channel)
                for n, trace_id in enumerate(TRACE_IDS):
                    call(stub, create(n), trace_id)
                call(stub, create(0))  # replayed
                call(stub, create(10, "pm_card_chargeDeclined"))
                call(stub, create(11, "pm_mock_timeout"))  # UNAVAILABLE after 0.3 s
                call(stub, create(12, amount=money_pb2.Money(currency_code="usd")))
                # Whatever validation says about it, this must never reach a log line.
                call(stub, create(13, description=f"card {CARD}", metadata={"k": STRIPE_KEY}))
            unsigned = httpx.post(
                f"{gateway.url}/webhooks/stripe",
                content=b'{"id": "evt_1", "type": "payment_intent.succeeded"}',
                headers={"Content-Type": "application/json"},
            )
            assert unsigned.status_code == 400
            scraped = {
                "serve": httpx.get(f"http://127.0.0.1:{server_metrics}/metrics").text,
                "gateway": httpx.get(f"http://127.0.0.1:{gateway_metrics}/metrics").text,
            }
        finally:
            assert server.stop() == 0, server.log
            assert gateway.stop() == 0, gateway.log
        yield {"metrics": scraped, "logs": server.log + gateway.log, "sink": sink}


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def value(text: str, name: str, **labels: str) -> float | None:
    """The sum over the samples of `name` that carry `labels`; None when there is none."""
    found = [v for n, ls, v in samples(text) if n == name and labels.items() <= ls.items()]
    return sum(found) if found else None


def test_the_metrics_endpoint_serves_every_listed_metric(observed: dict[str, object]) -> None:
    scraped = observed["metrics"]
    assert isinstance(scraped, dict)
    serve, create_payment = scraped["serve"], "/payments.v1.PaymentService/CreatePayment"
    expected = {
        ("payments_rpc_duration_seconds_count", "OK"): 6,  # five and the replay
        ("payments_rpc_duration_seconds_count", "INVALID_ARGUMENT"): 1,
        ("payments_rpc_duration_seconds_count", "UNAVAILABLE"): 1,
    }
    for (name, code), count in expected.items():
        found = value(serve, name, rpc_method=create_payment, rpc_grpc_status=code)
        assert (found or 0) >= count, (name, code, found)
    assert (value(serve, "payments_payment_outcomes_total", outcome="SUCCEEDED") or 0) >= 5
    assert value(serve, "payments_payment_outcomes_total", outcome="FAILED", provider="mock")
    assert value(serve, "payments_provider_duration_seconds_count", result="ok")
    assert value(serve, "payments_provider_errors_total", provider="mock") == 1
    assert value(serve, "payments_provider_breaker_state", provider="mock") == 0
    assert value(serve, "payments_idempotency_replays_total", method="CreatePayment") == 1
    assert value(serve, "payments_outbox_backlog") is not None
    assert value(serve, "payments_outbox_oldest_age_seconds") is not None
    assert value(serve, "payments_reconciler_outcomes_total", result="unresolved") is not None
    assert value(serve, "payments_database_up") == 1
    intake = value(scraped["gateway"], "payments_webhook_intake_total", result="invalid_signature")
    assert intake == 1


def test_logs_are_json_lines_with_trace_and_payment_ids_and_no_secrets(
    observed: dict[str, object],
) -> None:
    text = observed["logs"]
    assert isinstance(text, str)
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"timestamp", "level", "logger", "message"} <= line.keys() for line in lines)
    traced = [line for line in lines if line.get("trace_id") in TRACE_IDS]
    assert {line["trace_id"] for line in traced} == set(TRACE_IDS)
    assert all(line["span_id"] for line in traced)
    # Lines logged before the payment exists (who called) have none; the rest carry it.
    about_payments = [line for line in traced if "payment_id" in line]
    assert {line["trace_id"] for line in about_payments} == set(TRACE_IDS)
    assert all(line["payment_id"].startswith("pay_") for line in about_payments)
    for secret in (STRIPE_KEY, WEBHOOK_SECRET, CARD):
        assert secret not in text


def test_spans_reach_the_otlp_endpoint_in_the_callers_traces(
    observed: dict[str, object],
) -> None:
    sink = observed["sink"]
    assert isinstance(sink, OtlpSink)
    assert set(TRACE_IDS) <= sink.trace_ids()
    names = {span.name for span in sink.spans if span.trace_id.hex() == TRACE_IDS[0]}
    assert {"payments.v1.PaymentService/CreatePayment", "provider create_payment"} <= names
    assert any(name.startswith(("INSERT", "SELECT", "UPDATE")) for name in names), names
    # The sidecar's request span, for the unsigned webhook.
    assert any(span.name.startswith("POST") for span in sink.spans)
    # Background jobs: a root span per pass; polling (probe, relay, gauges) makes none,
    # so every SQL span has a parent.
    assert any(span.name == "job reconciler" and not span.parent_span_id for span in sink.spans)
    roots = {span.name for span in sink.spans if not span.parent_span_id}
    assert not {name for name in roots if name.startswith(("SELECT", "INSERT", "UPDATE"))}
