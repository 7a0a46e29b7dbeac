"""Customers reach only their own data. Checked before a command claims its key or
stores anything; a resource's user never changes, so checking first is safe."""

from __future__ import annotations

from server.domain.errors import PermissionDenied
from server.service.payment_methods.queries import get_payment_method
from server.service.payments.queries import get_payment
from server.service.subscriptions.queries import get_subscription

# NOT_FOUND when a customer names a resource that is not theirs.
require_own_payment = get_payment.require_own
require_own_method = get_payment_method.require_own
require_own_subscription = get_subscription.require_own


def user_id_for(owner: str | None, requested: str) -> str:
    """The user_id a request acts for: a customer's own (empty means theirs), else as sent."""
    if owner is None or requested == owner:
        return requested
    if not requested:
        return owner
    raise PermissionDenied(
        "user_id must be your own user id (or empty)", reason="USER_ID_NOT_CALLER"
    )
