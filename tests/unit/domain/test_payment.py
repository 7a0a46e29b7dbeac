"""Tests for the Payment aggregate: initial state, moves, events."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from server.domain.errors import FailedPrecondition
from server.domain.events import PaymentEvent
from server.domain.money import Money
from server.domain.payment import CaptureMethod, Failure, Payment, new_payment
from server.domain.payment_states import PaymentOp, PaymentState

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T1 = T0 + timedelta(seconds=1)
T2 = T0 + timedelta(seconds=2)
PAYMENT_ID = "pay_01JD0000000000000000000000"
AUTO = CaptureMethod.AUTOMATIC
MANUAL = CaptureMethod.MANUAL


def make(
    *,
    payment_method_id: str = "pm_card_visa",
    capture_method: CaptureMethod = CaptureMethod.AUTOMATIC,
    amount: Money | None = None,
) -> Payment:
    return new_payment(
        payment_id=PAYMENT_ID,
        order_id="order-1",
        user_id="user-1",
        amount=amount or Money("USD", 2000),
        provider="mock",
        capture_method=capture_method,
        payment_method_id=payment_method_id,
        description="a description",
        metadata={"k": "v"},
        now=T0,
    )


def confirmed(capture_method: CaptureMethod = CaptureMethod.AUTOMATIC) -> Payment:
    """A new payment confirmed at T0: PROCESSING, its events still pending."""
    payment = make(capture_method=capture_method)
    payment.apply(PaymentOp.CONFIRM, T0)
    return payment


def at(state: PaymentState, capture_method: CaptureMethod = CaptureMethod.AUTOMATIC) -> Payment:
    """A payment already in `state`, with its creation event taken."""
    payment = make(capture_method=capture_method)
    payment.state = state
    payment.take_events()
    return payment


def types(events: list[PaymentEvent]) -> list[str]:
    return [event.type for event in events]


# --- new_payment -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payment_method_id", "state"),
    [
        ("pm_card_visa", PaymentState.REQUIRES_CONFIRMATION),
        ("", PaymentState.REQUIRES_PAYMENT_METHOD),
    ],
)
@pytest.mark.parametrize("capture_method", list(CaptureMethod))
def test_new_payment_initial_state(
    payment_method_id: str, state: PaymentState, capture_method: CaptureMethod
) -> None:
    payment = make(payment_method_id=payment_method_id, capture_method=capture_method)
    assert payment.state is state


@pytest.mark.parametrize("payment_method_id", ["pm_card_visa", ""])
def test_confirming_a_new_payment_makes_it_processing(payment_method_id: str) -> None:
    payment = make(payment_method_id=payment_method_id)
    payment.apply(PaymentOp.CONFIRM, T1)
    assert payment.state is PaymentState.PROCESSING
    assert [(event.type, event.sequence) for event in payment.take_events()] == [
        ("payment.created", 1),
        ("payment.processing", 2),
    ]


def test_new_payment_fields() -> None:
    payment = make(capture_method=CaptureMethod.MANUAL, amount=Money("JPY", 500))
    assert payment.id == PAYMENT_ID
    assert payment.order_id == "order-1"
    assert payment.user_id == "user-1"
    assert payment.amount == Money("JPY", 500)
    assert payment.provider == "mock"
    assert payment.capture_method is CaptureMethod.MANUAL
    assert payment.payment_method_id == "pm_card_visa"
    assert payment.description == "a description"
    assert payment.metadata == {"k": "v"}
    assert payment.create_time == T0
    assert payment.update_time == T0
    assert payment.provider_payment_id == ""
    assert payment.amount_captured == 0
    assert payment.amount_refunded == 0
    assert payment.failure_code == ""
    assert payment.failure_message == ""
    assert payment.captured == Money("JPY", 0)
    assert payment.refunded == Money("JPY", 0)


@pytest.mark.parametrize("payment_method_id", ["pm_card_visa", ""])
@pytest.mark.parametrize("capture_method", list(CaptureMethod))
def test_new_payment_emits_one_created_event(
    payment_method_id: str, capture_method: CaptureMethod
) -> None:
    payment = make(payment_method_id=payment_method_id, capture_method=capture_method)
    assert payment.event_sequence == 1
    assert payment.pending_events == [
        PaymentEvent(type="payment.created", payment_id=PAYMENT_ID, sequence=1, occurred_at=T0)
    ]


# --- apply -------------------------------------------------------------------------------------


def test_apply_moves_state_sets_update_time_and_emits_with_the_next_sequence() -> None:
    payment = make()
    payment.apply(PaymentOp.CONFIRM, T1)
    assert payment.state is PaymentState.PROCESSING
    assert payment.update_time == T1
    assert payment.create_time == T0
    assert payment.event_sequence == 2
    assert payment.pending_events[-1] == PaymentEvent(
        type="payment.processing", payment_id=PAYMENT_ID, sequence=2, occurred_at=T1
    )


@pytest.mark.parametrize(
    ("start", "op", "capture_method", "expected_types"),
    [
        (PaymentState.REQUIRES_CONFIRMATION, PaymentOp.CONFIRM, AUTO, ["payment.processing"]),
        (
            PaymentState.PROCESSING,
            PaymentOp.PROVIDER_REQUIRES_ACTION,
            AUTO,
            ["payment.requires_action"],
        ),
        (PaymentState.PROCESSING, PaymentOp.PROVIDER_AUTHORIZED, MANUAL, ["payment.authorized"]),
        (PaymentState.PROCESSING, PaymentOp.PROVIDER_SUCCEEDED, AUTO, ["payment.succeeded"]),
        (
            PaymentState.PROCESSING,
            PaymentOp.PROVIDER_SUCCEEDED,
            MANUAL,
            ["payment.captured", "payment.succeeded"],
        ),
        (PaymentState.PROCESSING, PaymentOp.PROVIDER_FAILED, AUTO, ["payment.failed"]),
        (PaymentState.REQUIRES_CAPTURE, PaymentOp.CAPTURE, MANUAL, ["payment.processing"]),
        (PaymentState.REQUIRES_CAPTURE, PaymentOp.CANCEL, MANUAL, ["payment.canceled"]),
        (PaymentState.PROCESSING, PaymentOp.PROVIDER_CANCELED, AUTO, ["payment.canceled"]),
    ],
)
def test_apply_emits_the_events_of_the_new_state(
    start: PaymentState,
    op: PaymentOp,
    capture_method: CaptureMethod,
    expected_types: list[str],
) -> None:
    payment = at(start, capture_method)
    before = payment.event_sequence
    payment.apply(op, T1)
    events = payment.take_events()
    assert types(events) == expected_types
    assert [event.sequence for event in events] == list(
        range(before + 1, before + 1 + len(expected_types))
    )
    assert payment.event_sequence == before + len(expected_types)
    assert all(event.occurred_at == T1 and event.payment_id == PAYMENT_ID for event in events)


def test_manual_capture_success_emits_captured_then_succeeded_with_consecutive_sequences() -> None:
    payment = confirmed(CaptureMethod.MANUAL)
    payment.apply(PaymentOp.PROVIDER_AUTHORIZED, T1)
    payment.apply(PaymentOp.CAPTURE, T1)
    payment.succeed(T2, 1500)
    events = payment.take_events()
    assert [(event.type, event.sequence) for event in events] == [
        ("payment.created", 1),
        ("payment.processing", 2),
        ("payment.authorized", 3),
        ("payment.processing", 4),
        ("payment.captured", 5),
        ("payment.succeeded", 6),
    ]
    assert payment.event_sequence == 6
    assert payment.state is PaymentState.SUCCEEDED


def test_automatic_success_emits_no_captured_event() -> None:
    payment = confirmed()
    payment.succeed(T1, None)
    assert types(payment.take_events()) == [
        "payment.created",
        "payment.processing",
        "payment.succeeded",
    ]


def test_cancel_reason_is_carried_by_the_event() -> None:
    payment = at(PaymentState.REQUIRES_CONFIRMATION)
    payment.apply(PaymentOp.CANCEL, T1, reason="customer changed their mind")
    (event,) = payment.take_events()
    assert event.type == "payment.canceled"
    assert event.reason == "customer changed their mind"


def test_refused_apply_changes_nothing() -> None:
    payment = at(PaymentState.SUCCEEDED)
    before = dataclasses.replace(payment)
    with pytest.raises(FailedPrecondition):
        payment.apply(PaymentOp.CAPTURE, T1)
    assert payment == before
    assert payment.update_time == T0
    assert payment.pending_events == []


def test_event_sequence_keeps_counting_after_take_events() -> None:
    payment = make()
    payment.take_events()
    payment.apply(PaymentOp.CONFIRM, T1)
    (event,) = payment.take_events()
    assert event.sequence == 2


# --- succeed / fail ----------------------------------------------------------------------------


def test_succeed_without_amount_captures_everything() -> None:
    payment = at(PaymentState.PROCESSING)
    payment.succeed(T1, None)
    assert payment.state is PaymentState.SUCCEEDED
    assert payment.amount_captured == 2000
    assert payment.captured == Money("USD", 2000)
    assert payment.update_time == T1


def test_succeed_with_partial_amount_received_sets_amount_captured() -> None:
    payment = at(PaymentState.PROCESSING, CaptureMethod.MANUAL)
    payment.succeed(T1, 1234)
    assert payment.state is PaymentState.SUCCEEDED
    assert payment.amount_captured == 1234
    assert payment.captured == Money("USD", 1234)


def test_succeed_never_captures_more_than_the_amount() -> None:
    payment = at(PaymentState.PROCESSING)
    payment.succeed(T1, 999_999)
    assert payment.amount_captured == 2000


def test_fail_records_code_and_message() -> None:
    payment = at(PaymentState.PROCESSING)
    payment.fail(T1, Failure("card_declined", "Your card was declined."))
    assert payment.state is PaymentState.FAILED
    assert payment.failure_code == "card_declined"
    assert payment.failure_message == "Your card was declined."
    assert payment.update_time == T1
    assert types(payment.take_events()) == ["payment.failed"]


def test_refused_fail_changes_nothing() -> None:
    payment = at(PaymentState.SUCCEEDED)
    with pytest.raises(FailedPrecondition):
        payment.fail(T1, Failure("card_declined", "Your card was declined."))
    assert payment.failure_code == ""
    assert payment.failure_message == ""


def test_refused_succeed_changes_nothing() -> None:
    # Before confirmation the provider's success goes through CONFIRM first.
    payment = at(PaymentState.REQUIRES_CONFIRMATION, CaptureMethod.MANUAL)
    with pytest.raises(FailedPrecondition):
        payment.succeed(T1, 500)
    assert payment.amount_captured == 0


def test_a_capture_made_at_the_provider_lands_with_its_amount() -> None:
    payment = at(PaymentState.REQUIRES_CAPTURE, CaptureMethod.MANUAL)
    payment.succeed(T1, 500)
    assert payment.state is PaymentState.SUCCEEDED
    assert payment.amount_captured == 500
    assert types(payment.take_events()) == ["payment.captured", "payment.succeeded"]


# --- take_events / is_live ---------------------------------------------------------------------


def test_take_events_returns_and_empties() -> None:
    payment = confirmed()
    payment.succeed(T1, None)
    events = payment.take_events()
    assert len(events) == 3
    assert payment.pending_events == []
    assert payment.take_events() == []
    assert payment.event_sequence == 3


@pytest.mark.parametrize("state", list(PaymentState))
def test_is_live(state: PaymentState) -> None:
    payment = at(state)
    expected = state not in (PaymentState.FAILED, PaymentState.CANCELED)
    assert payment.is_live is expected


def test_pending_events_are_not_part_of_equality() -> None:
    first = make()
    second = make()
    second.take_events()
    assert first == second


def test_events_carry_no_reason_unless_one_is_given() -> None:
    payment = confirmed()
    payment.succeed(T1, None)  # a move of its own, without a reason
    payment.record(T1)  # the current state announced again
    payment.refund(Money("USD", 500), T2)  # an event without a move
    events = payment.take_events()
    assert types(events)[2:] == ["payment.succeeded", "payment.succeeded", "refund.issued"]
    assert [event.reason for event in events] == [""] * 5


def test_a_deep_copy_shares_nothing_that_changes() -> None:
    original = confirmed()
    original.metadata["cart"] = "c-1"
    events = list(original.pending_events)
    twin = copy.deepcopy(original)
    assert twin == original
    assert twin.pending_events == events

    twin.metadata["cart"] = "c-2"
    twin.take_events()
    twin.apply(PaymentOp.PROVIDER_SUCCEEDED, T0 + timedelta(seconds=1))

    assert original.metadata == {"k": "v", "cart": "c-1"}
    assert original.pending_events == events
    assert original.state is PaymentState.PROCESSING
    assert twin.state is PaymentState.SUCCEEDED
