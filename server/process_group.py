"""`payments serve` as several processes on one port: the supervisor's side.

grpc.aio serves from one event loop, so one server process uses about one core. With
PAYMENTS_SERVER_PROCESSES above 1, `payments serve` becomes a supervisor: it starts that
many server processes, each a fresh interpreter (grpc does not survive a fork once its
threads run), all listening on the same port with SO_REUSEPORT, so that the kernel spreads
connections over them. The supervisor answers no calls. It runs the background jobs once
for the group, forwards SIGTERM and SIGINT to every member, restarts a member that dies,
and exits once every member has.

The pipes: a member's stdin carries the supervisor's word (`events 1` or `events 0`: the
outbox relay's health, which the member reports as payments.events), and its end of file
says the supervisor is gone; the member's stdout carries its answer (`ready PORT`: it
serves, and its own metrics are on 127.0.0.1:PORT, 0 for none). The member's side is
server/group_member.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from server.config import ConfigError

_log = logging.getLogger("payments")
READY = "ready"
EVENTS = "events"
RESTART_DELAY_S = 1.0
# More member deaths than this within the window is a crash loop: the group stops and
# exits 1, for the orchestrator to see, instead of restarting members forever.
MAX_DEATHS = 5
DEATH_WINDOW_S = 60.0


def check_port_free(address: str) -> None:
    """Refuse an address another process listens on: SO_REUSEPORT would share its port.

    grpc checks nothing when SO_REUSEPORT is on, so the members' bind would succeed next to
    a stranger's socket and the two would split the connections. The check is racy (the
    port could be taken between it and the members' bind), but it catches the usual
    mistake: a second server started on a port in use.
    """
    host, _, port = address.rpartition(":")
    if not port.isdigit() or int(port) == 0:
        raise ConfigError(
            "PAYMENTS_SERVER_PROCESSES above 1 needs a fixed TCP port in "
            f"PAYMENTS_GRPC_ADDRESS, got {address!r}"
        )
    try:
        found = socket.getaddrinfo(
            host.removeprefix("[").removesuffix("]") or None,
            int(port),
            type=socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE,
        )
    except OSError as error:
        raise ConfigError(f"cannot listen on {address}: {error.strerror}") from None
    for family, kind, protocol, _, sockaddr in found:
        try:
            with socket.socket(family, kind, protocol) as probe:
                # As grpc binds: a port in TIME_WAIT is free; [::] covers IPv4 as well.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                probe.bind(sockaddr)
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                raise ConfigError(f"cannot listen on {address}: {error.strerror}") from None
            # Anything else (no IPv6 here, say) is left for grpc to report.


def describe_exit(code: int) -> str:
    """`code 3`, `signal SIGKILL`: how a process ended, from its return code."""
    if code >= 0:
        return f"code {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:  # a real-time signal has no name
        return f"signal {-code}"


@dataclass
class _Member:
    index: int
    process: asyncio.subprocess.Process | None = None
    served: bool = False
    metrics_port: int = 0


class ProcessGroup:
    """`size` server processes, each started as `command(index)` (index from 1)."""

    def __init__(
        self, size: int, command: Callable[[int], Sequence[str]], env: Mapping[str, str]
    ) -> None:
        self._members = [_Member(index) for index in range(1, size + 1)]
        self._command = command
        self._env = dict(env)
        self._stop_signal: signal.Signals | None = None
        self._deaths: deque[float] = deque()
        self._events: bool | None = None
        self._keepers: list[asyncio.Task[int]] = []
        self.serving = asyncio.Event()  # every member has served once
        self.failed = asyncio.Event()  # a member could not start, or members die too often

    def start(self) -> None:
        self._keepers = [asyncio.create_task(self._keep(member)) for member in self._members]

    async def stop(self, sig: signal.Signals) -> int:
        """Send `sig` to every member and wait until all have exited: 0 when each stopped
        cleanly (or was stopped by `sig` before it could handle it), else 1."""
        self._stop_signal = sig
        for member in self._members:
            self._send(member, sig)
        codes = await asyncio.gather(*self._keepers)
        return 0 if all(code in (0, -sig) for code in codes) and not self.failed.is_set() else 1

    def report_events(self, serving: bool) -> None:
        """The relay's health, for every member's payments.events entry (and later ones')."""
        self._events = serving
        for member in self._members:
            self._tell(member, f"{EVENTS} {int(serving)}")

    def metrics_ports(self) -> dict[str, int]:
        """Each serving member's own metrics port, by index (read from another thread)."""
        return {str(m.index): m.metrics_port for m in list(self._members) if m.metrics_port}

    async def _keep(self, member: _Member) -> int:
        """Run the member, again each time it dies, until the group stops; its last code."""
        while True:
            try:
                code = await self._run(member)
            except OSError as error:  # no process at all (out of memory, of pids, ...)
                self._fail(f"cannot start server process {member.index}: {error.strerror}")
                return 1
            if self._stop_signal is not None:
                return code
            if not member.served:
                # A start-up failure would only repeat: stop the group and say so.
                self._fail(
                    f"server process {member.index} exited with "
                    f"{describe_exit(code)} before serving"
                )
                return code
            if self._crash_loop():
                self._fail(
                    f"server processes exited {MAX_DEATHS + 1} times within "
                    f"{DEATH_WINDOW_S:.0f} s; stopping the group"
                )
                return code
            _log.error(
                "server process %d exited with %s; starting it again",
                member.index,
                describe_exit(code),
            )
            await asyncio.sleep(RESTART_DELAY_S)
            if self._stop_signal is not None:
                return 0  # nothing was running to stop

    async def _run(self, member: _Member) -> int:
        process = await asyncio.create_subprocess_exec(
            *self._command(member.index),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self._env,
        )
        member.process, member.served = process, False
        _log.info("server process %d started (pid %d)", member.index, process.pid)
        if self._stop_signal is not None:  # the group began stopping while it started
            self._send(member, self._stop_signal)
        elif self._events is not None:
            self._tell(member, f"{EVENTS} {int(self._events)}")
        assert process.stdout is not None
        while True:
            try:
                line = await process.stdout.readline()
            except ValueError:  # a line past the reader's limit: not ours, and dropped
                continue
            if not line:
                break
            self._heard(member, line.decode(errors="replace"))
        code = await process.wait()
        member.process, member.metrics_port = None, 0
        return code

    def _heard(self, member: _Member, line: str) -> None:
        word, _, value = line.strip().partition(" ")
        if word != READY or not value.isdigit():
            sys.stdout.write(line)  # not ours: something the member printed
            return
        member.served, member.metrics_port = True, int(value)
        assert member.process is not None
        _log.info("server process %d serving (pid %d)", member.index, member.process.pid)
        if all(one.served for one in self._members):
            self.serving.set()

    def _tell(self, member: _Member, line: str) -> None:
        process = member.process
        if process is None or process.returncode is not None or process.stdin is None:
            return
        with contextlib.suppress(ConnectionError):  # it is exiting; its keeper will see
            process.stdin.write(f"{line}\n".encode())

    def _send(self, member: _Member, sig: signal.Signals) -> None:
        process = member.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)

    def _crash_loop(self) -> bool:
        now = time.monotonic()
        self._deaths.append(now)
        while self._deaths and self._deaths[0] < now - DEATH_WINDOW_S:
            self._deaths.popleft()
        return len(self._deaths) > MAX_DEATHS

    def _fail(self, reason: str) -> None:
        _log.error("%s", reason)
        self.failed.set()
