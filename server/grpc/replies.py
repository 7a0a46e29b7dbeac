"""What every mutating RPC answers: the resource, and a trailer when it is a replay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from grpc import aio

from server.service.pipeline.command import Outcome

R = TypeVar("R")
M = TypeVar("M")
REPLAYED = (("idempotent-replayed", "true"),)


def reply(
    context: aio.ServicerContext[Any, Any], outcome: Outcome[R], to_proto: Callable[[R], M]
) -> M:
    if outcome.replayed:
        context.set_trailing_metadata(REPLAYED)
    return to_proto(outcome.resource)
