"""The supervisor with stand-in members: tiny real processes that speak the pipe protocol.

The real server as a member is tests/e2e/test_server_processes.py; these show what the
supervisor does when members say things, die, or never start, without paying for a
server's start-up each time.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from server import process_group
from server.process_group import ProcessGroup
from tests.support.polling import until

# Serves at once, writes each line the supervisor sends into heard-INDEX, runs until
# stopped. SIGTERM's default action ends it: the supervisor counts that as clean.
SERVES = """
import sys
print("a line of its own", flush=True)
print("ready 0", flush=True)
with open(sys.argv[1], "a") as heard:
    for line in sys.stdin:
        heard.write(line)
        heard.flush()
"""
DIES_AT_ONCE = "raise SystemExit(3)"
SERVES_THEN_DIES = "print('ready 0', flush=True)"


def members(script: str, folder: Path) -> ProcessGroup:
    return ProcessGroup(
        2, lambda index: [sys.executable, "-c", script, str(folder / f"heard-{index}")], {}
    )


async def test_every_member_hears_the_relay_health_even_one_that_started_later(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group = members(SERVES, tmp_path)
    group.report_events(False)  # before any member runs: each is told once it starts
    group.start()
    await asyncio.wait_for(group.serving.wait(), 30)
    group.report_events(True)

    async def heard_both() -> bool:
        files = [tmp_path / f"heard-{index}" for index in (1, 2)]
        return all(f.exists() and f.read_text() == "events 0\nevents 1\n" for f in files)

    await until(heard_both, within=30)
    assert await group.stop(signal.SIGTERM) == 0
    assert not group.failed.is_set()
    # What a member prints that is not the protocol is passed on, not lost.
    assert capsys.readouterr().out.count("a line of its own") == 2


async def test_a_member_that_dies_before_serving_fails_the_group(tmp_path: Path) -> None:
    group = members(DIES_AT_ONCE, tmp_path)
    group.start()
    await asyncio.wait_for(group.failed.wait(), 30)
    assert await group.stop(signal.SIGTERM) == 1


async def test_members_that_keep_dying_are_restarted_until_it_is_a_crash_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(process_group, "RESTART_DELAY_S", 0.01)
    group = members(SERVES_THEN_DIES, tmp_path)
    group.start()
    await asyncio.wait_for(group.failed.wait(), 60)
    assert await group.stop(signal.SIGTERM) == 1
    restarts = [r for r in caplog.messages if "exited with code 0; starting it again" in r]
    assert len(restarts) == process_group.MAX_DEATHS
    assert any("stopping the group" in message for message in caplog.messages)
