"""Reading saved payment methods: GetPaymentMethod, ListPaymentMethods, and the lookup
CreatePayment does for a saved method."""

from __future__ import annotations

from server.domain.errors import FieldViolation, InvalidArgument, NotFound, Validator
from server.domain.ids import PAYMENT_METHOD_ID
from server.domain.payment_method import PaymentMethod
from server.domain.principal import may_read
from server.service import paging
from server.service.payment_methods.pages import PaymentMethodQuery
from server.service.payment_methods.requests import check_method_id
from server.service.unit_of_work import UnitOfWork, UnitOfWorkFactory


def not_found(method_id: str) -> NotFound:
    return NotFound(
        f"payment method {method_id} not found",
        reason="PAYMENT_METHOD_NOT_FOUND",
        metadata={"payment_method_id": method_id},
    )


async def get_payment_method(
    uow_factory: UnitOfWorkFactory, method_id: str, owner: str | None = None
) -> PaymentMethod:
    """Detached methods too: they stay readable for the record. NOT_FOUND also when
    `owner` is set and the method is another user's."""
    validator = Validator()
    check_method_id(validator, method_id)
    validator.raise_if_any()
    async with uow_factory(read_only=True) as uow:
        method = await uow.payment_methods.get(method_id)
    if method is None or not may_read(owner, method.user_id):
        raise not_found(method_id)
    return method


async def list_payment_methods(
    uow_factory: UnitOfWorkFactory, user_id: str, page_size: int, page_token: str
) -> tuple[list[PaymentMethod], str]:
    """One page of the user's attached methods and the next page's token ("" on the last)."""
    request = paging.user_page(user_id, page_size, page_token, PAYMENT_METHOD_ID)
    query = PaymentMethodQuery(user_id, request.size, request.after)
    async with uow_factory(read_only=True) as uow:
        page = await uow.payment_methods.list_attached(query)
    return page.methods, paging.time_token(request.scope, page.next_cursor)


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
