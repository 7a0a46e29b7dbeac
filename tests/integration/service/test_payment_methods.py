"""Saved payment methods on real databases with the mock provider."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db.tables import (
    idempotency_keys,
    payment_methods,
    payments,
    provider_customers,
)
from server.adapters.payment_method_codec import encode_payment_method
from server.adapters.providers.base import ProviderPaymentMethod
from server.adapters.providers.mock import MockProvider
from server.domain.errors import (
    FailedPrecondition,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidArgument,
    NotFound,
    ProviderUnavailable,
)
from server.domain.ids import PAYMENT_METHOD_ID
from server.domain.payment_method import Address, BillingDetails
from server.domain.payment_states import PaymentState
from server.service.commands import AmountInput, ConfirmPayment, CreatePayment
from server.service.dependencies import Dependencies
from server.service.payment_commands import confirm_payment, create_payment
from server.service.payment_method_commands import (
    attach_payment_method,
    detach_payment_method,
    update_payment_method,
)
from server.service.payment_method_queries import get_payment_method, list_payment_methods
from server.service.payment_method_requests import (
    AttachPaymentMethod,
    DetachPaymentMethod,
    UpdatePaymentMethod,
)
from tests.support.held_calls import WITHIN_S, HeldFirstCall
from tests.support.stored_data import card_numbers_in, dump_database, secrets_in

CALLER = "checkout-service"
BILLING = BillingDetails(
    name="Ada Lovelace",
    email="ada@example.com",
    phone="+44 20 7946 0018",
    address=Address(line1="12 St James's Square", city="London", postal_code="SW1Y 4JH"),
)


def attach(
    request_id: str = "attach-1",
    method: str = "pm_card_visa",
    *,
    user_id: str = "user-1",
    set_default: bool = False,
    billing: BillingDetails = BILLING,
) -> AttachPaymentMethod:
    return AttachPaymentMethod(
        request_id=request_id,
        user_id=user_id,
        provider_payment_method_id=method,
        set_default=set_default,
        billing_details=billing,
    )


def pay(
    method_id: str, n: int = 1, *, user_id: str = "user-1", confirm: bool = True
) -> CreatePayment:
    return CreatePayment(
        request_id=f"pay-{n}",
        order_id=f"order-{n}",
        user_id=user_id,
        amount=AmountInput("USD", 2500),
        payment_method_id=method_id,
        confirm=confirm,
    )


async def count(engine: AsyncEngine, table: sa.Table) -> int:
    async with engine.connect() as connection:
        query = sa.select(sa.func.count()).select_from(table)
        return int((await connection.execute(query)).scalar_one())


async def test_attach_saves_what_a_receipt_shows(deps: Dependencies) -> None:
    outcome = await attach_payment_method(deps, CALLER, attach(set_default=True))
    method = outcome.method
    assert not outcome.replayed
    assert PAYMENT_METHOD_ID.matches(method.id)
    assert method.user_id == "user-1"
    assert method.provider == "mock"
    assert method.provider_payment_method_id == "pm_card_visa"
    assert method.provider_customer_id.startswith("mock_cus_")
    assert (method.card.brand, method.card.last4) == ("visa", "4242")
    assert (method.card.exp_month, method.card.exp_year) == (12, 2030)
    assert method.is_default
    assert method.attached
    assert method.billing_details == BILLING
    assert await get_payment_method(deps.uow, method.id) == method


async def test_one_customer_per_user(deps: Dependencies, engine: AsyncEngine) -> None:
    first = (await attach_payment_method(deps, CALLER, attach("a-1"))).method
    second = (await attach_payment_method(deps, CALLER, attach("a-2", "pm_card_amex"))).method
    other = (await attach_payment_method(deps, CALLER, attach("a-3", user_id="user-2"))).method
    assert first.provider_customer_id == second.provider_customer_id
    assert other.provider_customer_id != first.provider_customer_id
    assert second.card.brand == "amex"
    assert second.card.last4 == "8431"
    assert await count(engine, provider_customers) == 2


async def test_same_request_id_replays_byte_for_byte(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    first = await attach_payment_method(deps, CALLER, attach())
    again = await attach_payment_method(deps, CALLER, attach())
    assert again.replayed
    assert encode_payment_method(again.method) == encode_payment_method(first.method)
    assert await count(engine, payment_methods) == 1
    with pytest.raises(IdempotencyKeyReused):
        await attach_payment_method(deps, CALLER, attach(method="pm_card_mastercard"))
    assert await count(engine, payment_methods) == 1


async def test_a_key_in_flight_is_in_use(deps: Dependencies) -> None:
    held = HeldFirstCall(MockProvider(), "attach_payment_method")
    slow = replace(deps, provider=held.as_provider())
    first = asyncio.create_task(attach_payment_method(slow, CALLER, attach()))
    await asyncio.wait_for(held.reached.wait(), WITHIN_S)
    with pytest.raises(IdempotencyKeyInUse):
        await attach_payment_method(slow, CALLER, attach())
    held.release.set()
    done = await asyncio.wait_for(first, WITHIN_S)
    assert (await attach_payment_method(slow, CALLER, attach())).method == done.method


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("pm_card_visa_chargeDeclined", "card_declined"),
        ("pm_card_chargeDeclined", "card_declined"),
        ("pm_card_insufficientFunds", "insufficient_funds"),
    ],
)
async def test_a_decline_at_attach_stores_nothing(
    deps: Dependencies, engine: AsyncEngine, method: str, code: str
) -> None:
    with pytest.raises(FailedPrecondition) as declined:
        await attach_payment_method(deps, CALLER, attach(method=method))
    assert declined.value.reason == "CARD_DECLINED"
    assert declined.value.metadata["decline_code"] == code
    assert await count(engine, payment_methods) == 0
    assert await count(engine, idempotency_keys) == 0
    # The same request_id says the same again.
    with pytest.raises(FailedPrecondition):
        await attach_payment_method(deps, CALLER, attach(method=method))


async def test_an_unknown_provider_method_is_a_field_violation(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    with pytest.raises(InvalidArgument) as rejected:
        await attach_payment_method(deps, CALLER, attach(method="pm_card_unheardof"))
    assert [v.field for v in rejected.value.violations] == ["provider_payment_method_id"]
    assert await count(engine, payment_methods) == 0
    assert await count(engine, idempotency_keys) == 0


async def test_validation_names_every_field_and_stores_nothing(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    bad = AttachPaymentMethod(
        request_id="",
        user_id="",
        provider_payment_method_id="4242424242424242",
        billing_details=BillingDetails(name="4242 4242 4242 4242", email="nope"),
    )
    with pytest.raises(InvalidArgument) as invalid:
        await attach_payment_method(deps, CALLER, bad)
    assert {v.field for v in invalid.value.violations} == {
        "request_id",
        "user_id",
        "provider_payment_method_id",
        "billing_details.name",
        "billing_details.email",
    }
    assert await count(engine, idempotency_keys) == 0


async def test_a_new_default_replaces_the_old_one(deps: Dependencies) -> None:
    visa = (await attach_payment_method(deps, CALLER, attach("a-1", set_default=True))).method
    amex = (
        await attach_payment_method(deps, CALLER, attach("a-2", "pm_card_amex", set_default=True))
    ).method
    assert amex.is_default
    assert not (await get_payment_method(deps.uow, visa.id)).is_default
    back = await update_payment_method(
        deps,
        CALLER,
        UpdatePaymentMethod(id=visa.id, request_id="u-1", default=True, update_mask=("default",)),
    )
    assert back.method.is_default
    assert not (await get_payment_method(deps.uow, amex.id)).is_default
    cleared = await update_payment_method(
        deps, CALLER, UpdatePaymentMethod(id=visa.id, default=False, update_mask=("default",))
    )
    assert not cleared.method.is_default
    methods, _ = await list_payment_methods(deps.uow, "user-1", 0, "")
    assert not any(m.is_default for m in methods)


async def test_concurrent_defaults_leave_exactly_one(deps: Dependencies) -> None:
    outcomes = await asyncio.gather(
        *(
            attach_payment_method(deps, CALLER, attach(f"race-{i}", set_default=True))
            for i in range(6)
        )
    )
    assert len({o.method.id for o in outcomes}) == 6
    methods, _ = await list_payment_methods(deps.uow, "user-1", 100, "")
    assert sum(m.is_default for m in methods) == 1


async def test_update_changes_only_the_masked_fields(deps: Dependencies) -> None:
    method = (await attach_payment_method(deps, CALLER, attach())).method
    incoming = BillingDetails(
        name="ignored", email="ada@lovelace.example", address=Address(city="Cambridge")
    )
    updated = await update_payment_method(
        deps,
        CALLER,
        UpdatePaymentMethod(
            id=method.id,
            request_id="u-1",
            billing_details=incoming,
            update_mask=("billing_details.email", "billing_details.address.city"),
        ),
    )
    expected = replace(
        BILLING,
        email="ada@lovelace.example",
        address=replace(BILLING.address, city="Cambridge"),
    )
    assert updated.method.billing_details == expected
    assert updated.method.update_time >= method.update_time
    assert (await get_payment_method(deps.uow, method.id)).billing_details == expected
    replayed = await update_payment_method(
        deps,
        CALLER,
        UpdatePaymentMethod(
            id=method.id,
            request_id="u-1",
            billing_details=incoming,
            update_mask=("billing_details.email", "billing_details.address.city"),
        ),
    )
    assert replayed.replayed
    assert replayed.method == updated.method


async def test_update_without_a_mask_takes_the_populated_fields(deps: Dependencies) -> None:
    method = (await attach_payment_method(deps, CALLER, attach())).method
    updated = await update_payment_method(
        deps,
        CALLER,
        UpdatePaymentMethod(id=method.id, billing_details=BillingDetails(phone="+1 555 0100")),
    )
    assert updated.method.billing_details == replace(BILLING, phone="+1 555 0100")
    wiped = await update_payment_method(
        deps,
        CALLER,
        UpdatePaymentMethod(id=method.id, billing_details=BillingDetails(), update_mask=("*",)),
    )
    assert wiped.method.billing_details == BillingDetails()
    assert not wiped.method.is_default


async def test_update_refuses_bad_masks_and_values(deps: Dependencies) -> None:
    method = (await attach_payment_method(deps, CALLER, attach())).method
    with pytest.raises(InvalidArgument) as invalid:
        await update_payment_method(
            deps,
            CALLER,
            UpdatePaymentMethod(
                id=method.id,
                billing_details=BillingDetails(address=Address(country="gb")),
                update_mask=("card.last4", "billing_details.address"),
            ),
        )
    assert {v.field for v in invalid.value.violations} == {
        "update_mask",
        "payment_method.billing_details.address.country",
    }
    with pytest.raises(InvalidArgument) as nothing:
        await update_payment_method(deps, CALLER, UpdatePaymentMethod(id=method.id))
    assert [v.field for v in nothing.value.violations] == ["update_mask"]
    with pytest.raises(NotFound):
        await update_payment_method(
            deps,
            CALLER,
            UpdatePaymentMethod(id=PAYMENT_METHOD_ID.new(), default=True),
        )


async def test_detach_hides_the_method_for_good(deps: Dependencies, engine: AsyncEngine) -> None:
    method = (await attach_payment_method(deps, CALLER, attach(set_default=True))).method
    detached = await detach_payment_method(deps, CALLER, DetachPaymentMethod(method.id, "d-1"))
    assert not detached.method.attached
    assert not detached.method.is_default
    assert detached.method.detach_time is not None
    again = await detach_payment_method(deps, CALLER, DetachPaymentMethod(method.id, "d-1"))
    assert again.replayed
    assert again.method == detached.method
    assert await list_payment_methods(deps.uow, "user-1", 10, "") == ([], "")
    assert (await get_payment_method(deps.uow, method.id)).detach_time is not None
    with pytest.raises(FailedPrecondition) as twice:
        await detach_payment_method(deps, CALLER, DetachPaymentMethod(method.id, "d-2"))
    assert twice.value.reason == "PAYMENT_METHOD_DETACHED"
    with pytest.raises(FailedPrecondition):
        await update_payment_method(deps, CALLER, UpdatePaymentMethod(id=method.id, default=True))
    # A detached default frees the slot: a new default is allowed.
    fresh = await attach_payment_method(deps, CALLER, attach("a-2", set_default=True))
    assert fresh.method.is_default


async def test_list_pages_with_opaque_tokens(deps: Dependencies) -> None:
    ids = [
        (await attach_payment_method(deps, CALLER, attach(f"a-{i}"))).method.id for i in range(5)
    ]
    await attach_payment_method(deps, CALLER, attach("other", user_id="user-2"))
    seen: list[str] = []
    token = ""
    for _ in range(3):
        page, token = await list_payment_methods(deps.uow, "user-1", 2, token)
        seen += [m.id for m in page]
        if not token:
            break
    assert seen == list(reversed(ids))
    assert token == ""
    _, first_token = await list_payment_methods(deps.uow, "user-1", 2, "")
    with pytest.raises(InvalidArgument) as foreign:
        await list_payment_methods(deps.uow, "user-2", 2, first_token)
    assert foreign.value.reason == "INVALID_PAGE_TOKEN"
    with pytest.raises(InvalidArgument):
        await list_payment_methods(deps.uow, "user-1", 2, "not-a-token")
    with pytest.raises(InvalidArgument):
        await list_payment_methods(deps.uow, "user-1", -1, "")


async def test_get_unknown_and_malformed_ids(deps: Dependencies) -> None:
    with pytest.raises(NotFound) as missing:
        await get_payment_method(deps.uow, PAYMENT_METHOD_ID.new())
    assert missing.value.reason == "PAYMENT_METHOD_NOT_FOUND"
    with pytest.raises(InvalidArgument):
        await get_payment_method(deps.uow, "pm_card_visa")


async def test_create_payment_charges_a_saved_method(
    deps: Dependencies, provider: MockProvider
) -> None:
    method = (await attach_payment_method(deps, CALLER, attach())).method
    payment = (await create_payment(deps, CALLER, pay(method.id))).payment
    assert payment.state is PaymentState.SUCCEEDED
    # The payment names our method; the provider was sent its own id.
    assert payment.payment_method_id == method.id
    declining = (
        await attach_payment_method(deps, CALLER, attach("a-2", "pm_card_chargeCustomerFail"))
    ).method
    failed = (await create_payment(deps, CALLER, pay(declining.id, 2))).payment
    assert failed.state is PaymentState.FAILED
    assert failed.failure_code == "card_declined"


async def test_confirm_payment_with_a_saved_method(deps: Dependencies) -> None:
    method = (await attach_payment_method(deps, CALLER, attach())).method
    created = (await create_payment(deps, CALLER, pay("", confirm=False))).payment
    assert created.state is PaymentState.REQUIRES_PAYMENT_METHOD
    confirmed = await confirm_payment(deps, CALLER, ConfirmPayment(created.id, "c-1", method.id))
    assert confirmed.payment.state is PaymentState.SUCCEEDED
    assert confirmed.payment.payment_method_id == method.id


async def test_create_payment_refuses_methods_it_may_not_use(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    mine = (await attach_payment_method(deps, CALLER, attach())).method
    with pytest.raises(NotFound) as foreign:
        await create_payment(deps, CALLER, pay(mine.id, 1, user_id="user-2"))
    assert foreign.value.reason == "PAYMENT_METHOD_NOT_FOUND"  # another user's: no existence leak
    with pytest.raises(NotFound):
        await create_payment(deps, CALLER, pay(PAYMENT_METHOD_ID.new(), 2))
    await detach_payment_method(deps, CALLER, DetachPaymentMethod(mine.id))
    with pytest.raises(InvalidArgument) as detached:
        await create_payment(deps, CALLER, pay(mine.id, 3))
    assert detached.value.reason == "PAYMENT_METHOD_NOT_USABLE"
    assert await count(engine, payments) == 0
    assert await count(engine, idempotency_keys) == 1  # the detach's own key


async def test_no_card_number_or_secret_is_stored(deps: Dependencies, engine: AsyncEngine) -> None:
    method = (
        await attach_payment_method(deps, CALLER, attach(set_default=True, billing=BILLING))
    ).method
    await create_payment(deps, CALLER, pay(method.id))
    await update_payment_method(
        deps, CALLER, UpdatePaymentMethod(id=method.id, billing_details=BillingDetails(name="A L"))
    )
    dump = await dump_database(engine)
    # The detector itself finds what it must, grouped or not.
    assert card_numbers_in(f"{dump}\nx: 4242 4242 4242 4242, 378282246310005") == [
        "4242 4242 4242 4242",
        "378282246310005",
    ]
    assert secrets_in(f"{dump}\nx: sk_test_123 pi_1_secret_2") == ["sk_test_123", "pi_1_secret_2"]
    assert "payment_methods: pm_card_visa" in dump
    assert "provider_customers: mock_cus_" in dump
    assert card_numbers_in(dump) == []
    assert secrets_in(dump) == []


async def test_confirming_after_the_method_was_detached_is_refused(deps: Dependencies) -> None:
    method = (await attach_payment_method(deps, CALLER, attach())).method
    created = (await create_payment(deps, CALLER, pay(method.id, confirm=False))).payment
    assert created.state is PaymentState.REQUIRES_CONFIRMATION
    await detach_payment_method(deps, CALLER, DetachPaymentMethod(method.id))
    with pytest.raises(InvalidArgument) as refused:
        await confirm_payment(deps, CALLER, ConfirmPayment(created.id, "c-1"))
    assert refused.value.reason == "PAYMENT_METHOD_NOT_USABLE"
    async with deps.uow() as uow:
        unchanged = await uow.payments.get(created.id)
    assert unchanged is not None
    assert unchanged.state is PaymentState.REQUIRES_CONFIRMATION


class LosesFirstAnswer(MockProvider):
    """Attaches, then loses the first answer on the way back, as a timeout would."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str] = []

    async def attach_payment_method(
        self, provider_payment_method_id: str, customer_id: str, idempotency_key: str
    ) -> ProviderPaymentMethod:
        attached = await super().attach_payment_method(
            provider_payment_method_id, customer_id, idempotency_key
        )
        self.keys.append(idempotency_key)
        if len(self.keys) == 1:
            raise ProviderUnavailable("the provider did not answer in time")
        return attached


async def test_a_retry_after_a_lost_answer_resumes_with_the_same_id(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    provider = LosesFirstAnswer()
    flaky = replace(deps, provider=provider)
    with pytest.raises(ProviderUnavailable):
        await attach_payment_method(flaky, CALLER, attach())
    assert await count(engine, payment_methods) == 0
    outcome = await attach_payment_method(flaky, CALLER, attach())
    assert not outcome.replayed
    # The same provider key both times: the provider sees a repeat, not a second attach.
    assert provider.keys == [f"{outcome.method.id}:attach"] * 2
    assert await count(engine, payment_methods) == 1
    assert (await attach_payment_method(flaky, CALLER, attach())).replayed
