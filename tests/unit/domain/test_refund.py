"""Tests for refunds: the refund state table, and Payment.refund / refund_failed."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from server.domain.errors import FailedPrecondition, FieldViolation, InvalidArgument
from server.domain.money import Money
from server.domain.payment import CaptureMethod, Payment, new_payment
from server.domain.payment_states import PaymentOp, PaymentState
from server.domain.refund import (
    REFUND_TRANSITIONS,
    Refund,
    RefundOp,
    RefundState,
    new_refund,
    next_refund_state,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T1 = T0 + timedelta(seconds=1)


def succeeded(amount: int = 1000) -> Payment:
    payment = new_payment(
        payment_id="pay_01JD0000000000000000000000",
        order_id="order-1",
        user_id="user-1",
        amount=Money("USD", amount),
        provider="mock",
        capture_method=CaptureMethod.AUTOMATIC,
        payment_method_id="pm_card_visa",
        description="",
        metadata={},
        now=T0,
    )
    payment.apply(PaymentOp.CONFIRM, T0)
    payment.succeed(T0, None)
    payment.take_events()
    return payment


@pytest.mark.parametrize(("state", "op"), list(itertools.product(RefundState, RefundOp)))
def test_refund_table_is_exhaustive(state: RefundState, op: RefundOp) -> None:
    target = REFUND_TRANSITIONS[op].get(state)
    if target is None:
        with pytest.raises(FailedPrecondition) as refused:
            next_refund_state(state, op)
        assert refused.value.reason == "INVALID_REFUND_STATE"
        assert refused.value.message == (
            f"operation {op.value} is not allowed for a refund in state {state.value}"
        )
        assert dict(refused.value.metadata) == {"state": state.value, "operation": op.value}
    else:
        assert state is RefundState.PENDING
        assert next_refund_state(state, op) is target


def test_partial_then_full_refund_moves_state_and_sequence() -> None:
    payment = succeeded()
    before = payment.event_sequence
    payment.refund(Money("USD", 400), T1)
    assert payment.state is PaymentState.PARTIALLY_REFUNDED
    assert payment.amount_refunded == 400
    assert payment.event_sequence == before + 1
    payment.refund(Money("USD", 600), T1)
    assert payment.state in {PaymentState.REFUNDED}
    assert payment.amount_refunded == 1000
    events = payment.take_events()
    assert [e.type for e in events] == ["refund.issued", "refund.issued"]
    assert [e.sequence for e in events] == [before + 1, before + 2]


def test_refund_never_exceeds_captured() -> None:
    payment = succeeded()
    payment.refund(Money("USD", 999), T1)
    with pytest.raises(FailedPrecondition):
        payment.refund(Money("USD", 2), T1)
    with pytest.raises(InvalidArgument):
        payment.refund(Money("EUR", 1), T1)
    with pytest.raises(InvalidArgument):
        payment.refund(Money("USD", 0), T1)
    assert payment.amount_refunded == 999


def test_refund_failed_moves_only_the_sequence() -> None:
    payment = succeeded()
    refund = new_refund(
        refund_id="ref_01JD0000000000000000000000",
        payment_id=payment.id,
        amount=Money("USD", 10),
        provider="mock",
        reason="",
        now=T0,
    )
    refund.fail("re_1", "refund_failed", "no", T1)
    before = payment.event_sequence
    payment.refund_failed(refund, T1)
    assert payment.state is PaymentState.SUCCEEDED
    assert payment.amount_refunded == 0
    (event,) = payment.take_events()
    assert event.type == "refund.failed"
    assert event.sequence == before + 1
    assert event.refund is refund
    assert refund.state is RefundState.FAILED


def test_only_charged_payments_refund() -> None:
    payment = succeeded()
    payment.state = PaymentState.FAILED
    with pytest.raises(FailedPrecondition):
        payment.refund(Money("USD", 1), T1)


def test_refusals_name_the_field_or_say_what_is_left() -> None:
    payment = succeeded()
    payment.refund(Money("USD", 300), T1)
    with pytest.raises(InvalidArgument) as other_currency:
        payment.refund(Money("EUR", 1), T1)
    assert other_currency.value.violations == (
        FieldViolation("amount.currency_code", "must be the payment's currency"),
    )
    with pytest.raises(InvalidArgument) as nothing:
        payment.refund(Money("USD", 0), T1)
    assert nothing.value.violations == (FieldViolation("amount.minor_units", "must be positive"),)
    with pytest.raises(FailedPrecondition) as too_much:
        payment.refund(Money("USD", 701), T1)
    assert too_much.value.reason == "REFUND_EXCEEDS_CAPTURED"
    assert too_much.value.message == (
        "refunding 701 would exceed the captured 1000 (already refunded 300)"
    )
    assert dict(too_much.value.metadata) == {"refundable": "700"}


def refund_at_provider(provider_refund_id: str) -> Refund:
    refund = new_refund(
        refund_id="ref_01JD0000000000000000000000",
        payment_id="pay_01JD0000000000000000000000",
        amount=Money("USD", 10),
        provider="mock",
        reason="",
        now=T0,
    )
    refund.provider_refund_id = provider_refund_id
    return refund


@pytest.mark.parametrize("end", ["fail", "cancel"])
@pytest.mark.parametrize(
    ("known", "told", "kept"),
    [("", "re_new", "re_new"), ("re_old", "", "re_old"), ("re_old", "re_new", "re_new")],
)
def test_a_refund_that_ends_keeps_the_provider_id_it_is_told_or_already_had(
    end: str, known: str, told: str, kept: str
) -> None:
    refund = refund_at_provider(known)
    if end == "fail":
        refund.fail(told, "refund_failed", "no", T1)
    else:
        refund.cancel(told, T1)
    assert refund.provider_refund_id == kept


def test_a_refused_move_says_which_in_words() -> None:
    with pytest.raises(FailedPrecondition) as refused:
        next_refund_state(RefundState.SUCCEEDED, RefundOp.CANCEL)
    assert str(refused.value) == "operation cancel is not allowed for a refund in state SUCCEEDED"
    assert dict(refused.value.metadata) == {"state": "SUCCEEDED", "operation": "cancel"}


def test_a_new_refund_is_pending_with_its_reason_and_no_override_unless_given() -> None:
    refund = new_refund(
        refund_id="ref_01JD0000000000000000000000",
        payment_id="pay_01JD0000000000000000000000",
        amount=Money("USD", 10),
        provider="mock",
        reason="requested_by_customer",
        now=T0,
    )
    assert refund.state is RefundState.PENDING
    assert refund.reason == "requested_by_customer"
    assert refund.window_override_reason == ""
    assert (refund.create_time, refund.update_time) == (T0, T0)
