"""Exhaustive tests for the subscription state machine: every state x every operation."""

from __future__ import annotations

import itertools

import pytest

from server.domain.errors import FailedPrecondition
from server.domain.subscription import (
    ENDED_STATES,
    SUBSCRIPTION_TRANSITIONS,
    SubscriptionOp,
    SubscriptionState,
    next_subscription_state,
)

# The allowed moves, written out by hand and independent of SUBSCRIPTION_TRANSITIONS.
EXPECTED_TABLE = """
period_paid:
    TRIALING   -> ACTIVE
    ACTIVE     -> ACTIVE
    PAST_DUE   -> ACTIVE
    INCOMPLETE -> ACTIVE
payment_failed:
    TRIALING   -> PAST_DUE
    ACTIVE     -> PAST_DUE
    PAST_DUE   -> PAST_DUE
    INCOMPLETE -> INCOMPLETE
dunning_exhausted:
    PAST_DUE   -> CANCELED
expire:
    INCOMPLETE -> INCOMPLETE_EXPIRED
cancel:
    TRIALING   -> CANCELED
    ACTIVE     -> CANCELED
    PAST_DUE   -> CANCELED
    INCOMPLETE -> CANCELED
end_of_term:
    TRIALING   -> CANCELED
    ACTIVE     -> CANCELED
    PAST_DUE   -> CANCELED
update:
    TRIALING   -> TRIALING
    ACTIVE     -> ACTIVE
    PAST_DUE   -> PAST_DUE
"""


def _parse_table(text: str) -> dict[SubscriptionOp, dict[SubscriptionState, SubscriptionState]]:
    table: dict[SubscriptionOp, dict[SubscriptionState, SubscriptionState]] = {}
    op: SubscriptionOp | None = None
    for raw in text.strip().splitlines():
        line = raw.strip()
        if line.endswith(":"):
            op = SubscriptionOp(line[:-1])
            assert op not in table, f"{op} listed twice"
            table[op] = {}
            continue
        assert op is not None, f"move before any operation: {line!r}"
        source, target = (part.strip() for part in line.split("->"))
        assert SubscriptionState(source) not in table[op], f"{op}: {source} listed twice"
        table[op][SubscriptionState(source)] = SubscriptionState(target)
    return table


EXPECTED = _parse_table(EXPECTED_TABLE)
ALL_PAIRS = list(itertools.product(SubscriptionState, SubscriptionOp))


def test_the_table_names_every_operation_and_there_are_six_states() -> None:
    assert set(EXPECTED) == set(SubscriptionOp)
    assert len(SubscriptionState) == 6
    assert len(ALL_PAIRS) == 42


@pytest.mark.parametrize(
    ("state", "op"), ALL_PAIRS, ids=[f"{state.value}-{op.value}" for state, op in ALL_PAIRS]
)
def test_next_subscription_state(state: SubscriptionState, op: SubscriptionOp) -> None:
    expected = EXPECTED[op].get(state)
    if expected is not None:
        assert next_subscription_state(state, op) is expected
        return
    with pytest.raises(FailedPrecondition) as caught:
        next_subscription_state(state, op)
    assert caught.value.reason == "INVALID_SUBSCRIPTION_STATE"
    assert dict(caught.value.metadata) == {"state": state.value, "operation": op.value}


def test_transitions_constant_matches_the_table_exactly() -> None:
    assert {op: dict(moves) for op, moves in SUBSCRIPTION_TRANSITIONS.items()} == EXPECTED


def test_ended_states_are_never_left() -> None:
    assert frozenset({SubscriptionState.CANCELED, SubscriptionState.INCOMPLETE_EXPIRED}) == (
        ENDED_STATES
    )
    for moves in EXPECTED.values():
        assert not ENDED_STATES & set(moves)
