"""Which span exporter the OTEL_* variables choose: none unless asked."""

from __future__ import annotations

import socket

import pytest

from server.config import ConfigError
from server.observability.metrics import configure_metrics, metrics_address
from server.observability.tracing import exporter_name


def test_no_exporter_by_default() -> None:
    assert exporter_name({}) == "none"


def test_an_otlp_endpoint_means_otlp() -> None:
    assert exporter_name({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) == "otlp"
    assert exporter_name({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}) == (
        "otlp"
    )


def test_the_exporter_variable_wins() -> None:
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    assert exporter_name(env) == "none"
    assert exporter_name({"OTEL_TRACES_EXPORTER": "Console"}) == "console"


def test_an_unknown_exporter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="OTEL_TRACES_EXPORTER"):
        exporter_name({"OTEL_TRACES_EXPORTER": "jaeger"})


def test_metrics_address() -> None:
    assert metrics_address({}) is None
    every_interface = "0.0.0.0"  # noqa: S104
    assert metrics_address({"PAYMENTS_METRICS_ADDRESS": "127.0.0.1:9464"}) == ("127.0.0.1", 9464)
    assert metrics_address({"PAYMENTS_METRICS_ADDRESS": ":9464"}) == (every_interface, 9464)
    with pytest.raises(ConfigError, match="PAYMENTS_METRICS_ADDRESS"):
        metrics_address({"PAYMENTS_METRICS_ADDRESS": "9464"})


def test_a_taken_metrics_port_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="PAYMENTS_METRICS_ADDRESS"):
            configure_metrics("test", {"PAYMENTS_METRICS_ADDRESS": f"127.0.0.1:{port}"})
