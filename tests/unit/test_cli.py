"""`payments --help`, `--version` and log formats, without starting anything."""

from __future__ import annotations

import json
import logging
from importlib.metadata import version

import pytest

from server.cli import build_parser, main, text_logs
from server.cli_help import COMMANDS
from server.observability.logs import JsonFormatter, TextFormatter
from tests.support.env_names import env_names_in_code

HELP = {
    "serve": ["serve"],
    "worker": ["worker"],
    "gateway": ["gateway"],
    "webhook send": ["webhook", "send"],
    "webhooks replay": ["webhooks", "replay"],
    "migrate": ["migrate"],
    "token": ["token"],
}


def help_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*argv, "--help"])
    assert exited.value.code == 0
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("key", sorted(HELP))
def test_each_command_says_what_it_does_and_what_it_reads(
    key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_of(HELP[key], capsys)
    command = COMMANDS[key]
    assert " ".join(command.description.split()) in text
    assert "Configuration comes from the environment only" in text
    for name in command.settings:
        assert name in text


def test_the_commands_name_every_variable_the_code_reads_and_no_other() -> None:
    named = {name for command in COMMANDS.values() for name in command.settings}
    assert named == env_names_in_code()


def test_the_top_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of([], capsys)
    for name in ("serve", "worker", "gateway", "webhook", "webhooks", "migrate", "token"):
        assert name in text
    assert "environment variables" in text


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"payments {version('payments')}"


def test_log_format_follows_the_setting_then_the_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYMENTS_LOG_FORMAT", "text")
    assert text_logs()
    monkeypatch.setenv("PAYMENTS_LOG_FORMAT", "json")
    assert not text_logs()
    monkeypatch.setenv("PAYMENTS_LOG_FORMAT", "auto")
    assert not text_logs()  # pytest captures stderr: not a terminal


def test_a_bad_log_format_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PAYMENTS_LOG_FORMAT", "xml")
    assert main(["migrate"]) == 2
    assert "PAYMENTS_LOG_FORMAT must be auto, json or text" in capsys.readouterr().err


def uvicorn_record() -> logging.LogRecord:
    """What uvicorn logs at start: the message, and a coloured copy for its own formatter."""
    return logging.makeLogRecord(
        {
            "name": "uvicorn.error",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)",
            "args": ("http", "127.0.0.1", 8080),
            "color_message": "Uvicorn running on \x1b[1m%s://%s:%d\x1b[0m (Press CTRL+C to quit)",
        }
    )


def test_json_lines_carry_no_ansi_colour_codes() -> None:
    line = JsonFormatter().format(uvicorn_record())
    assert "\x1b" not in line
    assert "\\u001b" not in line
    assert json.loads(line)["message"] == (
        "Uvicorn running on http://127.0.0.1:8080 (Press CTRL+C to quit)"
    )


def test_text_lines_are_masked_like_json_ones() -> None:
    record = logging.makeLogRecord(
        {"levelname": "ERROR", "msg": "bad key sk_test_abcdef123 for card 4242 4242 4242 4242"}
    )
    text = TextFormatter().format(record)
    assert "ERROR" in text
    assert "sk_test_abcdef123" not in text
    assert "4242 4242 4242 4242" not in text
