"""PAYMENTS_DUNNING_DAYS and PAYMENTS_RENEWAL_INTERVAL_SECONDS."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.config import ConfigError, Settings


def test_defaults_retry_after_one_three_and_five_days(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYMENTS_DUNNING_DAYS", raising=False)
    settings = Settings.from_env()
    assert settings.dunning == (timedelta(days=1), timedelta(days=3), timedelta(days=5))
    assert settings.renewal_interval_seconds == 60


def test_the_schedule_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_DUNNING_DAYS", "2, 4,7")
    monkeypatch.setenv("PAYMENTS_RENEWAL_INTERVAL_SECONDS", "5")
    settings = Settings.from_env()
    assert settings.dunning == (timedelta(days=2), timedelta(days=4), timedelta(days=7))
    assert settings.renewal_interval_seconds == 5
    monkeypatch.setenv("PAYMENTS_DUNNING_DAYS", "")
    assert Settings.from_env().dunning == ()


@pytest.mark.parametrize("raw", ["1,x", "3,1", "0,2", "1,1", "-1"])
def test_a_bad_schedule_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("PAYMENTS_DUNNING_DAYS", raw)
    with pytest.raises(ConfigError, match="PAYMENTS_DUNNING_DAYS"):
        Settings.from_env()
