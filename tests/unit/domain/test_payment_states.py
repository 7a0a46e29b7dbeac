"""Exhaustive tests for the payment state machine: every state x every operation."""

from __future__ import annotations

import itertools

import pytest

from server.domain.errors import FailedPrecondition
from server.domain.payment_states import (
    DEAD_STATES,
    FINAL_STATES,
    TRANSITIONS,
    PaymentOp,
    PaymentState,
    next_state,
)

# The allowed moves, written out by hand and independent of TRANSITIONS: for each operation,
# every state it may start from and where it goes. Any pair not listed must be refused.
EXPECTED_TABLE = """
confirm:
    REQUIRES_PAYMENT_METHOD -> PROCESSING
    REQUIRES_CONFIRMATION   -> PROCESSING
    REQUIRES_ACTION         -> PROCESSING
capture:
    REQUIRES_CAPTURE        -> PROCESSING
cancel:
    REQUIRES_PAYMENT_METHOD -> CANCELED
    REQUIRES_CONFIRMATION   -> CANCELED
    REQUIRES_ACTION         -> CANCELED
    REQUIRES_CAPTURE        -> CANCELED
provider_requires_action:
    PROCESSING              -> REQUIRES_ACTION
provider_authorized:
    PROCESSING              -> REQUIRES_CAPTURE
    REQUIRES_ACTION         -> REQUIRES_CAPTURE
provider_succeeded:
    PROCESSING              -> SUCCEEDED
    REQUIRES_ACTION         -> SUCCEEDED
    REQUIRES_CAPTURE        -> SUCCEEDED
provider_failed:
    REQUIRES_PAYMENT_METHOD -> FAILED
    REQUIRES_CONFIRMATION   -> FAILED
    REQUIRES_ACTION         -> FAILED
    PROCESSING              -> FAILED
provider_canceled:
    REQUIRES_PAYMENT_METHOD -> CANCELED
    REQUIRES_CONFIRMATION   -> CANCELED
    REQUIRES_ACTION         -> CANCELED
    REQUIRES_CAPTURE        -> CANCELED
    PROCESSING              -> CANCELED
refund_partial:
    SUCCEEDED               -> PARTIALLY_REFUNDED
    PARTIALLY_REFUNDED      -> PARTIALLY_REFUNDED
refund_full:
    SUCCEEDED               -> REFUNDED
    PARTIALLY_REFUNDED      -> REFUNDED
"""


def _parse_table(text: str) -> dict[PaymentOp, dict[PaymentState, PaymentState]]:
    table: dict[PaymentOp, dict[PaymentState, PaymentState]] = {}
    op: PaymentOp | None = None
    for raw in text.strip().splitlines():
        line = raw.strip()
        if line.endswith(":"):
            op = PaymentOp(line[:-1])
            assert op not in table, f"{op} listed twice"
            table[op] = {}
            continue
        assert op is not None, f"move before any operation: {line!r}"
        source, target = (part.strip() for part in line.split("->"))
        assert PaymentState(source) not in table[op], f"{op}: {source} listed twice"
        table[op][PaymentState(source)] = PaymentState(target)
    return table


EXPECTED = _parse_table(EXPECTED_TABLE)
ALL_PAIRS = list(itertools.product(PaymentState, PaymentOp))


def test_the_table_names_every_operation() -> None:
    assert set(EXPECTED) == set(PaymentOp)


def test_there_are_ten_states_and_ten_operations() -> None:
    assert len(PaymentState) == 10
    assert len(PaymentOp) == 10
    assert len(ALL_PAIRS) == 100


@pytest.mark.parametrize(
    ("state", "op"), ALL_PAIRS, ids=[f"{state.value}-{op.value}" for state, op in ALL_PAIRS]
)
def test_next_state(state: PaymentState, op: PaymentOp) -> None:
    expected = EXPECTED[op].get(state)
    if expected is not None:
        assert next_state(state, op) is expected
        return
    with pytest.raises(FailedPrecondition) as caught:
        next_state(state, op)
    error = caught.value
    assert error.reason == "INVALID_PAYMENT_STATE"
    assert dict(error.metadata) == {"state": state.value, "operation": op.value}
    assert state.value in error.message


def test_transitions_constant_matches_the_table_exactly() -> None:
    actual = {op: dict(moves) for op, moves in TRANSITIONS.items()}
    assert actual == EXPECTED


def test_transitions_constant_is_read_only() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[PaymentOp.CONFIRM] = {}  # type: ignore[index]


def test_dead_states_are_failed_and_canceled() -> None:
    assert frozenset({PaymentState.FAILED, PaymentState.CANCELED}) == DEAD_STATES


def test_final_states_are_dead_states_and_refunded() -> None:
    assert DEAD_STATES | {PaymentState.REFUNDED} == FINAL_STATES


@pytest.mark.parametrize("state", sorted(FINAL_STATES))
def test_no_operation_leaves_a_final_state(state: PaymentState) -> None:
    for op in PaymentOp:
        with pytest.raises(FailedPrecondition):
            next_state(state, op)


def test_only_refunds_leave_a_succeeded_like_state() -> None:
    refunds = {PaymentOp.REFUND_PARTIAL, PaymentOp.REFUND_FULL}
    for state in (PaymentState.SUCCEEDED, PaymentState.PARTIALLY_REFUNDED):
        allowed = {op for op in PaymentOp if state in EXPECTED[op]}
        assert allowed == refunds
        for op in set(PaymentOp) - refunds:
            with pytest.raises(FailedPrecondition):
                next_state(state, op)


def test_every_non_final_state_has_a_way_out() -> None:
    for state in set(PaymentState) - FINAL_STATES:
        assert any(state in EXPECTED[op] for op in PaymentOp), state


def test_dead_states_are_reachable_only_through_fail_or_cancel() -> None:
    for state, op in ALL_PAIRS:
        target = EXPECTED[op].get(state)
        if target is PaymentState.FAILED:
            assert op is PaymentOp.PROVIDER_FAILED
        if target is PaymentState.CANCELED:
            assert op in (PaymentOp.CANCEL, PaymentOp.PROVIDER_CANCELED)
