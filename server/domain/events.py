"""Domain events a payment emits; the outbox stores them with the state change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from server.domain.payment_states import PaymentState
from server.domain.refund import Refund

PAYMENT_SUCCEEDED = "payment.succeeded"
_EVENT_FOR_STATE: dict[PaymentState, str] = {
    PaymentState.PROCESSING: "payment.processing",
    PaymentState.REQUIRES_ACTION: "payment.requires_action",
    PaymentState.REQUIRES_CAPTURE: "payment.authorized",
    PaymentState.SUCCEEDED: PAYMENT_SUCCEEDED,
    PaymentState.FAILED: "payment.failed",
    PaymentState.CANCELED: "payment.canceled",
}
PAYMENT_CREATED = "payment.created"
PAYMENT_CAPTURED = "payment.captured"
# Refund outcomes; their aggregate is the payment, so one sequence orders both.
REFUND_ISSUED = "refund.issued"
REFUND_FAILED = "refund.failed"


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """A change to one payment; the snapshot is taken when the outbox row is written."""

    type: str
    payment_id: str
    sequence: int
    occurred_at: datetime
    reason: str = ""
    # The refund, as it is after the change, of a refund.* event.
    refund: Refund | None = None


def event_types_for(state: PaymentState, manual_capture: bool) -> tuple[str, ...]:
    """The events that announce a payment arriving in `state`."""
    if state is PaymentState.SUCCEEDED and manual_capture:
        return (PAYMENT_CAPTURED, _EVENT_FOR_STATE[state])
    event_type = _EVENT_FOR_STATE.get(state)
    return (event_type,) if event_type else ()
