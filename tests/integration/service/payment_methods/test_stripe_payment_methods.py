"""Saved payment methods through the Stripe provider, against a real localstripe process."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa
import stripe
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db.tables import idempotency_keys, payment_methods
from server.adapters.providers.resilience import (
    CircuitBreaker,
    ResilientProvider,
)
from server.adapters.providers.stripe_provider import StripeProvider
from server.config import ResiliencePolicy
from server.domain.errors import FailedPrecondition, InvalidArgument
from server.domain.payment_method import Address, BillingDetails
from server.domain.payment_states import PaymentState
from server.service.dependencies import Dependencies
from server.service.payment_methods.commands import (
    attach_payment_method,
    detach_payment_method,
    update_payment_method,
)
from server.service.payment_methods.queries import get_payment_method, list_payment_methods
from server.service.payment_methods.requests import (
    AttachPaymentMethod,
    DetachPaymentMethod,
    UpdatePaymentMethod,
)
from server.service.payments.commands import create_payment
from server.service.payments.requests import AmountInput, CreatePayment
from tests.support.stored_data import card_numbers_in, dump_database, secrets_in

API_KEY = "sk_test_local"
CALLER = "checkout-service"
BILLING = BillingDetails(
    name="Grace Hopper",
    email="grace@example.com",
    address=Address(line1="1 Navy Way", city="Arlington", postal_code="22202", country="US"),
)


@pytest.fixture
def stripe_deps(deps: Dependencies, localstripe_url: str) -> Dependencies:
    """The service as bootstrap.py builds it for Stripe: the SDK behind the resilience layer."""
    provider = ResilientProvider(
        StripeProvider(api_key=API_KEY, api_base=localstripe_url),
        ResiliencePolicy(attempts=2, backoff_initial_s=0.01, call_timeout_s=5),
        CircuitBreaker(5, 30),
    )
    return replace(deps, provider=provider, simulator=None)


@pytest.fixture
def stripe_client(localstripe_url: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        API_KEY, base_addresses={"api": localstripe_url}, http_client=stripe.HTTPXClient()
    )


def attach(
    request_id: str, user_id: str, method: str = "pm_card_visa", *, set_default: bool = False
) -> AttachPaymentMethod:
    return AttachPaymentMethod(
        request_id=request_id,
        user_id=user_id,
        provider_payment_method_id=method,
        set_default=set_default,
        billing_details=BILLING,
    )


def pay(n: str, user_id: str, method_id: str) -> CreatePayment:
    return CreatePayment(
        request_id=f"stripe-pm-pay-{n}",
        order_id=f"stripe-pm-order-{n}",
        user_id=user_id,
        amount=AmountInput("EUR", 4200),
        payment_method_id=method_id,
        confirm=True,
    )


async def count(engine: AsyncEngine, table: sa.Table) -> int:
    async with engine.connect() as connection:
        query = sa.select(sa.func.count()).select_from(table)
        return int((await connection.execute(query)).scalar_one())


async def test_attach_creates_one_customer_and_attaches_to_it(
    stripe_deps: Dependencies, stripe_client: stripe.StripeClient, request: pytest.FixtureRequest
) -> None:
    user = f"stripe-user-{request.node.callspec.id}-attach"
    first = (await attach_payment_method(stripe_deps, CALLER, attach("s-a1", user))).resource
    # Stripe turns the test token into a payment method of its own.
    assert first.provider == "stripe"
    assert first.provider_payment_method_id.startswith("pm_")
    assert first.provider_payment_method_id != "pm_card_visa"
    assert first.provider_customer_id.startswith("cus_")
    assert (first.card.brand, first.card.last4) == ("visa", "4242")
    assert (first.card.exp_month, first.card.exp_year) == (12, 2030)
    at_stripe = await stripe_client.v1.payment_methods.retrieve_async(
        first.provider_payment_method_id
    )
    assert at_stripe.customer == first.provider_customer_id
    assert at_stripe.to_dict()["billing_details"]["name"] == "Grace Hopper"
    assert at_stripe.to_dict()["billing_details"]["address"]["country"] == "US"
    customer = await stripe_client.v1.customers.retrieve_async(first.provider_customer_id)
    assert customer.to_dict()["metadata"]["user_id"] == user

    second = (
        await attach_payment_method(stripe_deps, CALLER, attach("s-a2", user, set_default=True))
    ).resource
    assert second.provider_customer_id == first.provider_customer_id
    assert second.provider_payment_method_id != first.provider_payment_method_id
    listed, _ = await list_payment_methods(stripe_deps.uow, user, 10, "")
    assert [m.id for m in listed] == [second.id, first.id]
    assert [m.is_default for m in listed] == [True, False]


async def test_update_and_detach_reach_stripe(
    stripe_deps: Dependencies, stripe_client: stripe.StripeClient, request: pytest.FixtureRequest
) -> None:
    user = f"stripe-user-{request.node.callspec.id}-update"
    method = (await attach_payment_method(stripe_deps, CALLER, attach("s-u1", user))).resource
    updated = await update_payment_method(
        stripe_deps,
        CALLER,
        UpdatePaymentMethod(
            id=method.id,
            request_id="s-u2",
            default=True,
            billing_details=BillingDetails(email="hopper@example.com"),
            update_mask=("default", "billing_details.email"),
        ),
    )
    assert updated.resource.is_default
    assert updated.resource.billing_details == replace(BILLING, email="hopper@example.com")
    at_stripe = await stripe_client.v1.payment_methods.retrieve_async(
        method.provider_payment_method_id
    )
    billing = at_stripe.to_dict()["billing_details"]
    assert billing["email"] == "hopper@example.com"
    assert billing["name"] == "Grace Hopper"

    detached = await detach_payment_method(stripe_deps, CALLER, DetachPaymentMethod(method.id))
    assert not detached.resource.attached
    at_stripe = await stripe_client.v1.payment_methods.retrieve_async(
        method.provider_payment_method_id
    )
    assert at_stripe.customer is None
    assert await list_payment_methods(stripe_deps.uow, user, 10, "") == ([], "")
    assert (await get_payment_method(stripe_deps.uow, method.id)).detach_time is not None


async def test_a_card_declined_on_attach_saves_nothing(
    stripe_deps: Dependencies, engine: AsyncEngine, request: pytest.FixtureRequest
) -> None:
    user = f"stripe-user-{request.node.callspec.id}-declined"
    with pytest.raises(FailedPrecondition) as declined:
        await attach_payment_method(
            stripe_deps, CALLER, attach("s-d1", user, "pm_card_visa_chargeDeclined")
        )
    assert declined.value.reason == "CARD_DECLINED"
    assert declined.value.metadata["decline_code"] == "card_declined"
    assert await count(engine, payment_methods) == 0
    assert await count(engine, idempotency_keys) == 0


async def test_an_unknown_method_is_a_field_violation(
    stripe_deps: Dependencies, engine: AsyncEngine, request: pytest.FixtureRequest
) -> None:
    user = f"stripe-user-{request.node.callspec.id}-unknown"
    with pytest.raises(InvalidArgument) as rejected:
        await attach_payment_method(stripe_deps, CALLER, attach("s-x1", user, "pm_doesNotExist123"))
    assert [v.field for v in rejected.value.violations] == ["provider_payment_method_id"]
    assert await count(engine, payment_methods) == 0


async def test_create_payment_with_a_saved_method_sends_method_and_customer(
    stripe_deps: Dependencies,
    stripe_client: stripe.StripeClient,
    request: pytest.FixtureRequest,
) -> None:
    tag = request.node.callspec.id
    user = f"stripe-user-{tag}-pay"
    method = (await attach_payment_method(stripe_deps, CALLER, attach("s-p1", user))).resource
    outcome = await create_payment(stripe_deps, CALLER, pay(f"{tag}-1", user, method.id))
    payment = outcome.resource
    assert payment.state is PaymentState.SUCCEEDED
    assert payment.payment_method_id == method.id
    intent = await stripe_client.v1.payment_intents.retrieve_async(payment.provider_payment_id)
    assert intent.customer == method.provider_customer_id
    assert intent.payment_method == method.provider_payment_method_id

    failing = (
        await attach_payment_method(
            stripe_deps, CALLER, attach("s-p2", user, "pm_card_chargeCustomerFail")
        )
    ).resource
    failed = (await create_payment(stripe_deps, CALLER, pay(f"{tag}-2", user, failing.id))).resource
    assert failed.state is PaymentState.FAILED
    assert failed.failure_code == "card_declined"


async def test_nothing_secret_is_stored_after_stripe_flows(
    stripe_deps: Dependencies, engine: AsyncEngine, request: pytest.FixtureRequest
) -> None:
    tag = request.node.callspec.id
    user = f"stripe-user-{tag}-secrets"
    method = (
        await attach_payment_method(stripe_deps, CALLER, attach("s-s1", user, set_default=True))
    ).resource
    outcome = await create_payment(stripe_deps, CALLER, pay(f"{tag}-s", user, method.id))
    assert "_secret_" in outcome.client_secret  # Stripe issued one; we must not keep it
    dump = await dump_database(engine)
    assert f"payment_methods: {method.provider_payment_method_id}" in dump
    assert card_numbers_in(dump) == []
    assert secrets_in(dump) == []
