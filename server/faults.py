"""Crash on purpose at a named point, to prove recovery; armed only when PAYMENTS_ENV=test."""

from __future__ import annotations

import os
import signal

CRASH_AT_ENV = "PAYMENTS_TEST_CRASH_AT"
# Set once at start-up (Settings.crash_at): the check sits on the payment path.
_armed = ""


def arm(name: str) -> None:
    """Crash at `name` from now on ("" disarms)."""
    global _armed
    _armed = name


AFTER_PROVIDER_CALL = "after_provider_call"


def crash_point(name: str) -> None:
    """SIGKILL this process if the test armed `name`: no cleanup, like a power cut."""
    if name and name == _armed:
        os.kill(os.getpid(), signal.SIGKILL)
