"""Reading saved payment methods: GetPaymentMethod, ListPaymentMethods, and the lookup
CreatePayment does for a saved method."""

from __future__ import annotations

from server.domain.errors import FieldViolation, InvalidArgument, NotFound
from server.domain.ids import PAYMENT_METHOD_ID
from server.domain.payment_method import PaymentMethod
from server.service.reads import OwnedRead, UserList
from server.service.unit_of_work import UnitOfWork


def not_found(method_id: str) -> NotFound:
    return NotFound(
        f"payment method {method_id} not found",
        reason="PAYMENT_METHOD_NOT_FOUND",
        metadata={"payment_method_id": method_id},
    )


# Detached methods too: they stay readable for the record.
get_payment_method = OwnedRead(PAYMENT_METHOD_ID, lambda uow: uow.payment_methods, not_found)
# The user's attached methods, newest first.
list_payment_methods = UserList(
    PAYMENT_METHOD_ID, lambda uow, query: uow.payment_methods.list_attached(query)
)


async def usable_method(
    uow: UnitOfWork, method_id: str, user_id: str, provider: str
) -> PaymentMethod:
    """The saved method a payment of `user_id` may charge, or the error that says why not."""
    method = await uow.payment_methods.get(method_id)
    # Another user's method looks exactly like a missing one: ids must not leak.
    if method is None or method.user_id != user_id:
        raise not_found(method_id)
    problem = ""
    if not method.attached:
        problem = "was detached and can no longer be used"
    elif method.provider != provider:
        problem = f"was saved with the {method.provider} provider, not {provider}"
    if problem:
        raise InvalidArgument(
            [FieldViolation("payment_method_id", problem)], reason="PAYMENT_METHOD_NOT_USABLE"
        )
    return method
