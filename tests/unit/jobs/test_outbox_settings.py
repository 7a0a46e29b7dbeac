"""The relay's settings from the environment."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.config import ConfigError, Settings


def test_broker_off_and_72_hours_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYMENTS_BROKER_URL", raising=False)
    monkeypatch.delenv("PAYMENTS_OUTBOX_RETENTION_HOURS", raising=False)
    settings = Settings.from_env()
    assert settings.broker_url is None
    assert settings.outbox_retention == timedelta(hours=72)


def test_broker_url_and_retention(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
    monkeypatch.setenv("PAYMENTS_OUTBOX_RETENTION_HOURS", "6")
    settings = Settings.from_env()
    assert settings.broker_url == "amqp://guest:guest@127.0.0.1:5672/"
    assert "guest" not in repr(settings)
    assert settings.outbox_retention == timedelta(hours=6)


def test_retention_below_an_hour_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_OUTBOX_RETENTION_HOURS", "0.5")
    with pytest.raises(ConfigError, match="PAYMENTS_OUTBOX_RETENTION_HOURS"):
        Settings.from_env()
