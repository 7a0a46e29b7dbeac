"""The payment state machine: one declarative table of every allowed move.

Operations that move money (confirm, capture) first persist PROCESSING, so a
crash during the provider call leaves a row the reconciler can resolve by
asking the provider. Cancel moves no money and goes straight to CANCELED once
the provider agrees. PROVIDER_* operations apply what the provider reports,
whether from its answer, the reconciler, a webhook or SimulatePayment.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from server.domain.state_table import StateTable


class PaymentState(StrEnum):
    REQUIRES_PAYMENT_METHOD = "REQUIRES_PAYMENT_METHOD"
    REQUIRES_CONFIRMATION = "REQUIRES_CONFIRMATION"
    REQUIRES_ACTION = "REQUIRES_ACTION"
    PROCESSING = "PROCESSING"
    REQUIRES_CAPTURE = "REQUIRES_CAPTURE"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


class PaymentOp(StrEnum):
    CONFIRM = "confirm"
    CAPTURE = "capture"
    CANCEL = "cancel"
    PROVIDER_REQUIRES_ACTION = "provider_requires_action"
    PROVIDER_AUTHORIZED = "provider_authorized"
    PROVIDER_SUCCEEDED = "provider_succeeded"
    PROVIDER_FAILED = "provider_failed"
    PROVIDER_CANCELED = "provider_canceled"
    REFUND_PARTIAL = "refund_partial"
    REFUND_FULL = "refund_full"


S = PaymentState
_WAITING_ON_PROVIDER = (S.PROCESSING, S.REQUIRES_ACTION)
# The provider is the source of truth for what happened there: its word moves a
# payment forward from any state it may still leave, including a capture or
# cancel made in its dashboard. Before confirmation its word goes through
# CONFIRM first (see service/webhooks/receive.py), so the events tell the whole story.
_CANCELABLE = (
    S.REQUIRES_PAYMENT_METHOD,
    S.REQUIRES_CONFIRMATION,
    S.REQUIRES_ACTION,
    S.REQUIRES_CAPTURE,
)
_REFUNDABLE = (S.SUCCEEDED, S.PARTIALLY_REFUNDED)

# operation -> {from state: to state}; a pair that is absent is not allowed.
TRANSITIONS: Mapping[PaymentOp, Mapping[PaymentState, PaymentState]] = MappingProxyType(
    {
        PaymentOp.CONFIRM: {
            S.REQUIRES_PAYMENT_METHOD: S.PROCESSING,
            S.REQUIRES_CONFIRMATION: S.PROCESSING,
            S.REQUIRES_ACTION: S.PROCESSING,
        },
        PaymentOp.CAPTURE: {S.REQUIRES_CAPTURE: S.PROCESSING},
        PaymentOp.CANCEL: dict.fromkeys(_CANCELABLE, S.CANCELED),
        PaymentOp.PROVIDER_REQUIRES_ACTION: {S.PROCESSING: S.REQUIRES_ACTION},
        PaymentOp.PROVIDER_AUTHORIZED: dict.fromkeys(_WAITING_ON_PROVIDER, S.REQUIRES_CAPTURE),
        PaymentOp.PROVIDER_SUCCEEDED: dict.fromkeys(
            (*_WAITING_ON_PROVIDER, S.REQUIRES_CAPTURE), S.SUCCEEDED
        ),
        # Also before confirmation: the provider may refuse a payment outright.
        PaymentOp.PROVIDER_FAILED: dict.fromkeys(
            (*_CANCELABLE[:2], *_WAITING_ON_PROVIDER), S.FAILED
        ),
        PaymentOp.PROVIDER_CANCELED: dict.fromkeys((*_CANCELABLE, S.PROCESSING), S.CANCELED),
        PaymentOp.REFUND_PARTIAL: dict.fromkeys(_REFUNDABLE, S.PARTIALLY_REFUNDED),
        PaymentOp.REFUND_FULL: dict.fromkeys(_REFUNDABLE, S.REFUNDED),
    }
)

# No payment ever leaves these, so they never count against an order.
DEAD_STATES = frozenset({S.FAILED, S.CANCELED})
# The provider still calls these "succeeded": the money was taken, refunds aside.
CHARGED_STATES = frozenset({S.SUCCEEDED, S.PARTIALLY_REFUNDED, S.REFUNDED})
FINAL_STATES = frozenset({S.FAILED, S.CANCELED, S.REFUNDED})


# What the caller asked for, in the API's words: error messages never name an operation
# (refund_partial) that exists only in this table.
_ASKED = MappingProxyType(
    {
        PaymentOp.CONFIRM: "confirmed",
        PaymentOp.CAPTURE: "captured",
        PaymentOp.CANCEL: "canceled",
        PaymentOp.PROVIDER_REQUIRES_ACTION: "sent to the customer for authentication",
        PaymentOp.PROVIDER_AUTHORIZED: "authorized",
        PaymentOp.PROVIDER_SUCCEEDED: "marked succeeded",
        PaymentOp.PROVIDER_FAILED: "marked failed",
        PaymentOp.PROVIDER_CANCELED: "marked canceled",
        PaymentOp.REFUND_PARTIAL: "refunded",
        PaymentOp.REFUND_FULL: "refunded",
    }
)


PAYMENT_STATES = StateTable(
    TRANSITIONS,
    lambda state, op: f"a payment in state {state.value} cannot be {_ASKED[op]}",
    reason="INVALID_PAYMENT_STATE",
)
next_state = PAYMENT_STATES.next
