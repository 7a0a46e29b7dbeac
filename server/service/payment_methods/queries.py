"""Reading saved payment methods: GetPaymentMethod, ListPaymentMethods, and the lookup
CreatePayment does for a saved method."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from server.domain.errors import FieldViolation, InvalidArgument, NotFound, Validator
from server.domain.ids import PAYMENT_METHOD_ID
from server.domain.payment_method import PaymentMethod
from server.service import page_tokens
from server.service.payment_methods.requests import check_method_id
from server.service.payments.requests import check_reference

if TYPE_CHECKING:
    from server.service.unit_of_work import UnitOfWork, UnitOfWorkFactory

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class MethodCursor:
    """Where the previous page ended: its last method's create_time and id."""

    create_time: datetime
    id: str


@dataclass(frozen=True, slots=True)
class PaymentMethodQuery:
    """One user's attached methods, newest first."""

    user_id: str
    page_size: int = DEFAULT_PAGE_SIZE
    after: MethodCursor | None = None


@dataclass(frozen=True, slots=True)
class PaymentMethodPage:
    methods: list[PaymentMethod]
    next_cursor: MethodCursor | None


def not_found(method_id: str) -> NotFound:
    return NotFound(
        f"payment method {method_id} not found",
        reason="PAYMENT_METHOD_NOT_FOUND",
        metadata={"payment_method_id": method_id},
    )


def encode_page_token(query: PaymentMethodQuery, cursor: MethodCursor) -> str:
    return page_tokens.encode(
        page_tokens.user_tag(query.user_id), cursor.create_time.isoformat(), cursor.id
    )


def decode_page_token(query: PaymentMethodQuery, token: str) -> MethodCursor:
    """The cursor in `token`; INVALID_ARGUMENT if it is not ours or not for this user."""
    value, last_id = page_tokens.decode(
        page_tokens.user_tag(query.user_id), token, PAYMENT_METHOD_ID
    )
    return MethodCursor(page_tokens.decode_time(value), last_id)


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
    if method is None or (owner is not None and method.user_id != owner):
        raise not_found(method_id)
    return method


async def list_payment_methods(
    uow_factory: UnitOfWorkFactory, user_id: str, page_size: int, page_token: str
) -> tuple[list[PaymentMethod], str]:
    """One page of the user's attached methods and the next page's token ("" on the last)."""
    validator = Validator()
    check_reference(validator, "user_id", user_id)
    validator.check(page_size >= 0, "page_size", "must not be negative")
    validator.raise_if_any()
    query = PaymentMethodQuery(user_id, min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE))
    if page_token:
        query = PaymentMethodQuery(user_id, query.page_size, decode_page_token(query, page_token))
    async with uow_factory(read_only=True) as uow:
        page = await uow.payment_methods.list_attached(query)
    token = encode_page_token(query, page.next_cursor) if page.next_cursor else ""
    return page.methods, token


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
