"""Who is calling: the principal the auth interceptor verified for this call."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from grpc import aio

from server.domain.principal import ANONYMOUS, Principal

# Set by server.grpc.auth.interceptor around each call; ANONYMOUS in open development mode.
CURRENT: ContextVar[Principal] = ContextVar("principal", default=ANONYMOUS)


def principal_of(context: aio.ServicerContext[Any, Any]) -> Principal:
    del context  # the call's task carries it
    return CURRENT.get()


def caller_of(context: aio.ServicerContext[Any, Any]) -> str:
    """The scope of the caller's idempotency keys."""
    return principal_of(context).scope
