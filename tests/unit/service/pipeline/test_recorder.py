"""The recorder: shielded settles finish, kept writes land when the database is back."""

from __future__ import annotations

import asyncio
import logging

import pytest

from server.domain.errors import DatabaseUnavailable, TransactionConflict
from server.service.pipeline.recorder import Recorder


class FlakyWrite:
    """A final write the database refuses `failures` times, then takes."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or DatabaseUnavailable("down")
        self.calls = 0
        self.landed = asyncio.Event()

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        self.landed.set()


async def test_a_kept_write_is_tried_until_the_database_takes_it() -> None:
    recorder = Recorder(first_delay=0.001, max_delay=0.002)
    write = FlakyWrite(failures=3)
    recorder.keep(write)
    assert recorder.kept == 1
    await asyncio.wait_for(recorder.drained(), timeout=10)
    assert write.landed.is_set()
    assert write.calls == 4
    assert recorder.kept == 0


async def test_a_conflict_is_tried_again_too() -> None:
    recorder = Recorder(first_delay=0.001)
    write = FlakyWrite(failures=1, error=TransactionConflict("deadlock"))
    recorder.keep(write)
    await asyncio.wait_for(recorder.drained(), timeout=10)
    assert write.landed.is_set()


async def test_it_gives_up_after_its_time_and_leaves_the_rest_to_the_reconciler() -> None:
    recorder = Recorder(first_delay=0.001, max_delay=0.001, give_up_after=0.0)
    write = FlakyWrite(failures=1000)
    recorder.keep(write)
    await asyncio.wait_for(recorder.drained(), timeout=10)
    assert not write.landed.is_set()
    assert write.calls == 1


async def test_it_keeps_at_most_its_limit() -> None:
    recorder = Recorder(limit=2, first_delay=60)
    for _ in range(5):
        recorder.keep(FlakyWrite(failures=0))
    assert recorder.kept == 2
    await recorder.close(grace=0)
    assert recorder.kept == 0


async def test_a_shielded_settle_finishes_when_its_caller_is_cancelled() -> None:
    recorder = Recorder()
    release = asyncio.Event()
    finished = asyncio.Event()

    async def settle() -> str:
        await release.wait()
        finished.set()
        return "recorded"

    caller = asyncio.ensure_future(recorder.shielded(settle()))
    await asyncio.sleep(0)
    caller.cancel()
    release.set()
    await asyncio.wait_for(recorder.drained(), timeout=10)
    assert finished.is_set()


async def test_close_cancels_what_outlives_the_grace() -> None:
    recorder = Recorder(first_delay=60)
    recorder.keep(FlakyWrite(failures=0))
    await recorder.close(grace=0.01)
    assert recorder.kept == 0


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if record.name == "server.service.pipeline.recorder"
    ]


async def test_the_operator_is_told_when_a_kept_write_lands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    recorder = Recorder(first_delay=0.001)
    recorder.keep(FlakyWrite(failures=1))
    await asyncio.wait_for(recorder.drained(), timeout=10)
    assert messages(caplog) == [(logging.INFO, "recorded a kept write once the database was back")]


async def test_the_operator_is_told_when_the_recorder_gives_up_or_is_full(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder(limit=1, first_delay=0.001, give_up_after=0.0)
    recorder.keep(FlakyWrite(failures=1000))
    recorder.keep(FlakyWrite(failures=0))
    await asyncio.wait_for(recorder.drained(), timeout=10)
    assert messages(caplog) == [
        (logging.ERROR, "recorder full (1 writes kept): leaving one to the reconciler"),
        (logging.ERROR, "gave up recording after 0 s: the reconciler takes over"),
    ]


async def test_a_write_that_fails_otherwise_is_logged_with_its_error_and_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder(first_delay=0.001)
    write = FlakyWrite(failures=1, error=ValueError("a bug"))
    recorder.keep(write)
    await asyncio.wait_for(recorder.drained(), timeout=10)
    assert messages(caplog) == [(logging.ERROR, "a kept write failed for good")]
    assert caplog.records[-1].exc_info is not None
    assert write.calls == 1


async def test_drained_waits_out_a_settle_that_failed_without_raising_it() -> None:
    recorder = Recorder()

    async def settle() -> None:
        raise DatabaseUnavailable("down")

    caller = recorder.shielded(settle())
    await asyncio.wait_for(recorder.drained(), timeout=10)
    with pytest.raises(DatabaseUnavailable):
        await caller
