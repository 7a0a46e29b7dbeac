"""Stripe.js's client_secret: never stored; fetched from the provider when its owner needs it."""

from __future__ import annotations

from server.domain.payment import Payment
from server.domain.payment_states import PaymentState
from server.service.dependencies import Dependencies

# The customer still has something to do in the browser (pay, confirm, 3-D Secure).
AWAITING_CUSTOMER = frozenset(
    {
        PaymentState.REQUIRES_PAYMENT_METHOD,
        PaymentState.REQUIRES_CONFIRMATION,
        PaymentState.REQUIRES_ACTION,
    }
)


async def fetch_client_secret(deps: Dependencies, payment: Payment) -> str:
    """The provider's client secret for `payment`; empty where the provider has none."""
    if not deps.provider.issues_client_secrets or not payment.provider_payment_id:
        return ""
    return (await deps.provider.retrieve_payment(payment.provider_payment_id)).client_secret


async def client_secret_while_awaiting_customer(deps: Dependencies, payment: Payment) -> str:
    """For GetPayment by the owner: the secret only while the browser still needs it."""
    if payment.state not in AWAITING_CUSTOMER:
        return ""
    return await fetch_client_secret(deps, payment)
