"""The sidecar's address and secrets from the environment."""

from __future__ import annotations

import pytest

from gateway.server import bind, bound_address, parse_address
from server.config import ConfigError, Settings


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),  # noqa: S104
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::]:8080", ("::", 8080)),
        ("[::1]:9000", ("::1", 9000)),
        (":8080", ("0.0.0.0", 8080)),  # noqa: S104
    ],
)
def test_parse_address(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["8080", "host:", "host:http", "host:70000", ""])
def test_bad_addresses_are_config_errors(address: str) -> None:
    with pytest.raises(ConfigError, match="PAYMENTS_GATEWAY_ADDRESS"):
        parse_address(address)


def test_port_zero_binds_a_free_port() -> None:
    sock = bind("127.0.0.1:0")
    try:
        host, port = bound_address(sock).rsplit(":", 1)
        assert host == "127.0.0.1"
        assert int(port) > 0
    finally:
        sock.close()


def test_secrets_and_address_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYMENTS_GATEWAY_ADDRESS", raising=False)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", " whsec_new , whsec_old,, ")
    settings = Settings.from_env()
    assert settings.stripe_webhook_secrets == ("whsec_new", "whsec_old")
    assert settings.gateway_address == "0.0.0.0:8080"
    assert "whsec" not in repr(settings)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "")
    monkeypatch.setenv("PAYMENTS_GATEWAY_ADDRESS", "127.0.0.1:9999")
    settings = Settings.from_env()
    assert settings.stripe_webhook_secrets == ()
    assert settings.gateway_address == "127.0.0.1:9999"
