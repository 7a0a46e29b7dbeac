"""How a payment is put to the provider: what it is registered with, and under which key."""

from __future__ import annotations

from server.domain.payment import Payment
from server.service.provider import CreateAtProvider


def charge_key(payment: Payment) -> str:
    """The key a payment is created and charged with, in one call."""
    return f"{payment.id}:create-confirm"


def registration(
    payment: Payment, method_id: str = "", customer_id: str = "", *, confirm: bool = False
) -> CreateAtProvider:
    """The payment as the provider is asked to create it (and, with `confirm`, charge it)."""
    return CreateAtProvider(
        payment_id=payment.id,
        order_id=payment.order_id,
        amount=payment.amount,
        capture_method=payment.capture_method,
        payment_method_id=method_id,
        description=payment.description,
        customer_id=customer_id,
        confirm=confirm,
    )
