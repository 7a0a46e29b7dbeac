"""CreateRefund: give money back without ever refunding more than was captured.

1. One transaction claims the idempotency key, locks the payment row, checks
   that the PENDING and SUCCEEDED refunds plus this one stay within the
   captured amount, and records the refund PENDING. The lock serialises racing
   refunds of one payment, so the check cannot be outrun.
2. The provider call, keyed by the refund id, so a retry never refunds twice.
3. One transaction marks the refund SUCCEEDED (the payment moves to
   PARTIALLY_REFUNDED or REFUNDED) or FAILED (its amount is free again), writes
   refund.issued / refund.failed to the outbox with the payment's next
   sequence, and stores the response for replays.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from server.adapters.codec import decode_refund, encode_refund
from server.adapters.providers.base import ProviderRefund, ProviderRefundStatus, ProviderRejected
from server.domain.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ProviderUnavailable,
    Validator,
)
from server.domain.ids import REFUND_ID
from server.domain.money import Money, check_amount
from server.domain.payment import Payment
from server.domain.payment_states import PaymentOp, next_state
from server.domain.refund import Refund, RefundState, new_refund
from server.domain.refund_window import check_refund_window
from server.service.commands import (
    MAX_REASON,
    AmountInput,
    check_payment_id,
    check_request_id,
    check_text,
)
from server.service.dependencies import Dependencies
from server.service.idempotency import Scope, claim, fingerprint
from server.service.reconcile_refunds import provider_key
from server.service.refund_outcomes import apply_refund_outcome
from server.service.refund_window import check_window_override
from server.service.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class CreateRefund:
    request_id: str
    payment_id: str
    amount: AmountInput | None = None
    reason: str = ""
    # An admin's reason to refund past the refund window; None: the window holds.
    window_override_reason: str | None = None


@dataclass(frozen=True, slots=True)
class RefundOutcome:
    refund: Refund
    replayed: bool = False


def _validate(command: CreateRefund) -> Money | None:
    validator = Validator()
    check_request_id(validator, command.request_id, required=True)
    check_payment_id(validator, command.payment_id, "payment_id")
    amount = None
    if command.amount is not None:
        amount = check_amount(
            validator, "amount", command.amount.currency_code, command.amount.minor_units
        )
    check_text(validator, "reason", command.reason, MAX_REASON)
    check_window_override(validator, command.window_override_reason)
    validator.raise_if_any()
    return amount


async def _locked_payment(uow: UnitOfWork, payment_id: str) -> Payment:
    payment = await uow.payments.get(payment_id, for_update=True)
    if payment is None:
        raise NotFound(f"payment {payment_id} not found", reason="PAYMENT_NOT_FOUND")
    return payment


async def _reserve(
    deps: Dependencies, uow: UnitOfWork, command: CreateRefund, requested: Money | None, rid: str
) -> Refund:
    """Record the refund PENDING, under the payment's row lock, if it fits."""
    payment = await _locked_payment(uow, command.payment_id)
    # Only SUCCEEDED and PARTIALLY_REFUNDED payments refund (the state table says so).
    next_state(payment.state, PaymentOp.REFUND_PARTIAL)
    overridden = command.window_override_reason is not None
    check_refund_window(
        payment.capture_time, deps.clock.now(), deps.refund_window, overridden=overridden
    )
    currency = payment.amount.currency_code
    if requested is not None and requested.currency_code != currency:
        raise InvalidArgument(
            [FieldViolation("amount.currency_code", f"must be the payment's currency, {currency}")]
        )
    if requested is not None and requested.minor_units > payment.amount_captured:
        raise InvalidArgument(
            [
                FieldViolation(
                    "amount.minor_units",
                    f"must be at most the captured {payment.amount_captured}",
                )
            ],
            reason="REFUND_EXCEEDS_CAPTURED",
        )
    left = payment.amount_captured - await uow.refunds.reserved_amount(payment.id)
    amount = requested.minor_units if requested is not None else left
    if left <= 0 or amount > left:
        raise FailedPrecondition(
            f"only {max(left, 0)} of the payment can still be refunded",
            reason="REFUND_EXCEEDS_REFUNDABLE",
            metadata={"refundable": str(max(left, 0)), "payment_id": payment.id},
        )
    refund = new_refund(
        refund_id=rid,
        payment_id=payment.id,
        amount=Money(currency, amount),
        provider=payment.provider,
        reason=command.reason,
        now=deps.clock.now(),
        window_override_reason=command.window_override_reason or "",
    )
    await uow.refunds.add(refund)
    return refund


async def create_refund(deps: Dependencies, caller: str, command: CreateRefund) -> RefundOutcome:
    requested = _validate(command)
    amount = command.amount
    scope = Scope(
        caller,
        command.request_id,
        "CreateRefund",
        fingerprint(
            "CreateRefund",
            {
                "payment_id": command.payment_id,
                "amount": [amount.currency_code, amount.minor_units] if amount else None,
                "reason": command.reason,
                "window_override_reason": command.window_override_reason,
            },
        ),
    )
    new_id = REFUND_ID.new()
    async with deps.uow() as uow:
        claimed = await claim(uow, scope, deps.clock.now(), deps.idempotency, new_id)
        if claimed.replay is not None:
            return RefundOutcome(decode_refund(claimed.replay), replayed=True)
        deps.provider.ensure_available()
        refund = None
        if claimed.resource_id is not None:
            refund = await uow.refunds.get(claimed.resource_id)
        if refund is None:
            refund = await _reserve(deps, uow, command, requested, claimed.resource_id or new_id)
        await uow.commit()
    settle = _settle(deps, scope, refund)
    return await asyncio.shield(asyncio.ensure_future(settle))


async def _settle(deps: Dependencies, scope: Scope, refund: Refund) -> RefundOutcome:
    if refund.state is not RefundState.PENDING:
        return RefundOutcome(await _record(deps, scope, refund, None))
    payment_id = refund.payment_id
    try:
        async with deps.uow(read_only=True) as uow:
            payment = await uow.payments.get(payment_id)
        assert payment is not None
        result = await deps.provider.refund_payment(
            payment.provider_payment_id, refund.amount.minor_units, provider_key(refund)
        )
    except ProviderRejected as rejected:
        refused = ProviderRefund(
            refund.provider_refund_id,
            ProviderRefundStatus.FAILED,
            None,
        )
        await _record(deps, scope, refund, refused, rejected=rejected)
        raise FailedPrecondition(
            f"the provider refused the refund: {rejected.message}", reason="PROVIDER_REJECTED"
        ) from None
    except ProviderUnavailable:
        # Outcome unknown: the refund stays PENDING (its amount reserved); a retry
        # with the same request_id resumes it with the same provider key.
        await _release(deps, scope)
        raise
    except BaseException:
        await _release(deps, scope)
        raise
    return RefundOutcome(await _record(deps, scope, refund, result))


async def _record(
    deps: Dependencies,
    scope: Scope,
    refund: Refund,
    result: ProviderRefund | None,
    *,
    rejected: ProviderRejected | None = None,
) -> Refund:
    """Apply the provider's answer to the refund and its payment, and settle the key."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        payment = await _locked_payment(uow, refund.payment_id)
        current = await uow.refunds.get(refund.id, for_update=True)
        assert current is not None
        if result is not None:
            expected = payment.event_sequence
            apply_refund_outcome(payment, current, result, now, rejected=rejected)
            await uow.refunds.save(current)
            if payment.pending_events:
                await uow.payments.save(payment, expected)
        if rejected is not None:
            await uow.idempotency_keys.delete(scope.caller, scope.request_id)
        else:
            await uow.idempotency_keys.complete(
                scope.caller, scope.request_id, current.id, encode_refund(current)
            )
        await uow.commit()
    return current


async def _release(deps: Dependencies, scope: Scope) -> None:
    async with deps.uow() as uow:
        await uow.idempotency_keys.release(scope.caller, scope.request_id)
        await uow.commit()
