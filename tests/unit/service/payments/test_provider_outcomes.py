"""Tests for applying what the provider reports to a payment."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from server.domain.money import Money
from server.domain.payment import CaptureMethod, Failure, Payment, new_payment
from server.domain.payment_states import PaymentOp, PaymentState
from server.service.payments.provider_outcomes import apply_provider_outcome
from server.service.provider import ProviderPayment, ProviderStatus

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=5)
T2 = T0 + timedelta(seconds=10)
DECLINE = Failure("card_declined", "Your card was declined.")


def processing(capture_method: CaptureMethod = CaptureMethod.AUTOMATIC) -> Payment:
    """A payment created and confirmed at T0, its events (created 1, processing 2) taken."""
    payment = new_payment(
        payment_id="pay_01JD0000000000000000000000",
        order_id="order-1",
        user_id="user-1",
        amount=Money("EUR", 5000),
        provider="mock",
        capture_method=capture_method,
        payment_method_id="pm_card_visa",
        description="",
        metadata={},
        now=T0,
    )
    payment.apply(PaymentOp.CONFIRM, T0)
    payment.take_events()
    return payment


def outcome(
    status: ProviderStatus,
    *,
    amount_received: int = 0,
    failure: Failure | None = None,
    provider_payment_id: str = "pi_1",
) -> ProviderPayment:
    return ProviderPayment(provider_payment_id, status, amount_received, failure)


# status -> (state after, event types, failure code) when applied to a PROCESSING payment
EXPECTED: dict[ProviderStatus, tuple[PaymentState, list[str], str]] = {
    ProviderStatus.REQUIRES_PAYMENT_METHOD: (PaymentState.PROCESSING, [], ""),
    ProviderStatus.REQUIRES_CONFIRMATION: (PaymentState.PROCESSING, [], ""),
    ProviderStatus.REQUIRES_ACTION: (PaymentState.REQUIRES_ACTION, ["payment.requires_action"], ""),
    ProviderStatus.PROCESSING: (PaymentState.PROCESSING, [], ""),
    ProviderStatus.REQUIRES_CAPTURE: (PaymentState.REQUIRES_CAPTURE, ["payment.authorized"], ""),
    ProviderStatus.SUCCEEDED: (PaymentState.SUCCEEDED, ["payment.succeeded"], ""),
    ProviderStatus.CANCELED: (PaymentState.CANCELED, ["payment.canceled"], ""),
    ProviderStatus.FAILED: (PaymentState.FAILED, ["payment.failed"], "card_declined"),
}


def snapshot(payment: Payment) -> Payment:
    return copy.deepcopy(payment)


def test_every_provider_status_is_covered() -> None:
    assert set(EXPECTED) == set(ProviderStatus)


def test_the_starting_payment_is_processing_with_two_events_taken() -> None:
    payment = processing()
    assert payment.state is PaymentState.PROCESSING
    assert payment.event_sequence == 2
    assert payment.pending_events == []
    assert payment.provider_payment_id == ""
    assert payment.update_time == T0


@pytest.mark.parametrize("status", list(ProviderStatus))
def test_each_status_from_processing(status: ProviderStatus) -> None:
    payment = processing()
    failure = DECLINE if status is ProviderStatus.FAILED else None
    apply_provider_outcome(payment, outcome(status, amount_received=5000, failure=failure), T1)
    state, event_types, failure_code = EXPECTED[status]
    assert payment.state is state
    assert [event.type for event in payment.pending_events] == event_types
    assert [event.sequence for event in payment.pending_events] == list(
        range(3, 3 + len(event_types))
    )
    assert payment.failure_code == failure_code
    assert payment.provider_payment_id == "pi_1"
    assert payment.update_time == T1


@pytest.mark.parametrize("status", list(ProviderStatus))
def test_applying_the_same_outcome_twice_changes_nothing_the_second_time(
    status: ProviderStatus,
) -> None:
    payment = processing()
    failure = DECLINE if status is ProviderStatus.FAILED else None
    result = outcome(status, amount_received=5000, failure=failure)
    apply_provider_outcome(payment, result, T1)
    before = snapshot(payment)
    apply_provider_outcome(payment, result, T2)
    assert payment == before
    assert payment.pending_events == before.pending_events
    assert payment.update_time == T1


def test_provider_payment_id_is_recorded_once() -> None:
    payment = processing()
    apply_provider_outcome(payment, outcome(ProviderStatus.PROCESSING), T1)
    assert payment.provider_payment_id == "pi_1"
    apply_provider_outcome(
        payment, outcome(ProviderStatus.SUCCEEDED, provider_payment_id="pi_other"), T2
    )
    assert payment.provider_payment_id == "pi_1"
    assert payment.state is PaymentState.SUCCEEDED


def test_a_status_that_keeps_the_state_still_records_the_provider_id() -> None:
    payment = processing()
    before = snapshot(payment)
    apply_provider_outcome(payment, outcome(ProviderStatus.PROCESSING), T1)
    assert payment.provider_payment_id == "pi_1"
    assert payment.update_time == T1
    assert payment.state is before.state
    assert payment.event_sequence == before.event_sequence
    assert payment.pending_events == []


def test_succeeded_records_the_amount_received() -> None:
    payment = processing(CaptureMethod.MANUAL)
    apply_provider_outcome(payment, outcome(ProviderStatus.SUCCEEDED, amount_received=1200), T1)
    assert payment.amount_captured == 1200
    assert [event.type for event in payment.pending_events] == [
        "payment.captured",
        "payment.succeeded",
    ]


def test_failed_without_a_failure_uses_a_generic_one() -> None:
    payment = processing()
    apply_provider_outcome(payment, outcome(ProviderStatus.FAILED), T1)
    assert payment.state is PaymentState.FAILED
    assert payment.failure_code == "processing_error"
    assert payment.failure_message


def test_failed_keeps_the_provider_failure() -> None:
    payment = processing()
    insufficient = Failure("insufficient_funds", "Your card has insufficient funds.")
    apply_provider_outcome(payment, outcome(ProviderStatus.FAILED, failure=insufficient), T1)
    assert (payment.failure_code, payment.failure_message) == (
        "insufficient_funds",
        "Your card has insufficient funds.",
    )


def test_requires_action_then_succeeded() -> None:
    payment = processing()
    apply_provider_outcome(payment, outcome(ProviderStatus.REQUIRES_ACTION), T1)
    apply_provider_outcome(payment, outcome(ProviderStatus.SUCCEEDED, amount_received=5000), T2)
    assert payment.state is PaymentState.SUCCEEDED
    assert payment.amount_captured == 5000
    assert [(event.type, event.sequence) for event in payment.pending_events] == [
        ("payment.requires_action", 3),
        ("payment.succeeded", 4),
    ]


def test_an_existing_provider_id_is_kept_from_the_start() -> None:
    payment = processing()
    payment.provider_payment_id = "pi_known"
    apply_provider_outcome(payment, outcome(ProviderStatus.PROCESSING), T1)
    assert payment.provider_payment_id == "pi_known"
    assert payment.update_time == T0


@pytest.mark.parametrize("state", [PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED])
def test_succeeded_is_a_no_op_for_a_refunded_payment(state: PaymentState) -> None:
    payment = processing()
    apply_provider_outcome(payment, outcome(ProviderStatus.SUCCEEDED, amount_received=5000), T1)
    payment.take_events()
    payment.state = state
    before = snapshot(payment)
    apply_provider_outcome(payment, outcome(ProviderStatus.SUCCEEDED, amount_received=5000), T2)
    assert payment == before
