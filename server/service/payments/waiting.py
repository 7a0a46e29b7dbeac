"""Payments nobody else will finish: stranded without the provider's id, or abandoned.

A payment whose provider id was never saved (the process or the database failed
between the provider's answer and our write, and the caller gave up) is looked
up at the provider by our payment id at each check, and what the provider says
is applied. Once no call for it can still be in flight, one the provider never
charged is failed, freeing its order. A payment that has waited on the customer longer than an
abandoned checkout is canceled, at the provider first. The reconciler calls
this under the row lock it already holds.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from server.domain.errors import ProviderUnavailable
from server.domain.payment import Failure, Payment
from server.domain.payment_states import PaymentOp, PaymentState
from server.domain.reconciliation import WAITING_ON_CUSTOMER, WAITING_ON_PROVIDER, policy
from server.service.dependencies import Dependencies
from server.service.payments.at_provider import charge_key, registration
from server.service.payments.provider_outcomes import (
    BEFORE_CONFIRMATION,
    CONFIRMED_AT_PROVIDER,
    apply_provider_outcome,
)
from server.service.provider import (
    ProviderPayment,
    ProviderRejected,
    ProviderStatus,
)

NEVER_HEARD_OF = Failure("provider_unknown", "The payment could not be completed.")
NEVER_CONFIRMED = Failure("provider_not_confirmed", "The payment could not be completed.")
UNCONFIRMED = frozenset(
    {ProviderStatus.REQUIRES_CONFIRMATION, ProviderStatus.REQUIRES_PAYMENT_METHOD}
)
EXPIRED_REASON = "expired: the customer did not complete the payment in time"


def is_stranded(payment: Payment, now: datetime) -> bool:
    return not payment.provider_payment_id and now - payment.update_time >= policy().stranded_after


def is_expired(payment: Payment, now: datetime) -> bool:
    return (
        payment.state in WAITING_ON_CUSTOMER and now - payment.update_time >= policy().expire_after
    )


async def finish_abandoned(deps: Dependencies, payment: Payment, now: datetime) -> bool | None:
    """Resolve a stranded payment or expire an abandoned one.

    True: it moved; False: it should have, but the provider did not answer;
    None: neither applies (not stranded, not expired).
    """
    try:
        if not payment.provider_payment_id and payment.state in WAITING_ON_PROVIDER:
            return await _look_up(deps, payment, now)
        if is_stranded(payment, now):
            return await _resolve_stranded(deps, payment, now)
        if is_expired(payment, now):
            return await _expire(deps, payment, now)
    except ProviderUnavailable:
        return False
    return None


def next_look(payment: Payment, now: datetime, provider_check: datetime) -> datetime:
    """The next time the reconciler should look at a payment it could not finish now.

    `provider_check` is the backing-off schedule's next step; the result is never
    earlier, so a provider that does not answer is not asked every pass.
    """
    wait = policy()
    candidates = []
    if payment.state in WAITING_ON_PROVIDER or is_stranded(payment, now):
        candidates.append(provider_check)
    if not payment.provider_payment_id:
        candidates.append(payment.update_time + wait.stranded_after)
    if payment.state in WAITING_ON_CUSTOMER:
        candidates.append(payment.update_time + wait.expire_after)
    soonest = min(candidates, default=provider_check)
    return soonest if soonest > now else provider_check


async def _look_up(deps: Dependencies, payment: Payment, now: datetime) -> bool | None:
    """A charge we sent without recording its answer: the provider's record of it, if any."""
    found = await deps.provider.find_payment(payment.id)
    if found is not None and found.status not in UNCONFIRMED:
        payment.provider_payment_id = found.provider_payment_id
        payment.update_time = now
        return _follow(payment, found, now)
    if not is_stranded(payment, now):
        return None  # a call may still be in flight, or the provider's search lags behind
    return await _resolve_stranded(deps, payment, now, found, probe=found is None)


async def _resolve_stranded(
    deps: Dependencies,
    payment: Payment,
    now: datetime,
    found: ProviderPayment | None = None,
    *,
    probe: bool = False,
) -> bool:
    if probe:
        found = await _probe_charge_key(deps, payment)
    elif found is None:
        found = await deps.provider.find_payment(payment.id)
    if found is None:
        # Never registered, and never charged: a charge is always keyed and looked up first.
        payment.fail(now, NEVER_HEARD_OF)
        return True
    payment.provider_payment_id = found.provider_payment_id
    payment.update_time = now
    if found.status in UNCONFIRMED:
        # Registered, never charged: tidy it up at the provider, then free the order.
        with contextlib.suppress(ProviderRejected, ProviderUnavailable):
            await deps.provider.cancel_payment(found.provider_payment_id, f"{payment.id}:cancel")
        payment.fail(now, NEVER_CONFIRMED)
        return True
    return _follow(payment, found, now)


async def _probe_charge_key(deps: Dependencies, payment: Payment) -> ProviderPayment:
    """Register the payment, uncharged, under the key its charge was sent with.

    The search found nothing, which may be its lag. If the charge reached the provider,
    the key answers with it (the mock) or refuses other parameters (Stripe: unavailable,
    so we look again later). If it never did, the payment is now registered uncharged,
    and the key can never charge it: it is canceled and failed, and no money moved.
    """
    return await deps.provider.create_payment(
        registration(payment), idempotency_key=charge_key(payment)
    )


async def _expire(deps: Dependencies, payment: Payment, now: datetime) -> bool:
    if payment.provider_payment_id:
        try:
            result = await deps.provider.cancel_payment(
                payment.provider_payment_id, f"{payment.id}:cancel"
            )
        except ProviderRejected:
            # The customer finished meanwhile (or the provider ended it): take its word.
            return _follow(
                payment, await deps.provider.retrieve_payment(payment.provider_payment_id), now
            )
        if result.status is not ProviderStatus.CANCELED:
            return _follow(payment, result, now)
    payment.apply(PaymentOp.CANCEL, now, reason=EXPIRED_REASON)
    return True


def _follow(payment: Payment, truth: ProviderPayment, now: datetime) -> bool:
    before: PaymentState = payment.state
    if before in BEFORE_CONFIRMATION and truth.status in CONFIRMED_AT_PROVIDER:
        payment.apply(PaymentOp.CONFIRM, now)  # confirmed at the provider, not by us
    apply_provider_outcome(payment, truth, now)
    return payment.state is not before
