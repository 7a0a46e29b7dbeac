"""The refund janitor: settle refunds left PENDING by a crash, a timeout or a slow provider.

A refund the provider never answered for (no provider id) is sent again with
the same provider key, which the provider deduplicates, so it cannot refund
twice; one it answered "pending" for is looked up. Past the provider's key
lifetime a resend could refund twice, so such refunds are left to an operator.
Each refund is handled under its payment's row lock (skipped when another
instance holds it), the same lock CreateRefund takes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from server.domain.errors import ProviderUnavailable
from server.domain.refund import Refund, RefundState
from server.service.dependencies import Dependencies
from server.service.provider import (
    ProviderRefund,
    ProviderRefundStatus,
    ProviderRejected,
)
from server.service.refunds.provider_outcomes import apply_refund_outcome

_log = logging.getLogger(__name__)
# A refund this quiet is no longer in the hands of the call that created it.
STALE_AFTER = timedelta(minutes=1)
# Stripe keeps idempotency keys for 24 hours; resend only well within that.
RESEND_WITHIN = timedelta(hours=23)


@dataclass(frozen=True, slots=True)
class RefundReconcileReport:
    checked: int = 0
    changed: tuple[str, ...] = field(default=())
    unresolved: tuple[str, ...] = field(default=())


def provider_key(refund: Refund) -> str:
    """The refund's Idempotency-Key at the provider: one per refund, for every attempt."""
    return f"{refund.id}:refund"


async def reconcile_refunds(
    deps: Dependencies, *, stale_after: timedelta = STALE_AFTER, limit: int = 100
) -> RefundReconcileReport:
    """One pass over PENDING refunds untouched for `stale_after`."""
    async with deps.uow(read_only=True) as uow:
        pending = await uow.refunds.pending_before(deps.clock.now() - stale_after, limit)
    checked, changed, unresolved = 0, list[str](), list[str]()
    for refund_id, payment_id in pending:
        outcome = await _reconcile_one(deps, refund_id, payment_id, stale_after)
        if outcome is None:
            continue
        checked += 1
        (changed if outcome else unresolved).append(refund_id)
    if checked:
        _log.info(
            "reconciled %d refunds: %d settled, %d still pending",
            checked,
            len(changed),
            len(unresolved),
        )
    return RefundReconcileReport(checked, tuple(changed), tuple(unresolved))


async def _reconcile_one(
    deps: Dependencies, refund_id: str, payment_id: str, stale_after: timedelta
) -> bool | None:
    """True: settled; False: still pending; None: not ours to handle now."""
    async with deps.uow() as uow:
        payment = await uow.payments.get(payment_id, for_update=True, skip_locked=True)
        refund = await uow.refunds.get(refund_id, for_update=True) if payment else None
        now = deps.clock.now()
        if payment is None or refund is None or refund.state is not RefundState.PENDING:
            return None
        if refund.update_time > now - stale_after:
            return None
        result = await _ask_provider(deps, payment.provider_payment_id, refund)
        expected = payment.event_sequence
        if result is None:
            refund.update_time = now  # checked: wait another interval before asking again
        else:
            apply_refund_outcome(payment, refund, result, now)
        await uow.refunds.save(refund)
        if payment.pending_events:
            await uow.payments.save(payment, expected)
        await uow.commit()
    return refund.state is not RefundState.PENDING


async def _ask_provider(
    deps: Dependencies, provider_payment_id: str, refund: Refund
) -> ProviderRefund | None:
    try:
        if refund.provider_refund_id:
            return await deps.provider.retrieve_refund(refund.provider_refund_id)
        if deps.clock.now() - refund.create_time > RESEND_WITHIN:
            _log.error(
                "refund %s has waited since %s with no answer from the provider; "
                "an operator must check it at the provider",
                refund.id,
                refund.create_time.isoformat(),
            )
            return None
        return await deps.provider.refund_payment(
            provider_payment_id, refund.amount.minor_units, provider_key(refund)
        )
    except ProviderRejected as rejected:
        _log.warning("the provider refused refund %s: %s", refund.id, rejected.message)
        return ProviderRefund(refund.provider_refund_id, ProviderRefundStatus.FAILED, None)
    except ProviderUnavailable:
        return None
