"""A customer's reads and guards at the service layer, on SQLite and PostgreSQL: another
user's payment, refund or saved method is NOT_FOUND, exactly like a missing one."""

from __future__ import annotations

import pytest

from server.domain.errors import NotFound, PermissionDenied
from server.domain.ids import PAYMENT_ID
from server.service.dependencies import Dependencies
from server.service.ownership import require_own_method, require_own_payment, user_id_for
from server.service.payment_methods.commands import attach_payment_method
from server.service.payment_methods.queries import get_payment_method
from server.service.payment_methods.requests import AttachPaymentMethod
from server.service.payments.commands import create_payment
from server.service.payments.pages import PaymentQuery
from server.service.payments.queries import get_payment, list_payments
from server.service.payments.requests import AmountInput, CreatePayment
from server.service.refunds.commands import CreateRefund, create_refund
from server.service.refunds.queries import get_refund, list_refunds, refund_query

CALLER = "orders-service"


async def pay(deps: Dependencies, user_id: str, n: int) -> str:
    command = CreatePayment(
        request_id=f"own-{user_id}-{n}",
        order_id=f"own-order-{user_id}-{n}",
        user_id=user_id,
        amount=AmountInput("USD", 1000),
        payment_method_id="pm_card_visa",
        confirm=True,
    )
    return (await create_payment(deps, CALLER, command)).resource.id


async def test_payments_of_another_user_are_not_found(deps: Dependencies) -> None:
    mine, theirs = await pay(deps, "user-a", 1), await pay(deps, "user-b", 1)
    assert (await get_payment(deps.uow, mine, "user-a")).id == mine
    with pytest.raises(NotFound) as hidden:
        await get_payment(deps.uow, theirs, "user-a")
    with pytest.raises(NotFound) as missing:
        await get_payment(deps.uow, PAYMENT_ID.new(), "user-a")
    assert hidden.value.reason == missing.value.reason == "PAYMENT_NOT_FOUND"
    await require_own_payment(deps.uow, mine, "user-a")
    await require_own_payment(deps.uow, theirs, None)  # services and admins are not restricted
    with pytest.raises(NotFound):
        await require_own_payment(deps.uow, theirs, "user-a")


async def test_lists_hold_only_the_owners_payments(deps: Dependencies) -> None:
    mine = {await pay(deps, "user-a", n) for n in range(3)}
    await pay(deps, "user-b", 1)
    found, _ = await list_payments(deps.uow, PaymentQuery(), owner="user-a")
    assert {p.id for p in found} == mine
    others, token = await list_payments(deps.uow, PaymentQuery(user_id="user-b"), owner="user-a")
    assert (others, token) == ([], "")
    everyone, _ = await list_payments(deps.uow, PaymentQuery())
    assert len(everyone) == 4


async def test_refunds_of_another_users_payment_are_not_found(deps: Dependencies) -> None:
    theirs = await pay(deps, "user-b", 1)
    refund = (
        await create_refund(
            deps, CALLER, CreateRefund("own-refund-1", theirs, AmountInput("USD", 100))
        )
    ).resource
    assert (await get_refund(deps.uow, refund.id, "user-b")).id == refund.id
    with pytest.raises(NotFound):
        await get_refund(deps.uow, refund.id, "user-a")
    with pytest.raises(NotFound):
        await list_refunds(deps.uow, refund_query(theirs, 10), owner="user-a")
    listed, _ = await list_refunds(deps.uow, refund_query(theirs, 10), owner="user-b")
    assert [r.id for r in listed] == [refund.id]


async def test_saved_methods_of_another_user_are_not_found(deps: Dependencies) -> None:
    attach = AttachPaymentMethod(
        request_id="own-attach-1", user_id="user-b", provider_payment_method_id="pm_card_visa"
    )
    method = (await attach_payment_method(deps, CALLER, attach)).resource
    assert (await get_payment_method(deps.uow, method.id, "user-b")).id == method.id
    with pytest.raises(NotFound):
        await get_payment_method(deps.uow, method.id, "user-a")
    with pytest.raises(NotFound):
        await require_own_method(deps.uow, method.id, "user-a")


@pytest.mark.parametrize(
    ("owner", "requested", "expected"),
    [(None, "user-x", "user-x"), ("user-a", "", "user-a"), ("user-a", "user-a", "user-a")],
)
def test_user_id_for(owner: str | None, requested: str, expected: str) -> None:
    assert user_id_for(owner, requested) == expected


def test_a_customer_may_not_act_for_another_user() -> None:
    with pytest.raises(PermissionDenied):
        user_id_for("user-a", "user-b")
