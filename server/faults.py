"""Crash on purpose at a named point, to prove recovery; armed only when PAYMENTS_ENV=test."""

from __future__ import annotations

import os
import signal

CRASH_AT_ENV = "PAYMENTS_TEST_CRASH_AT"
# Read once: the check sits on the payment path.
_ARMED = os.environ.get(CRASH_AT_ENV, "") if os.environ.get("PAYMENTS_ENV") == "test" else ""

AFTER_PROVIDER_CALL = "after_provider_call"


def crash_point(name: str) -> None:
    """SIGKILL this process if the test armed `name`: no cleanup, like a power cut."""
    if name == _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
