"""The PaymentMethodService use cases that change a saved payment method.

Each runs through the command pipeline (pipeline/command.py): step 1 reads what the
provider call needs, step 3 writes our record. A refusal by the provider (a
decline, an unknown method) frees the request_id: nothing was saved, and the
provider's own idempotency answers a retry the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TypeVar

from server.adapters.payment_method_codec import decode_payment_method, encode_payment_method
from server.domain.errors import (
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
from server.service.payment_methods.queries import not_found
from server.service.payment_methods.requests import (
    AttachPaymentMethod,
    DetachPaymentMethod,
    UpdatePaymentMethod,
    merge_billing,
    touches_billing,
    validate_attach,
    validate_detach,
    validate_update,
)
from server.service.pipeline.command import Command, Done, Kind, Outcome, Refused, run
from server.service.pipeline.idempotency import Scope, fingerprint, optional_scope, scope_of
from server.service.provider import (
    PaymentMethodDeclined,
    ProviderPaymentMethod,
    ProviderRejected,
)
from server.service.unit_of_work import UnitOfWork

P = TypeVar("P")
A = TypeVar("A")
METHODS: Kind[PaymentMethod] = Kind(
    encode_payment_method, decode_payment_method, lambda method: method.id
)


@dataclass(frozen=True, slots=True)
class _Attach:
    method_id: str
    # The user's customer at the provider, if one is recorded.
    customer: str | None


def _run(
    deps: Dependencies,
    scope: Scope | None,
    method_id: str,
    prepare: Callable[[UnitOfWork, str | None], Awaitable[P | Done[PaymentMethod]]],
    act: Callable[[P], Awaitable[A]],
    record: Callable[[UnitOfWork, P, A], Awaitable[PaymentMethod]],
) -> Awaitable[Outcome[PaymentMethod]]:
    return run(
        deps,
        Command(
            scope=scope,
            kind=METHODS,
            resource_id=method_id,
            prepare=prepare,
            act=act,
            record=record,
        ),
    )


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
        refusal = FailedPrecondition(
            f"the provider refused to create a customer: {rejected.message}",
            reason="PROVIDER_REJECTED",
        )
        raise Refused(refusal) from None
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
) -> Outcome[PaymentMethod]:
    validate_attach(command)
    scope = scope_of(caller, command.request_id, "AttachPaymentMethod", command.parameters())
    provider = deps.provider
    new_id = PAYMENT_METHOD_ID.new()

    async def prepare(uow: UnitOfWork, resume_id: str | None) -> _Attach:
        # A resumed attempt keeps its id, and so the provider keys derived from it.
        customer = await uow.customers.get(command.user_id, provider.name)
        return _Attach(resume_id or new_id, customer)

    async def act(attach: _Attach) -> tuple[str, ProviderPaymentMethod]:
        customer_id = await _customer_of(deps, command.user_id, attach.customer)
        wanted = command.provider_payment_method_id
        try:
            attached = await provider.attach_payment_method(
                wanted, customer_id, f"{attach.method_id}:attach"
            )
        except PaymentMethodDeclined as declined:
            raise Refused(_declined(declined, wanted)) from None
        except ProviderRejected as rejected:
            raise Refused(_rejected(rejected, "provider_payment_method_id")) from None
        if not command.billing_details.is_empty:
            key = f"{attach.method_id}:billing"
            await _send_billing(deps, attached, command.billing_details, key)
        return customer_id, attached

    async def record(
        uow: UnitOfWork, attach: _Attach, answer: tuple[str, ProviderPaymentMethod]
    ) -> PaymentMethod:
        customer_id, attached = answer
        now = deps.clock.now()
        method = new_payment_method(
            method_id=attach.method_id,
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

    return await _run(deps, scope, new_id, prepare, act, record)


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
        raise Refused(_rejected(rejected, "billing_details")) from None


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
) -> Outcome[PaymentMethod]:
    paths = validate_update(command)
    scope = optional_scope(caller, command.request_id, "UpdatePaymentMethod", command.parameters())
    # The provider's key: the same for a retry of this request sending the same details, and
    # new otherwise, so a later update back to an earlier value is not taken for a repeat.
    token = uuid.uuid4().hex

    def billing_of(current: PaymentMethod) -> BillingDetails:
        return merge_billing(
            current.billing_details, command.billing_details or BillingDetails(), paths
        )

    async def prepare(
        uow: UnitOfWork, resume_id: str | None
    ) -> PaymentMethod | Done[PaymentMethod]:
        del resume_id
        current = await _load_attached(deps, uow, command.id)
        if touches_billing(paths) and billing_of(current) != current.billing_details:
            return current
        return Done(await record(uow, current, None))

    async def act(current: PaymentMethod) -> None:
        billing = billing_of(current)
        key = token
        if scope is not None:
            key = fingerprint(f"{caller}\n{command.request_id}", {"billing": asdict(billing)})[:32]
        try:
            await deps.provider.update_payment_method_billing(
                current.provider_payment_method_id, billing, f"{current.id}:billing:{key}"
            )
        except ProviderRejected as rejected:
            raise Refused(_rejected(rejected, "payment_method.billing_details")) from None

    async def record(uow: UnitOfWork, sent: PaymentMethod, answer: None) -> PaymentMethod:
        del answer
        method = await _load_attached(deps, uow, command.id)
        now = deps.clock.now()
        if "default" in paths:
            if command.default and not method.is_default:
                await _take_default(uow, method.user_id, method.provider, now)
            method.set_default(command.default, now)
        if touches_billing(paths):
            # Exactly what the provider was sent, so ours and theirs agree.
            method.update_billing(billing_of(sent), now)
        await uow.payment_methods.save(method)
        return method

    return await _run(deps, scope, command.id, prepare, act, record)


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
) -> Outcome[PaymentMethod]:
    validate_detach(command)
    scope = optional_scope(caller, command.request_id, "DetachPaymentMethod", {"id": command.id})

    async def prepare(uow: UnitOfWork, resume_id: str | None) -> PaymentMethod:
        del resume_id
        method = await _load_attached(deps, uow, command.id)
        await _refuse_if_paying_subscriptions(uow, method)
        return method

    async def act(method: PaymentMethod) -> None:
        try:
            await deps.provider.detach_payment_method(
                method.provider_payment_method_id, f"{method.id}:detach"
            )
        except ProviderRejected as rejected:
            refusal = FailedPrecondition(
                f"the provider refused to detach: {rejected.message}", reason="PROVIDER_REJECTED"
            )
            raise Refused(refusal) from None

    async def record(uow: UnitOfWork, method: PaymentMethod, answer: None) -> PaymentMethod:
        del method, answer
        fresh = await _load_attached(deps, uow, command.id)
        fresh.detach(deps.clock.now())
        await uow.payment_methods.save(fresh)
        return fresh

    return await _run(deps, scope, command.id, prepare, act, record)
