"""A server process of a group (server/process_group.py): it dies with its supervisor,
tells it when it serves, and applies what the supervisor tells it."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

from server.process_group import EVENTS, READY

# linux/prctl.h: the signal this process gets when the thread that started it exits.
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class GroupMember:
    index: int
    supervisor_pid: int

    @classmethod
    def parse(cls, value: str) -> GroupMember:
        """`INDEX:SUPERVISOR_PID`, as the supervisor passes it (`--group-member`)."""
        index, _, pid = value.partition(":")
        return cls(int(index), int(pid))

    def argument(self) -> str:
        return f"{self.index}:{self.supervisor_pid}"

    def die_with_supervisor(self) -> None:
        """SIGKILL this process as soon as the supervisor dies, however it dies (SIGKILL
        too), so that no member serves on without it. The supervisor starts members from
        its main thread, which lives as long as it does."""
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != self.supervisor_pid:  # it died before the line above took
            raise SystemExit(1)

    def tag_logs(self) -> None:
        """Every log line of this process names it (`server_process` in JSON lines)."""

        def tag(record: logging.LogRecord) -> bool:
            record.server_process = self.index
            return True

        for handler in logging.getLogger().handlers:
            handler.addFilter(tag)

    def report_serving(self, metrics_port: int | None) -> None:
        sys.stdout.write(f"{READY} {metrics_port or 0}\n")
        sys.stdout.flush()

    async def follow(self, events: Callable[[bool], None]) -> None:
        """Apply the supervisor's lines; return when its end of the pipe closes (it is gone)."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            word, _, value = line.decode().strip().partition(" ")
            if word == EVENTS:
                events(value == "1")
