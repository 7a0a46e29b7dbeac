"""Customers reach only their own data. Checked before a command claims its key or
stores anything; a payment's or method's user never changes, so checking first is safe."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.domain.errors import PermissionDenied
from server.service.payment_methods.queries import get_payment_method
from server.service.payments.commands import require_payment_id
from server.service.payments.queries import get_payment
from server.service.subscriptions.queries import get_subscription

if TYPE_CHECKING:
    from server.service.unit_of_work import UnitOfWorkFactory


def user_id_for(owner: str | None, requested: str) -> str:
    """The user_id a request acts for: a customer's own (empty means theirs), else as sent."""
    if owner is None or requested == owner:
        return requested
    if not requested:
        return owner
    raise PermissionDenied(
        "user_id must be your own user id (or empty)", reason="USER_ID_NOT_CALLER"
    )


async def require_own_payment(
    uow_factory: UnitOfWorkFactory, payment_id: str, owner: str | None
) -> None:
    """NOT_FOUND when a customer names a payment that is not theirs."""
    if owner is not None:
        require_payment_id(payment_id)
        await get_payment(uow_factory, payment_id, owner)


async def require_own_method(
    uow_factory: UnitOfWorkFactory, method_id: str, owner: str | None
) -> None:
    """NOT_FOUND when a customer names a saved payment method that is not theirs."""
    if owner is not None:
        await get_payment_method(uow_factory, method_id, owner)


async def require_own_subscription(
    uow_factory: UnitOfWorkFactory, subscription_id: str, owner: str | None
) -> None:
    """NOT_FOUND when a customer names a subscription that is not theirs."""
    if owner is not None:
        await get_subscription(uow_factory, subscription_id, owner)
