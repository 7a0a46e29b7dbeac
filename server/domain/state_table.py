"""A state machine as one declarative table: operation -> {from state: to state}.

A move the table does not hold is FAILED_PRECONDITION, with the resource's own
reason and the state and operation in its metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from server.domain.errors import FailedPrecondition

S = TypeVar("S", bound=StrEnum)
Op = TypeVar("Op", bound=StrEnum)


def not_allowed(noun: str) -> Callable[[StrEnum, StrEnum], str]:
    """The plain refusal: which operation, on which kind of resource, in which state."""
    return lambda state, op: (
        f"operation {op.value} is not allowed for a {noun} in state {state.value}"
    )


@dataclass(frozen=True, slots=True)
class StateTable(Generic[S, Op]):
    # A pair that is absent is not allowed.
    moves: Mapping[Op, Mapping[S, S]]
    # The refusal's message, for the caller.
    refusal: Callable[[S, Op], str]
    reason: str

    def next(self, state: S, op: Op) -> S:
        """Where `op` takes a resource in `state`; FailedPrecondition if it may not."""
        target = self.moves[op].get(state)
        if target is None:
            raise FailedPrecondition(
                self.refusal(state, op),
                reason=self.reason,
                metadata={"state": state.value, "operation": op.value},
            )
        return target
