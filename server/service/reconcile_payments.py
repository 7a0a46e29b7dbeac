"""The janitor: ask the provider about payments that wait on it, and apply its answer.

Each payment is re-read under a row lock (skipped if another instance holds
it), so several instances can run passes at once without doing one twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from server.adapters.providers.base import ProviderRejected
from server.domain.errors import ProviderUnavailable
from server.domain.payment import Payment
from server.domain.payment_states import PaymentState
from server.domain.reconciliation import WAITING, WAITING_ON_PROVIDER, next_check
from server.observability.metrics import reconciler_outcomes
from server.service.dependencies import Dependencies
from server.service.provider_outcomes import apply_provider_outcome
from server.service.waiting_payments import (
    NEVER_CONFIRMED,
    NEVER_HEARD_OF,
    UNCONFIRMED,
    finish_abandoned,
    next_look,
)

_log = logging.getLogger(__name__)


class Verdict(Enum):
    SKIPPED = "skipped"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    UNRESOLVED = "unresolved"


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    checked: int = 0
    changed: tuple[str, ...] = field(default=())
    unresolved: tuple[str, ...] = field(default=())


async def reconcile_payments(
    deps: Dependencies, *, include_not_due: bool = False, limit: int = 100
) -> ReconcileReport:
    """One pass over the payments whose check is due (or all that wait, if asked)."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        ids = await uow.payments.due_for_reconciliation(None if include_not_due else now, limit)
    checked, changed, unresolved = 0, [], []
    for payment_id in ids:
        verdict = await _reconcile_one(deps, payment_id, include_not_due)
        reconciler_outcomes.add(1, {"result": verdict.name.lower()})
        checked += verdict is not Verdict.SKIPPED
        if verdict is Verdict.CHANGED:
            changed.append(payment_id)
        elif verdict is not Verdict.SKIPPED:
            unresolved.append(payment_id)
    if checked:
        _log.info(
            "reconciled %d payments: %d changed, %d unresolved",
            checked,
            len(changed),
            len(unresolved),
        )
    return ReconcileReport(checked, tuple(changed), tuple(unresolved))


async def _reconcile_one(deps: Dependencies, payment_id: str, include_not_due: bool) -> Verdict:
    async with deps.uow() as uow:
        payment = await uow.payments.get(payment_id, for_update=True, skip_locked=True)
        now = deps.clock.now()
        if payment is None or payment.state not in WAITING:
            return Verdict.SKIPPED
        due = payment.next_reconcile_time is not None and payment.next_reconcile_time <= now
        if not (due or include_not_due):
            return Verdict.SKIPPED
        expected = payment.event_sequence
        verdict = await _look_at(deps, payment, now)
        if verdict is not Verdict.CHANGED:
            payment.reconcile_attempts += 1
            payment.next_reconcile_time = next_look(
                payment, now, next_check(payment.reconcile_attempts, now)
            )
        await uow.payments.save(payment, expected)
        await uow.commit()
    return verdict


async def _look_at(deps: Dependencies, payment: Payment, now: datetime) -> Verdict:
    finished = await finish_abandoned(deps, payment, now)
    if finished is not None:
        return Verdict.CHANGED if finished else Verdict.UNRESOLVED
    if payment.state not in WAITING_ON_PROVIDER or not payment.provider_payment_id:
        return Verdict.UNCHANGED  # waits on the customer, or its stranding is not due yet
    return await _ask_provider(deps, payment)


async def _ask_provider(deps: Dependencies, payment: Payment) -> Verdict:
    now = deps.clock.now()
    before = payment.state
    try:
        truth = await deps.provider.retrieve_payment(payment.provider_payment_id)
    except ProviderRejected:
        payment.fail(now, NEVER_HEARD_OF)
        return Verdict.CHANGED
    except ProviderUnavailable:
        return Verdict.UNRESOLVED
    if truth.status in UNCONFIRMED and payment.state is PaymentState.PROCESSING:
        # Our confirm never reached the provider, and the caller has long given up.
        payment.fail(now, NEVER_CONFIRMED)
        return Verdict.CHANGED
    apply_provider_outcome(payment, truth, now)
    return Verdict.CHANGED if payment.state is not before else Verdict.UNCHANGED
