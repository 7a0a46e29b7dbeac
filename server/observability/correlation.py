"""The message id of the queued command being run, carried to the events it causes."""

from __future__ import annotations

from contextvars import ContextVar

# Set by the command consumer around one command; None for gRPC calls and jobs.
CORRELATION_ID: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str | None:
    return CORRELATION_ID.get()
