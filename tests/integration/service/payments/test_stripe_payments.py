"""The payment use cases through the Stripe provider, against localstripe."""

from __future__ import annotations

import httpx
import pytest
import stripe

from server.domain.errors import InvalidArgument
from server.domain.payment import CaptureMethod
from server.domain.payment_states import PaymentState
from server.service.dependencies import Dependencies
from server.service.payments.commands import (
    cancel_payment,
    capture_payment,
    confirm_payment,
    create_payment,
)
from server.service.payments.requests import (
    AmountInput,
    CancelPayment,
    CapturePayment,
    ConfirmPayment,
    CreatePayment,
)

API_KEY = "sk_test_payments"
THREE_D_SECURE_CARD = "4000002500003155"


def create(
    n: int,
    method: str = "pm_card_visa",
    *,
    capture: CaptureMethod = CaptureMethod.AUTOMATIC,
    confirm: bool = True,
) -> CreatePayment:
    return CreatePayment(
        request_id=f"stripe-{n}",
        order_id=f"stripe-order-{n}",
        user_id="user-1",
        amount=AmountInput("EUR", 1000),
        payment_method_id=method,
        capture_method=capture,
        confirm=confirm,
    )


async def test_success_with_metadata_and_client_secret(
    stripe_deps: Dependencies, stripe_client: stripe.StripeClient
) -> None:
    outcome = await create_payment(stripe_deps, "svc", create(1))
    payment = outcome.resource
    assert payment.state is PaymentState.SUCCEEDED
    assert payment.provider == "stripe"
    assert payment.amount_captured == 1000
    assert outcome.client_secret.startswith(payment.provider_payment_id + "_secret_")
    intent = await stripe_client.v1.payment_intents.retrieve_async(payment.provider_payment_id)
    assert intent.amount == 1000
    assert intent.currency == "eur"
    assert intent.metadata.to_dict() == {"payment_id": payment.id, "order_id": "stripe-order-1"}
    replay = await create_payment(stripe_deps, "svc", create(1))
    assert replay.replayed
    assert replay.client_secret == outcome.client_secret


async def test_card_decline_is_a_failed_payment(stripe_deps: Dependencies) -> None:
    payment = (
        await create_payment(stripe_deps, "svc", create(2, "pm_card_chargeCustomerFail"))
    ).resource
    assert payment.state is PaymentState.FAILED
    assert payment.failure_code == "card_declined"
    assert payment.failure_message == "Your card was declined."
    assert payment.provider_payment_id.startswith("pi_")


async def test_a_decline_names_its_intent_behind_a_hundred_older_ones(
    stripe_deps: Dependencies, stripe_client: stripe.StripeClient
) -> None:
    # localstripe has no search and lists the oldest intents first: the one a decline
    # happened on is found on a later page, never taken for missing.
    for n in range(101):
        await stripe_client.v1.payment_intents.create_async(
            {"amount": 100, "currency": "usd", "metadata": {"payment_id": f"pay_older{n}"}}
        )
    payment = (
        await create_payment(stripe_deps, "svc", create(9, "pm_card_chargeCustomerFail"))
    ).resource
    assert payment.state is PaymentState.FAILED
    intent = await stripe_client.v1.payment_intents.retrieve_async(payment.provider_payment_id)
    assert intent.metadata["payment_id"] == payment.id


async def test_three_d_secure_then_confirm(
    stripe_deps: Dependencies, stripe_client: stripe.StripeClient, localstripe_url: str
) -> None:
    method = await stripe_client.v1.payment_methods.create_async(
        {
            "type": "card",
            "card": {
                "number": THREE_D_SECURE_CARD,
                "exp_month": 12,
                "exp_year": 2030,
                "cvc": "123",
            },
        }
    )
    outcome = await create_payment(stripe_deps, "svc", create(3, method.id))
    payment = outcome.resource
    assert payment.state is PaymentState.REQUIRES_ACTION
    # Still waiting: confirming again before the customer acted changes nothing.
    again = await confirm_payment(stripe_deps, "svc", ConfirmPayment(payment.id))
    assert again.resource.state is PaymentState.REQUIRES_ACTION
    # The customer passes the challenge in the browser (Stripe.js with the client secret).
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{localstripe_url}/v1/payment_intents/{payment.provider_payment_id}/_authenticate",
            data={"client_secret": outcome.client_secret, "success": "true"},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        answer.raise_for_status()
    done = await confirm_payment(stripe_deps, "svc", ConfirmPayment(payment.id, "after-3ds"))
    assert done.resource.state is PaymentState.SUCCEEDED


async def test_manual_capture_partial_and_full(stripe_deps: Dependencies) -> None:
    held = (
        await create_payment(stripe_deps, "svc", create(4, capture=CaptureMethod.MANUAL))
    ).resource
    assert held.state is PaymentState.REQUIRES_CAPTURE
    part = await capture_payment(
        stripe_deps, "svc", CapturePayment(held.id, "cap-4", AmountInput("EUR", 600))
    )
    assert part.resource.state is PaymentState.SUCCEEDED
    assert part.resource.amount_captured == 600
    full = (
        await create_payment(stripe_deps, "svc", create(5, capture=CaptureMethod.MANUAL))
    ).resource
    captured = await capture_payment(stripe_deps, "svc", CapturePayment(full.id, "cap-5"))
    assert captured.resource.amount_captured == 1000


async def test_cancel_an_authorization(
    stripe_deps: Dependencies, stripe_client: stripe.StripeClient
) -> None:
    held = (
        await create_payment(stripe_deps, "svc", create(6, capture=CaptureMethod.MANUAL))
    ).resource
    canceled = await cancel_payment(stripe_deps, "svc", CancelPayment(held.id, "cancel-6"))
    assert canceled.resource.state is PaymentState.CANCELED
    intent = await stripe_client.v1.payment_intents.retrieve_async(held.provider_payment_id)
    assert intent.status == "canceled"


async def test_unknown_payment_method_is_refused(stripe_deps: Dependencies) -> None:
    with pytest.raises(InvalidArgument) as error:
        await create_payment(stripe_deps, "svc", create(7, "pm_does_not_exist"))
    assert error.value.reason == "PROVIDER_REJECTED"
