"""Tests for applying what the provider reports about a refund to the refund and its payment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.domain.money import Money
from server.domain.payment import CaptureMethod, Failure, Payment, new_payment
from server.domain.payment_states import PaymentOp, PaymentState
from server.domain.refund import Refund, RefundState, new_refund
from server.service.provider import ProviderRefund, ProviderRefundStatus, ProviderRejected
from server.service.refunds.provider_outcomes import apply_refund_outcome

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=5)


def charged() -> Payment:
    payment = new_payment(
        payment_id="pay_01JD0000000000000000000000",
        order_id="order-1",
        user_id="user-1",
        amount=Money("EUR", 5000),
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


def pending(provider_refund_id: str = "") -> Refund:
    refund = new_refund(
        refund_id="ref_01JD0000000000000000000000",
        payment_id="pay_01JD0000000000000000000000",
        amount=Money("EUR", 1200),
        provider="mock",
        reason="",
        now=T0,
    )
    refund.provider_refund_id = provider_refund_id
    return refund


@pytest.mark.parametrize(
    ("failure", "rejected", "code", "message"),
    [
        (None, None, "refund_failed", "The refund failed."),
        (
            Failure("expired_or_canceled_card", "The card expired."),
            None,
            "expired_or_canceled_card",
            "The card expired.",
        ),
        (
            None,
            ProviderRejected("Refund exceeds the charge."),
            "provider_rejected",
            "Refund exceeds the charge.",
        ),
        (
            None,
            ProviderRejected("No such charge.", code="resource_missing"),
            "resource_missing",
            "No such charge.",
        ),
        (Failure("card_declined", "x" * 600), None, "card_declined", "x" * 500),
    ],
)
def test_a_failed_refund_says_why_and_frees_its_amount(
    failure: Failure | None, rejected: ProviderRejected | None, code: str, message: str
) -> None:
    payment, refund = charged(), pending()
    result = ProviderRefund("re_1", ProviderRefundStatus.FAILED, failure)
    assert apply_refund_outcome(payment, refund, result, T1, rejected=rejected)
    assert (refund.state, refund.failure_code, refund.failure_message) == (
        RefundState.FAILED,
        code,
        message,
    )
    assert (refund.provider_refund_id, refund.update_time) == ("re_1", T1)
    assert payment.amount_refunded == 0
    assert [event.type for event in payment.take_events()] == ["refund.failed"]


def test_a_succeeded_refund_counts_against_the_payment() -> None:
    payment, refund = charged(), pending()
    assert apply_refund_outcome(
        payment, refund, ProviderRefund("re_1", ProviderRefundStatus.SUCCEEDED), T1
    )
    assert (refund.state, refund.provider_refund_id) == (RefundState.SUCCEEDED, "re_1")
    assert (payment.state, payment.amount_refunded) == (PaymentState.PARTIALLY_REFUNDED, 1200)
    assert [event.type for event in payment.take_events()] == ["refund.issued"]


def test_a_canceled_refund_frees_its_amount() -> None:
    payment, refund = charged(), pending()
    assert apply_refund_outcome(
        payment, refund, ProviderRefund("re_1", ProviderRefundStatus.CANCELED), T1
    )
    assert (refund.state, refund.provider_refund_id) == (RefundState.CANCELED, "re_1")
    assert payment.amount_refunded == 0
    (event,) = payment.take_events()
    assert (event.type, event.refund) == ("refund.failed", refund)


@pytest.mark.parametrize(
    ("known", "told", "kept", "changed"),
    [("", "re_1", "re_1", True), ("re_1", "re_1", "re_1", False), ("re_1", "", "re_1", True)],
)
def test_a_still_pending_refund_only_learns_its_provider_id(
    known: str, told: str, kept: str, changed: bool
) -> None:
    payment, refund = charged(), pending(known)
    result = ProviderRefund(told, ProviderRefundStatus.PENDING)
    assert apply_refund_outcome(payment, refund, result, T1) is changed
    assert (refund.state, refund.provider_refund_id, refund.update_time) == (
        RefundState.PENDING,
        kept,
        T1,
    )
    assert payment.take_events() == []


def test_a_settled_refund_is_left_alone() -> None:
    payment, refund = charged(), pending()
    refund.fail("re_1", "refund_failed", "no", T0)
    result = ProviderRefund("re_1", ProviderRefundStatus.SUCCEEDED)
    assert not apply_refund_outcome(payment, refund, result, T1)
    assert (refund.state, refund.update_time, payment.amount_refunded) == (
        RefundState.FAILED,
        T0,
        0,
    )
