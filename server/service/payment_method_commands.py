"""The PaymentMethodService use cases that change a saved payment method.

Each follows the shape of the payment commands (command_runner.py):
1. One transaction claims the request_id (or replays its first outcome) and
   reads what the provider call needs.
2. The provider call, keyed so that a retry repeats rather than doubles it.
3. One transaction writes our record and stores the response for replays.
Steps 2 and 3 are shielded from the caller hanging up. A refusal by the
provider (a decline, an unknown method) frees the request_id: nothing was
saved, and the provider's own idempotency answers a retry the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TypeVar

from server.adapters.payment_method_codec import decode_payment_method, encode_payment_method
from server.adapters.providers.base import (
    PaymentMethodDeclined,
    ProviderPaymentMethod,
    ProviderRejected,
)
from server.domain.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    ProviderUnavailable,
)
from server.domain.ids import PAYMENT_METHOD_ID
from server.domain.payment_method import (
    BillingDetails,
    CardDetails,
    PaymentMethod,
    new_payment_method,
)
from server.service.dependencies import Dependencies
from server.service.idempotency import Scope, claim, fingerprint, optional_scope, scope_of
from server.service.payment_method_queries import not_found
from server.service.payment_method_requests import (
    AttachPaymentMethod,
    DetachPaymentMethod,
    UpdatePaymentMethod,
    merge_billing,
    touches_billing,
    validate_attach,
    validate_detach,
    validate_update,
)
from server.service.unit_of_work import UnitOfWork

T = TypeVar("T")
# Write our record from what the provider answered, inside the final transaction.
Record = Callable[[UnitOfWork, T], Awaitable[PaymentMethod]]


@dataclass(frozen=True, slots=True)
class MethodOutcome:
    method: PaymentMethod
    replayed: bool = False


async def _replay_if_done(
    deps: Dependencies, uow: UnitOfWork, scope: Scope | None, method_id: str
) -> MethodOutcome | None:
    """Claim the optional request_id; the stored outcome if this request already ran."""
    if scope is None:
        return None
    claimed = await claim(uow, scope, deps.clock.now(), deps.idempotency, method_id)
    if claimed.replay is None:
        return None
    return MethodOutcome(decode_payment_method(claimed.replay), replayed=True)


async def _forget(deps: Dependencies, scope: Scope | None) -> None:
    """The request changed nothing: a retry with its request_id starts afresh."""
    if scope is None:
        return
    async with deps.uow() as uow:
        await uow.idempotency_keys.delete(scope.caller, scope.request_id)
        await uow.commit()


async def _release(deps: Dependencies, scope: Scope | None) -> None:
    """The outcome is unknown: let a retry resume at once instead of waiting out the lease."""
    if scope is None:
        return
    async with deps.uow() as uow:
        await uow.idempotency_keys.release(scope.caller, scope.request_id)
        await uow.commit()


async def _settle(
    deps: Dependencies,
    scope: Scope | None,
    act: Callable[[], Awaitable[T]],
    record: Record[T],
) -> MethodOutcome:
    """Steps 2 and 3, shielded: once the provider has acted, our record follows."""

    async def run() -> MethodOutcome:
        try:
            answer = await act()
            async with deps.uow() as uow:
                method = await record(uow, answer)
                if scope is not None:
                    await uow.idempotency_keys.complete(
                        scope.caller, scope.request_id, method.id, encode_payment_method(method)
                    )
                await uow.commit()
        except ProviderUnavailable:
            await _release(deps, scope)
            raise
        except DomainError:
            await _forget(deps, scope)
            raise
        except BaseException:
            await _release(deps, scope)
            raise
        return MethodOutcome(method)

    return await asyncio.shield(asyncio.ensure_future(run()))


def _customer_key(provider: str, user_id: str) -> str:
    # One key per user, so concurrent first attaches create one customer between them.
    return f"customer:{provider}:{hashlib.sha256(user_id.encode()).hexdigest()[:32]}"


async def _customer_of(deps: Dependencies, user_id: str, known: str | None) -> str:
    """The user's provider customer, created and recorded at once on first use."""
    if known is not None:
        return known
    provider = deps.provider
    try:
        created = await provider.ensure_customer(user_id, _customer_key(provider.name, user_id))
    except ProviderRejected as rejected:
        raise FailedPrecondition(
            f"the provider refused to create a customer: {rejected.message}",
            reason="PROVIDER_REJECTED",
        ) from None
    async with deps.uow() as uow:
        recorded = await uow.customers.add_if_absent(
            user_id, provider.name, created, deps.clock.now()
        )
        await uow.commit()
    return recorded


def _declined(declined: PaymentMethodDeclined, provider_method: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"the card was declined: {declined.failure.message}",
        reason="CARD_DECLINED",
        metadata={
            "decline_code": declined.failure.code,
            "provider_payment_method_id": provider_method,
        },
    )


def _rejected(rejected: ProviderRejected, field: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation(field, rejected.message)], reason="PROVIDER_REJECTED")


async def attach_payment_method(
    deps: Dependencies, caller: str, command: AttachPaymentMethod
) -> MethodOutcome:
    validate_attach(command)
    scope = scope_of(caller, command.request_id, "AttachPaymentMethod", command.parameters())
    provider = deps.provider
    async with deps.uow() as uow:
        new_id = PAYMENT_METHOD_ID.new()
        claimed = await claim(uow, scope, deps.clock.now(), deps.idempotency, new_id)
        if claimed.replay is not None:
            return MethodOutcome(decode_payment_method(claimed.replay), replayed=True)
        # A resumed attempt keeps its id, and so the provider keys derived from it.
        method_id = claimed.resource_id or new_id
        customer = await uow.customers.get(command.user_id, provider.name)
        provider.ensure_available()
        await uow.commit()

    async def act() -> tuple[str, ProviderPaymentMethod]:
        customer_id = await _customer_of(deps, command.user_id, customer)
        wanted = command.provider_payment_method_id
        try:
            attached = await provider.attach_payment_method(
                wanted, customer_id, f"{method_id}:attach"
            )
        except PaymentMethodDeclined as declined:
            raise _declined(declined, wanted) from None
        except ProviderRejected as rejected:
            raise _rejected(rejected, "provider_payment_method_id") from None
        if not command.billing_details.is_empty:
            await _send_billing(deps, attached, command.billing_details, f"{method_id}:billing")
        return customer_id, attached

    async def record(uow: UnitOfWork, answer: tuple[str, ProviderPaymentMethod]) -> PaymentMethod:
        customer_id, attached = answer
        now = deps.clock.now()
        method = new_payment_method(
            method_id=method_id,
            user_id=command.user_id,
            provider=provider.name,
            provider_customer_id=customer_id,
            provider_payment_method_id=attached.provider_payment_method_id,
            card=CardDetails(attached.brand, attached.last4, attached.exp_month, attached.exp_year),
            is_default=command.set_default,
            billing_details=command.billing_details,
            now=now,
        )
        if command.set_default:
            await _take_default(uow, method.user_id, method.provider, now)
        await uow.payment_methods.add(method)
        return method

    return await _settle(deps, scope, act, record)


async def _send_billing(
    deps: Dependencies, attached: ProviderPaymentMethod, billing: BillingDetails, key: str
) -> None:
    try:
        await deps.provider.update_payment_method_billing(
            attached.provider_payment_method_id, billing, key
        )
    except ProviderRejected as rejected:
        # Leave nothing attached at the provider that we keep no record of.
        with contextlib.suppress(ProviderRejected, ProviderUnavailable):
            await deps.provider.detach_payment_method(
                attached.provider_payment_method_id, f"{key}:undo"
            )
        raise _rejected(rejected, "billing_details") from None


async def _take_default(uow: UnitOfWork, user_id: str, provider: str, now: datetime) -> None:
    """Clear the user's current default, holding the per-user lock so two cannot race."""
    await uow.customers.get(user_id, provider, for_update=True)
    await uow.payment_methods.clear_default(user_id, now)


async def _load_attached(deps: Dependencies, uow: UnitOfWork, method_id: str) -> PaymentMethod:
    method = await uow.payment_methods.get(method_id, for_update=True)
    if method is None:
        raise not_found(method_id)
    method.ensure_attached()
    if method.provider != deps.provider.name:
        raise FailedPrecondition(
            f"payment method {method_id} is kept by the {method.provider} provider, "
            f"not {deps.provider.name}",
            reason="PROVIDER_MISMATCH",
            metadata={"provider": method.provider},
        )
    return method


async def update_payment_method(
    deps: Dependencies, caller: str, command: UpdatePaymentMethod
) -> MethodOutcome:
    paths = validate_update(command)
    scope = optional_scope(caller, command.request_id, "UpdatePaymentMethod", command.parameters())
    async with deps.uow() as uow:
        replay = await _replay_if_done(deps, uow, scope, command.id)
        if replay is not None:
            return replay
        current = await _load_attached(deps, uow, command.id)
        incoming = command.billing_details or BillingDetails()
        billing = merge_billing(current.billing_details, incoming, paths)
        send_billing = touches_billing(paths) and billing != current.billing_details
        if send_billing:
            deps.provider.ensure_available()
        await uow.commit()
    # The provider's key: the same for a retry of this request sending the same details, and
    # new otherwise, so a later update back to an earlier value is not taken for a repeat.
    token = (
        fingerprint(f"{caller}\n{command.request_id}", {"billing": asdict(billing)})[:32]
        if scope
        else uuid.uuid4().hex
    )

    async def act() -> None:
        if not send_billing:
            return
        try:
            await deps.provider.update_payment_method_billing(
                current.provider_payment_method_id, billing, f"{current.id}:billing:{token}"
            )
        except ProviderRejected as rejected:
            raise _rejected(rejected, "payment_method.billing_details") from None

    async def record(uow: UnitOfWork, answer: None) -> PaymentMethod:
        del answer
        method = await _load_attached(deps, uow, command.id)
        now = deps.clock.now()
        if "default" in paths:
            if command.default and not method.is_default:
                await _take_default(uow, method.user_id, method.provider, now)
            method.set_default(command.default, now)
        if touches_billing(paths):
            # Exactly what the provider was sent, so ours and theirs agree.
            method.update_billing(billing, now)
        await uow.payment_methods.save(method)
        return method

    return await _settle(deps, scope, act, record)


async def _refuse_if_paying_subscriptions(uow: UnitOfWork, method: PaymentMethod) -> None:
    """A card that pays for a live subscription stays until the subscription pays otherwise:
    detaching it would only make the next renewal fail into dunning."""
    paying = await uow.subscriptions.live_paid_with(method.user_id, method.id)
    if paying:
        raise FailedPrecondition(
            f"payment method {method.id} pays for {len(paying)} subscription(s); "
            "give them another payment method or cancel them first",
            reason="PAYMENT_METHOD_IN_USE",
            metadata={"subscription_ids": ",".join(paying[:10])},
        )


async def detach_payment_method(
    deps: Dependencies, caller: str, command: DetachPaymentMethod
) -> MethodOutcome:
    validate_detach(command)
    scope = optional_scope(caller, command.request_id, "DetachPaymentMethod", {"id": command.id})
    async with deps.uow() as uow:
        replay = await _replay_if_done(deps, uow, scope, command.id)
        if replay is not None:
            return replay
        method = await _load_attached(deps, uow, command.id)
        await _refuse_if_paying_subscriptions(uow, method)
        deps.provider.ensure_available()
        await uow.commit()

    async def act() -> None:
        try:
            await deps.provider.detach_payment_method(
                method.provider_payment_method_id, f"{method.id}:detach"
            )
        except ProviderRejected as rejected:
            raise FailedPrecondition(
                f"the provider refused to detach: {rejected.message}", reason="PROVIDER_REJECTED"
            ) from None

    async def record(uow: UnitOfWork, answer: None) -> PaymentMethod:
        del answer
        fresh = await _load_attached(deps, uow, command.id)
        fresh.detach(deps.clock.now())
        await uow.payment_methods.save(fresh)
        return fresh

    return await _settle(deps, scope, act, record)
