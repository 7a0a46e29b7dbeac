"""Stripe's webhook bodies become neutral provider events in the adapter."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from server.adapters.providers.stripe_events import StripeEvents
from server.service.provider import (
    DisputeReport,
    MalformedWebhookEvent,
    PaymentReport,
    ProviderStatus,
    RefundReport,
    SubscriptionNews,
    SubscriptionReport,
)
from server.service.webhooks.rejections import MAX_DEPTH, TooDeep


def body(event_type: str, obj: dict[str, Any]) -> str:
    return json.dumps({"id": "evt_1", "type": event_type, "data": {"object": obj}})


def test_a_payment_intent_event_is_a_payment_report() -> None:
    intent = {
        "id": "pi_1",
        "object": "payment_intent",
        "status": "succeeded",
        "amount_received": 700,
        "metadata": {"payment_id": "pay_1"},
    }
    event = StripeEvents().parse(body("payment_intent.succeeded", intent))
    assert (event.provider, event.id, event.type) == ("stripe", "evt_1", "payment_intent.succeeded")
    report = event.read_report()
    assert isinstance(report, PaymentReport)
    assert (report.provider_payment_id, report.payment_id) == ("pi_1", "pay_1")
    assert report.reported.status is ProviderStatus.SUCCEEDED
    assert report.reported.amount_received == 700


def test_payment_failed_without_an_error_is_a_failure_with_an_unknown_code() -> None:
    intent = {"id": "pi_1", "object": "payment_intent", "status": "requires_payment_method"}
    report = StripeEvents().parse(body("payment_intent.payment_failed", intent)).read_report()
    assert isinstance(report, PaymentReport)
    assert report.reported.status is ProviderStatus.FAILED


def test_a_refund_event_is_a_refund_report() -> None:
    refund = {"id": "re_1", "object": "refund", "status": "succeeded"}
    report = StripeEvents().parse(body("charge.refund.updated", refund)).read_report()
    assert isinstance(report, RefundReport)
    assert report.provider_refund_id == "re_1"


def test_a_refund_we_asked_for_names_our_refund_and_one_made_at_stripe_its_payment() -> None:
    ours = {
        "id": "re_1",
        "object": "refund",
        "status": "succeeded",
        "payment_intent": "pi_1",
        "amount": 300,
        "metadata": {"idempotency_key": "ref_1:refund"},
    }
    report = StripeEvents().parse(body("refund.updated", ours)).read_report()
    assert isinstance(report, RefundReport)
    assert (report.refund_id, report.provider_payment_id, report.amount) == ("ref_1", "pi_1", 300)
    elsewhere = {**ours, "metadata": {}, "amount": "300"}
    report = StripeEvents().parse(body("refund.created", elsewhere)).read_report()
    assert isinstance(report, RefundReport)
    assert (report.refund_id, report.provider_payment_id, report.amount) == ("", "pi_1", None)


@pytest.mark.parametrize(("status", "lost"), [("lost", True), ("won", False)])
def test_a_closed_dispute_is_a_dispute_report(status: str, lost: bool) -> None:
    dispute = {
        "id": "dp_1",
        "object": "dispute",
        "status": status,
        "payment_intent": "pi_1",
        "amount": 500,
    }
    report = StripeEvents().parse(body("charge.dispute.closed", dispute)).read_report()
    assert report == DisputeReport("dp_1", "pi_1", 500, lost=lost)


def test_a_nul_anywhere_in_the_event_is_a_content_problem_found_when_parsed() -> None:
    clean = StripeEvents().parse(body("refund.updated", {"id": "re_1", "object": "refund"}))
    assert clean.problem is None
    dirty = StripeEvents().parse(body("refund.updated", {"id": "re_\u0000", "note": "a\u0000"}))
    assert dirty.problem == "a string in the event holds a NUL character"


def test_a_body_nested_too_deep_is_refused_before_json_reads_it() -> None:
    deep = (
        '{"id": "evt_1", "type": "x", "data": '
        + "[" * (MAX_DEPTH + 1)
        + "]" * (MAX_DEPTH + 1)
        + "}"
    )
    with pytest.raises(TooDeep):
        StripeEvents().parse(deep)


def test_a_paid_invoice_names_its_subscription_and_period() -> None:
    invoice = {
        "object": "invoice",
        "amount_paid": 900,
        "parent": {"subscription_details": {"subscription": "sub_1"}},
        "lines": {"data": [{"period": {"start": 1764547200, "end": 1767225600}}]},
    }
    report = StripeEvents().parse(body("invoice.paid", invoice)).read_report()
    assert isinstance(report, SubscriptionReport)
    assert report.news is SubscriptionNews.PERIOD_PAID
    assert report.provider_subscription_id == "sub_1"
    assert report.period == (
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert report.amount_paid == 900


def test_an_event_about_nothing_of_ours_has_no_report() -> None:
    assert StripeEvents().parse(body("customer.created", {"id": "cus_1"})).read_report() is None


@pytest.mark.parametrize("raw", ["not json", "[]", json.dumps({"id": "evt_1"}), b"\xff"])
def test_a_body_that_is_not_an_event_is_malformed(raw: str | bytes) -> None:
    with pytest.raises(MalformedWebhookEvent):
        StripeEvents().parse(raw)


def test_an_object_the_adapter_cannot_read_fails_when_it_is_applied_not_when_parsed() -> None:
    intent = {"id": "pi_1", "status": "succeeded", "amount_received": "lots"}
    event = StripeEvents().parse(body("payment_intent.succeeded", intent))
    with pytest.raises(ValueError, match="lots"):
        event.read_report()  # raised inside the apply: the event is rejected (content)
