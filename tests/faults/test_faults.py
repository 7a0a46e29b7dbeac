"""The fault suite: real processes under load while their dependencies die and come back.

Clients retry every call with the same request_id (as the runbook tells them);
meanwhile the server (jobs on) and the worker are SIGKILLed, a private
PostgreSQL is killed and kept down, and private Redis and RabbitMQ are stopped
and started. After a settle time the money invariants are read from the
database and the mock provider's durable ledger. `make test` runs the short
form; `make faults` (PAYMENTS_FAULT_SUITE=full) the long one, which prints the
figures docs/operations.md keeps.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.clients import Client, Tally
from tests.faults.environment import World
from tests.faults.invariants import check, settled, snapshot


@dataclass(frozen=True)
class Profile:
    clients: int
    cycles: int
    postgres_down_s: float
    # Successful calls between two faults: the load goes on between them.
    calls_between: int
    settle_within_s: float = 90.0


PROFILES = {
    "short": Profile(clients=4, cycles=1, postgres_down_s=3, calls_between=15),
    "full": Profile(clients=8, cycles=4, postgres_down_s=5, calls_between=60),
}
PROFILE = PROFILES[os.environ.get("PAYMENTS_FAULT_SUITE", "short")]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    started = World.start(tmp_path)
    yield started
    started.stop()


def wait_for_calls(tally: Tally, count: int, within: float = 120.0) -> None:
    """Until `count` more calls succeeded: the service is back and under load again."""
    with tally.lock:
        target = len(tally.successes) + count
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with tally.lock:
            if len(tally.successes) >= target:
                return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} calls succeeded within {within} s")


def first_success_after(tally: Tally, moment: float) -> float | None:
    later = [t for t in tally.successes if t >= moment]
    return min(later) - moment if later else None


def test_the_money_holds_through_crashes_and_outages(world: World) -> None:
    profile = PROFILE
    tally, stop = Tally(), threading.Event()
    clients = [
        Client(n, world.server.address, f"run{int(time.time())}", tally, stop)
        for n in range(profile.clients)
    ]
    began = time.monotonic()
    for client in clients:
        client.start()
    wait_for_calls(tally, profile.calls_between)
    for _ in range(profile.cycles):
        for fault in (
            world.kill_server,
            lambda: world.kill_postgres(profile.postgres_down_s),
            world.kill_worker,
            lambda: world.bounce_redis(2),
            world.kill_rabbit,
            world.kill_server,
        ):
            fault()
            wait_for_calls(tally, profile.calls_between)
    stop.set()
    for client in clients:
        client.give_up_at = time.monotonic() + 60
    for client in clients:
        client.join(90)
    load_ended = time.monotonic()

    snap = snapshot(world.postgres.url, world.mock_store)
    while not settled(snap) and time.monotonic() - load_ended < profile.settle_within_s:
        time.sleep(0.5)  # polling the database with a deadline
        snap = snapshot(world.postgres.url, world.mock_store)
    settle_s = time.monotonic() - load_ended
    problems = check(snap, tally.acknowledged)

    figures = report(world, tally, began, load_ended, settle_s, len(snap.payments))
    print(figures)
    (world.folder / "figures.txt").write_text(figures)
    assert not any(c.is_alive() for c in clients), "a client never finished"
    assert not problems, f"{len(problems)} broken invariants:\n" + "\n".join(problems[:40])
    assert not tally.replay_mismatches, tally.replay_mismatches
    assert tally.unanswered == 0, figures
    assert tally.bugs == 0, f"{figures}\nfirst ones: {tally.bug_details}"


def report(
    world: World, tally: Tally, began: float, ended: float, settle_s: float, payments: int
) -> str:
    lines = [
        f"fault suite ({os.environ.get('PAYMENTS_FAULT_SUITE', 'short')}): "
        f"{ended - began:.0f} s of load, {len(tally.acknowledged)} payments acknowledged, "
        f"{payments} stored",
        "calls by status: "
        + ", ".join(f"{code} {count}" for code, count in sorted(tally.codes.items())),
        "faults:",
    ]
    ends = [later.started for later in world.faults[1:]] + [ended]
    for fault, next_started in zip(world.faults, ends, strict=True):
        back = first_success_after(tally, fault.ended)
        # What fails while the fault lasts, and just after (a restart takes seconds), is its own.
        window_end = min(fault.ended + 5, next_started)
        bugs = sum(fault.started <= t <= window_end for t in tally.bug_times)
        lines.append(
            f"  {fault.kind}: repaired after {fault.ended - fault.started:.2f} s, first "
            f"successful call {back if back is not None else float('nan'):.2f} s later; "
            f"INTERNAL/UNKNOWN meanwhile: {bugs}"
        )
    lines.append(f"settled {settle_s:.1f} s after the load stopped")
    return "\n".join(lines)
