"""The Payment aggregate: its data, its moves through the state table, its events."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from server.domain.errors import FailedPrecondition, FieldViolation, InvalidArgument
from server.domain.events import (
    PAYMENT_CREATED,
    REFUND_FAILED,
    REFUND_ISSUED,
    PaymentEvent,
    event_types_for,
)
from server.domain.money import Money
from server.domain.payment_states import DEAD_STATES, PaymentOp, PaymentState, next_state
from server.domain.reconciliation import first_check
from server.domain.refund import Refund


class CaptureMethod(StrEnum):
    AUTOMATIC = "AUTOMATIC"
    MANUAL = "MANUAL"


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a payment failed: the provider's decline code and a customer-safe message."""

    code: str
    message: str


@dataclass(slots=True)
class Payment:
    id: str
    order_id: str
    user_id: str
    amount: Money
    state: PaymentState
    provider: str
    capture_method: CaptureMethod
    create_time: datetime
    update_time: datetime
    provider_payment_id: str = ""
    payment_method_id: str = ""
    amount_captured: int = 0
    amount_refunded: int = 0
    failure_code: str = ""
    failure_message: str = ""
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    # When the provider first took the money; the refund window counts from it.
    capture_time: datetime | None = None
    # Count of events emitted so far: the next event's per-payment sequence,
    # and the compare-and-set version for concurrent writers.
    event_sequence: int = field(default=0, compare=False)
    # The janitor's schedule while the payment waits on the provider.
    reconcile_attempts: int = field(default=0, compare=False)
    next_reconcile_time: datetime | None = field(default=None, compare=False)
    pending_events: list[PaymentEvent] = field(default_factory=list, compare=False)

    def __deepcopy__(self, memo: dict[int, object]) -> Payment:
        # All else is immutable (strings, numbers, datetimes, Money, frozen events): a new
        # dict and list share nothing that changes, at a tenth of a generic deepcopy.
        twin = copy.copy(self)
        twin.metadata = dict(self.metadata)
        twin.pending_events = list(self.pending_events)
        return twin

    @property
    def is_live(self) -> bool:
        return self.state not in DEAD_STATES

    @property
    def captured(self) -> Money:
        return Money(self.amount.currency_code, self.amount_captured)

    @property
    def refunded(self) -> Money:
        return Money(self.amount.currency_code, self.amount_refunded)

    def apply(self, op: PaymentOp, now: datetime, *, reason: str = "") -> None:
        """Move by `op` (FailedPrecondition if the table forbids it) and record its events."""
        self._move(next_state(self.state, op), now, reason)

    def _move(self, state: PaymentState, now: datetime, reason: str = "") -> None:
        self.state = state
        self.reconcile_attempts = 0
        self.next_reconcile_time = first_check(state, now)
        self.update_time = now
        self.record(now, reason=reason)

    def record(self, now: datetime, *, reason: str = "") -> None:
        """Emit the events that announce the payment's current state."""
        for event_type in event_types_for(self.state, self.capture_method == CaptureMethod.MANUAL):
            self._emit(event_type, now, reason=reason)

    def succeed(self, now: datetime, amount_received: int | None) -> None:
        """The provider took the money: all of it, or `amount_received` of a partial capture."""
        target = next_state(self.state, PaymentOp.PROVIDER_SUCCEEDED)
        received = self.amount.minor_units if amount_received is None else amount_received
        self.amount_captured = min(received, self.amount.minor_units)
        if self.capture_time is None:
            self.capture_time = now
        self._move(target, now)

    def fail(self, now: datetime, failure: Failure) -> None:
        target = next_state(self.state, PaymentOp.PROVIDER_FAILED)
        self.failure_code = failure.code
        self.failure_message = failure.message
        self._move(target, now)

    @property
    def refundable(self) -> int:
        """What is captured and not yet refunded (pending refunds aside)."""
        return self.amount_captured - self.amount_refunded

    def refund(self, amount: Money, now: datetime, *, refund: Refund | None = None) -> None:
        """Record `amount` as given back: PARTIALLY_REFUNDED, or REFUNDED once all of it is.

        Never more than was captured; the event (refund.issued) always moves
        the sequence, so concurrent writers of the payment notice.
        """
        if amount.currency_code != self.amount.currency_code:
            raise InvalidArgument(
                [FieldViolation("amount.currency_code", "must be the payment's currency")]
            )
        if amount.minor_units <= 0:
            raise InvalidArgument([FieldViolation("amount.minor_units", "must be positive")])
        total = self.amount_refunded + amount.minor_units
        if total > self.amount_captured:
            raise FailedPrecondition(
                f"refunding {amount.minor_units} would exceed the captured "
                f"{self.amount_captured} (already refunded {self.amount_refunded})",
                reason="REFUND_EXCEEDS_CAPTURED",
                metadata={"refundable": str(self.refundable)},
            )
        op = PaymentOp.REFUND_FULL if total == self.amount_captured else PaymentOp.REFUND_PARTIAL
        self.state = next_state(self.state, op)
        self.amount_refunded = total
        self.update_time = now
        self._emit(REFUND_ISSUED, now, refund=refund)

    def refund_failed(self, refund: Refund, now: datetime) -> None:
        """A refund of this payment failed: no money moved, but the event is the payment's."""
        self.update_time = now
        self._emit(REFUND_FAILED, now, refund=refund)

    def _emit(
        self, event_type: str, now: datetime, *, refund: Refund | None = None, reason: str = ""
    ) -> None:
        self.event_sequence += 1
        self.pending_events.append(
            PaymentEvent(
                type=event_type,
                payment_id=self.id,
                sequence=self.event_sequence,
                occurred_at=now,
                reason=reason,
                refund=refund,
            )
        )

    def take_events(self) -> list[PaymentEvent]:
        events, self.pending_events = self.pending_events, []
        return events


def new_payment(
    *,
    payment_id: str,
    order_id: str,
    user_id: str,
    amount: Money,
    provider: str,
    capture_method: CaptureMethod,
    payment_method_id: str,
    description: str,
    metadata: dict[str, str],
    now: datetime,
) -> Payment:
    """A new payment, not yet known to the provider; confirming it is a later step."""
    state = (
        PaymentState.REQUIRES_CONFIRMATION
        if payment_method_id
        else PaymentState.REQUIRES_PAYMENT_METHOD
    )
    payment = Payment(
        id=payment_id,
        order_id=order_id,
        user_id=user_id,
        amount=amount,
        state=state,
        provider=provider,
        capture_method=capture_method,
        create_time=now,
        update_time=now,
        payment_method_id=payment_method_id,
        description=description,
        metadata=metadata,
        next_reconcile_time=first_check(state, now),
    )
    payment.event_sequence = 1
    payment.pending_events.append(
        PaymentEvent(type=PAYMENT_CREATED, payment_id=payment_id, sequence=1, occurred_at=now)
    )
    return payment
