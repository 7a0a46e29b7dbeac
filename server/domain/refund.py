"""The Refund entity: money given back for (part of) a payment, and its state table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from server.domain.money import Money
from server.domain.state_table import StateTable, not_allowed


class RefundState(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class RefundOp(StrEnum):
    PROVIDER_SUCCEEDED = "provider_succeeded"
    PROVIDER_FAILED = "provider_failed"
    CANCEL = "cancel"


R = RefundState
# operation -> {from state: to state}; a pair that is absent is not allowed.
REFUND_TRANSITIONS: Mapping[RefundOp, Mapping[RefundState, RefundState]] = MappingProxyType(
    {
        RefundOp.PROVIDER_SUCCEEDED: {R.PENDING: R.SUCCEEDED},
        RefundOp.PROVIDER_FAILED: {R.PENDING: R.FAILED},
        RefundOp.CANCEL: {R.PENDING: R.CANCELED},
    }
)
# The refunds whose amount counts against what a payment can still refund.
RESERVING_STATES = frozenset({R.PENDING, R.SUCCEEDED})


REFUND_STATES = StateTable(REFUND_TRANSITIONS, not_allowed("refund"), reason="INVALID_REFUND_STATE")
next_refund_state = REFUND_STATES.next


@dataclass(slots=True)
class Refund:
    id: str
    payment_id: str
    amount: Money
    state: RefundState
    provider: str
    create_time: datetime
    update_time: datetime
    reason: str = ""
    provider_refund_id: str = ""
    failure_code: str = ""
    failure_message: str = ""
    # Set when an admin refunded past the refund window: their reason.
    window_override_reason: str = ""

    def succeed(self, provider_refund_id: str, now: datetime) -> None:
        self.state = next_refund_state(self.state, RefundOp.PROVIDER_SUCCEEDED)
        self.provider_refund_id = provider_refund_id or self.provider_refund_id
        self.update_time = now

    def fail(self, provider_refund_id: str, code: str, message: str, now: datetime) -> None:
        self.state = next_refund_state(self.state, RefundOp.PROVIDER_FAILED)
        self.provider_refund_id = provider_refund_id or self.provider_refund_id
        self.failure_code = code
        self.failure_message = message
        self.update_time = now

    def cancel(self, provider_refund_id: str, now: datetime) -> None:
        self.state = next_refund_state(self.state, RefundOp.CANCEL)
        self.provider_refund_id = provider_refund_id or self.provider_refund_id
        self.update_time = now


def new_refund(
    *,
    refund_id: str,
    payment_id: str,
    amount: Money,
    provider: str,
    reason: str,
    now: datetime,
    window_override_reason: str = "",
) -> Refund:
    """A refund recorded before the provider hears of it: PENDING, its amount reserved."""
    return Refund(
        id=refund_id,
        payment_id=payment_id,
        amount=amount,
        state=RefundState.PENDING,
        provider=provider,
        create_time=now,
        update_time=now,
        reason=reason,
        window_override_reason=window_override_reason,
    )
