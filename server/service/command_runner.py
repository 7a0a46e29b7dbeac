"""The shape every money-moving use case shares.

1. One transaction claims the idempotency key and persists the intent
   (a PROCESSING row) before the provider hears of it.
2. The provider call, keyed so that a retry can never charge twice.
3. One transaction applies the outcome, writes its events and stores the
   response for replays.
Steps 2 and 3 are shielded from the caller hanging up: once the provider has
been asked, the answer is recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from server.adapters.codec import decode_payment, encode_payment
from server.adapters.providers.base import ProviderPayment, ProviderRejected
from server.domain.errors import DomainError, FieldViolation, InvalidArgument, ProviderUnavailable
from server.domain.payment import Payment
from server.faults import AFTER_PROVIDER_CALL, crash_point
from server.observability.context import about_payment
from server.observability.metrics import payment_outcomes
from server.service.client_secrets import fetch_client_secret
from server.service.dependencies import Dependencies
from server.service.idempotency import Scope, claim
from server.service.unit_of_work import StaleWrite, UnitOfWork

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    payment: Payment
    replayed: bool = False
    # For the payment's owner only (Stripe.js); never stored, fetched again on replay.
    client_secret: str = field(default="", repr=False)


async def _replay(deps: Dependencies, payment: Payment) -> Outcome:
    return Outcome(payment, replayed=True, client_secret=await fetch_client_secret(deps, payment))


# Persist the intent; gets the resumed payment's id when a dead attempt is taken over.
Prepare = Callable[[UnitOfWork, str | None], Awaitable[Payment]]
# Ask the provider; None when there is nothing to ask.
Act = Callable[[Payment], Awaitable[ProviderPayment | None]]
# Apply the provider's answer to the payment.
Finish = Callable[[Payment, ProviderPayment | None, datetime], None]
# Record a refusal on the payment and return the error for the caller.
Refused = Callable[[Payment, ProviderRejected, datetime], Awaitable[DomainError]]


async def run_command(
    deps: Dependencies,
    scope: Scope | None,
    payment_id: str,
    prepare: Prepare,
    act: Act,
    finish: Finish,
    refused: Refused | None = None,
) -> Outcome:
    async with deps.uow() as uow:
        resume_id = None
        if scope is not None:
            claimed = await claim(uow, scope, deps.clock.now(), deps.idempotency, payment_id)
            if claimed.replay is not None:
                replayed = decode_payment(claimed.replay)
                about_payment(replayed.id, order_id=replayed.order_id, outcome="replayed")
                return await _replay(deps, replayed)
            resume_id = claimed.resource_id
        # Nothing is stored for a call that cannot reach the provider now.
        deps.provider.ensure_available()
        payment = await prepare(uow, resume_id)
        about_payment(payment.id, order_id=payment.order_id, provider=payment.provider)
        await uow.commit()
    settle = _settle(deps, scope, payment, act, finish, refused or _invalid)
    return await asyncio.shield(asyncio.ensure_future(settle))


async def _settle(
    deps: Dependencies,
    scope: Scope | None,
    payment: Payment,
    act: Act,
    finish: Finish,
    refused: Refused,
) -> Outcome:
    try:
        result = await act(payment)
    except ProviderUnavailable:
        _tell(payment, "provider_unavailable")
        await _release(deps, scope)
        raise
    except ProviderRejected as rejected:
        error = await refused(payment, rejected, deps.clock.now())
        _tell(await _record(deps, scope, payment, forget_key=True), "rejected")
        raise error from None
    except BaseException:
        await _release(deps, scope)
        raise
    crash_point(AFTER_PROVIDER_CALL)
    finish(payment, result, deps.clock.now())
    recorded = await _record(deps, scope, payment, forget_key=False)
    _tell(recorded, recorded.state.value)
    return Outcome(recorded, client_secret=result.client_secret if result else "")


def _tell(payment: Payment, outcome: str) -> None:
    """Count the outcome and tag the span and log lines with the payment."""
    payment_outcomes.add(1, {"provider": payment.provider, "outcome": outcome})
    about_payment(payment.id, order_id=payment.order_id, provider=payment.provider, outcome=outcome)
    # One line per money-moving step: the payment's story in the logs, by trace and id.
    _log.info("payment %s: %s at %s", payment.id, outcome, payment.provider)


async def _record(
    deps: Dependencies, scope: Scope | None, payment: Payment, *, forget_key: bool
) -> Payment:
    """Save the payment unless someone else moved it meanwhile, and settle the key."""
    expected = payment.event_sequence - len(payment.pending_events)
    async with deps.uow() as uow:
        try:
            await uow.payments.save(payment, expected)
        except StaleWrite:
            # A webhook, the reconciler or a resumed attempt got there first: theirs stands.
            fresh = await uow.payments.get(payment.id, for_update=True)
            assert fresh is not None
            payment = fresh
        if scope is not None:
            if forget_key:
                await uow.idempotency_keys.delete(scope.caller, scope.request_id)
            else:
                await uow.idempotency_keys.complete(
                    scope.caller, scope.request_id, payment.id, encode_payment(payment)
                )
        await uow.commit()
    return payment


async def _release(deps: Dependencies, scope: Scope | None) -> None:
    """Let a retry resume at once instead of waiting out the lease."""
    if scope is None:
        return
    async with deps.uow() as uow:
        await uow.idempotency_keys.release(scope.caller, scope.request_id)
        await uow.commit()


async def _invalid(payment: Payment, rejected: ProviderRejected, now: datetime) -> DomainError:
    del payment, now
    return InvalidArgument(
        [FieldViolation(rejected.field or "request", rejected.message)], reason="PROVIDER_REJECTED"
    )
