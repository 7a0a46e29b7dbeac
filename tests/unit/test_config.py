"""Security settings from the environment: auth, TLS, rate limits, secrets from files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from server.config import ConfigError, Settings, available_cpus

SECRET = "s" * 32


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PAYMENTS_ENV",
        "PAYMENTS_AUTH_JWT_SECRET",
        "PAYMENTS_AUTH_JWT_SECRET_FILE",
        "PAYMENTS_AUTH_JWKS_URL",
        "PAYMENTS_TLS_CERT_FILE",
        "PAYMENTS_TLS_KEY_FILE",
        "PAYMENTS_TLS_CLIENT_CA_FILE",
        "STRIPE_API_KEY",
        "STRIPE_API_KEY_FILE",
        "PAYMENTS_PROVIDER",
        "PAYMENTS_PAGE_TOKEN_KEY",
        "PAYMENTS_PAGE_TOKEN_KEY_FILE",
        "PAYMENTS_RECONCILE_INTERVAL_SECONDS",
        "PAYMENTS_RECONCILE_SCHEDULE_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_outside_development_auth_is_required(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    monkeypatch.setenv("PAYMENTS_ENV", environment)
    with pytest.raises(ConfigError, match="refuses to start without authentication"):
        Settings.from_env().check_serving_security()
    monkeypatch.setenv("PAYMENTS_AUTH_JWKS_URL", "https://sso.example.test/certs")
    with pytest.raises(ConfigError, match="refuses to start without a page-token key"):
        Settings.from_env().check_serving_security()
    monkeypatch.setenv("PAYMENTS_PAGE_TOKEN_KEY", "page-token-key-0123456789abcdef0123")
    Settings.from_env().check_serving_security()


def test_page_token_keys_roll_and_must_be_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_PAGE_TOKEN_KEY", "new-key-0123456789abcdef0123456789, old")
    with pytest.raises(ConfigError, match="PAYMENTS_PAGE_TOKEN_KEY must be at least 32 bytes"):
        Settings.from_env()
    monkeypatch.setenv(
        "PAYMENTS_PAGE_TOKEN_KEY",
        "new-key-0123456789abcdef0123456789, old-key-0123456789abcdef0123456789",
    )
    assert Settings.from_env().page_token_keys == (
        "new-key-0123456789abcdef0123456789",
        "old-key-0123456789abcdef0123456789",
    )


@pytest.mark.parametrize("environment", ["development", "test"])
def test_development_and_test_may_run_open(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    monkeypatch.setenv("PAYMENTS_ENV", environment)
    settings = Settings.from_env()
    settings.check_serving_security()
    assert not settings.auth.enabled


def test_secrets_come_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "jwt").write_text(SECRET + "\n")
    (tmp_path / "stripe").write_text("sk_test_from_file")
    monkeypatch.setenv("PAYMENTS_AUTH_JWT_SECRET_FILE", str(tmp_path / "jwt"))
    monkeypatch.setenv("STRIPE_API_KEY_FILE", str(tmp_path / "stripe"))
    monkeypatch.setenv("PAYMENTS_PROVIDER", "stripe")
    settings = Settings.from_env()
    assert settings.auth.jwt_secret == SECRET
    assert settings.stripe_api_key == "sk_test_from_file"
    assert SECRET not in repr(settings)
    assert "sk_test_from_file" not in repr(settings)


def test_a_secret_and_its_file_together_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "jwt").write_text(SECRET)
    monkeypatch.setenv("PAYMENTS_AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("PAYMENTS_AUTH_JWT_SECRET_FILE", str(tmp_path / "jwt"))
    with pytest.raises(ConfigError, match="not both"):
        Settings.from_env()


def test_an_unreadable_secret_file_names_the_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_AUTH_JWT_SECRET_FILE", "/nonexistent/jwt")
    with pytest.raises(ConfigError, match="/nonexistent/jwt"):
        Settings.from_env()


def test_short_secrets_are_refused_without_being_repeated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYMENTS_AUTH_JWT_SECRET", "tiny-secret-value")
    with pytest.raises(ConfigError) as refused:
        Settings.from_env()
    assert "tiny-secret-value" not in str(refused.value)


def test_tls_needs_certificate_and_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(b"ca")
    monkeypatch.setenv("PAYMENTS_TLS_CLIENT_CA_FILE", str(tmp_path / "ca.pem"))
    with pytest.raises(ConfigError, match="PAYMENTS_TLS_CERT_FILE and PAYMENTS_TLS_KEY_FILE"):
        Settings.from_env()


def test_the_jwks_url_must_be_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_AUTH_JWKS_URL", "file:///etc/passwd")
    with pytest.raises(ConfigError, match="http"):
        Settings.from_env()


def test_the_waiting_policy_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_RECONCILE_SCHEDULE_SECONDS", "1,5,60")
    monkeypatch.setenv("PAYMENTS_STRANDED_AFTER_SECONDS", "30")
    monkeypatch.setenv("PAYMENTS_ABANDONED_AFTER_SECONDS", "3600")
    waiting = Settings.from_env().waiting
    assert waiting.schedule == (timedelta(seconds=1), timedelta(seconds=5), timedelta(minutes=1))
    assert waiting.stranded_after == timedelta(seconds=30)
    assert waiting.expire_after == timedelta(hours=1)


def test_by_default_a_processing_payment_is_first_checked_within_30_seconds() -> None:
    settings = Settings.from_env()
    first = settings.waiting.schedule[0].total_seconds()
    assert first + settings.reconcile_interval_seconds <= 30


@pytest.mark.parametrize("raw", ["abc", "0", "60,5", "-1"])
def test_a_bad_reconcile_schedule_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("PAYMENTS_RECONCILE_SCHEDULE_SECONDS", raw)
    with pytest.raises(ConfigError, match="PAYMENTS_RECONCILE_SCHEDULE_SECONDS"):
        Settings.from_env()


def test_the_mock_provider_is_configured_through_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PAYMENTS_MOCK_LATENCY_MS", "250")
    monkeypatch.setenv("PAYMENTS_MOCK_STORE", str(tmp_path / "mock.sqlite"))
    monkeypatch.setenv("PAYMENTS_MOCK_FAULTS", str(tmp_path / "faults.json"))
    monkeypatch.delenv("PAYMENTS_MOCK_LEDGER", raising=False)
    mock = Settings.from_env().mock
    assert mock.latency_s == 0.25
    assert mock.store == tmp_path / "mock.sqlite"
    assert mock.faults == tmp_path / "faults.json"
    assert mock.ledger is None


@pytest.mark.parametrize("raw", ["slow", "-5"])
def test_a_bad_mock_latency_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("PAYMENTS_MOCK_LATENCY_MS", raw)
    with pytest.raises(ConfigError, match="PAYMENTS_MOCK_LATENCY_MS"):
        Settings.from_env()


def test_one_server_process_where_more_would_do_no_good(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYMENTS_SERVER_PROCESSES", raising=False)
    monkeypatch.delenv("PAYMENTS_MOCK_STORE", raising=False)
    monkeypatch.setenv("PAYMENTS_DATABASE_URL", "sqlite+aiosqlite:///./payments.db")
    settings = Settings.from_env()
    assert settings.server_processes == 1
    assert "SQLite" in settings.one_process_reason
    # On PostgreSQL the mock's payments would still live in one process's memory.
    monkeypatch.setenv("PAYMENTS_DATABASE_URL", "postgresql+asyncpg://app@db/payments")
    settings = Settings.from_env()
    assert settings.server_processes == 1
    assert "mock provider" in settings.one_process_reason
    # Its shared store lifts that: one process per CPU this process may use.
    monkeypatch.setenv("PAYMENTS_MOCK_STORE", "/tmp/mock.sqlite")
    settings = Settings.from_env()
    assert settings.server_processes == available_cpus()
    assert settings.one_process_reason == ""


def test_server_processes_as_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_SERVER_PROCESSES", "3")
    assert Settings.from_env().server_processes == 3
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv("PAYMENTS_SERVER_PROCESSES", bad)
        with pytest.raises(ConfigError, match="PAYMENTS_SERVER_PROCESSES must be auto"):
            Settings.from_env()


def test_available_cpus_follow_a_cgroup_quota(tmp_path: Path) -> None:
    everything = available_cpus(tmp_path)  # no cgroup files: the affinity mask alone
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) == everything
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU still needs a process
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text(f"{(everything + 8) * 100000} 100000\n")
    assert available_cpus(tmp_path) == everything  # a quota cannot add CPUs
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()  # cgroup v1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert available_cpus(tmp_path) == everything
