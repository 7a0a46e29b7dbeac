"""A saved payment method: our record of a provider's card attached to one user.

We keep only what a customer sees on a receipt (brand, last four digits,
expiry) and the billing details; never a card number, CVC or secret. The
provider holds the card.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from server.domain.errors import FailedPrecondition


class PaymentMethodType(StrEnum):
    CARD = "card"


@dataclass(frozen=True, slots=True)
class Address:
    line1: str = ""
    line2: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    # ISO 3166-1 alpha-2, upper case.
    country: str = ""


@dataclass(frozen=True, slots=True)
class BillingDetails:
    name: str = ""
    email: str = ""
    phone: str = ""
    address: Address = field(default_factory=Address)

    @property
    def is_empty(self) -> bool:
        return self == BillingDetails()


@dataclass(frozen=True, slots=True)
class CardDetails:
    """What the provider tells us about the card: enough to recognise it, never to charge it."""

    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(slots=True)
class PaymentMethod:
    id: str
    user_id: str
    provider: str
    # The provider's customer the method is attached to, and the method's id there.
    provider_customer_id: str
    provider_payment_method_id: str
    type: PaymentMethodType
    card: CardDetails
    is_default: bool
    billing_details: BillingDetails
    create_time: datetime
    update_time: datetime
    # Set once the method is detached; it is then kept for the record only.
    detach_time: datetime | None = None

    @property
    def attached(self) -> bool:
        return self.detach_time is None

    def ensure_attached(self) -> None:
        if not self.attached:
            raise FailedPrecondition(
                f"payment method {self.id} is detached",
                reason="PAYMENT_METHOD_DETACHED",
                metadata={"payment_method_id": self.id},
            )

    def set_default(self, is_default: bool, now: datetime) -> None:
        """The caller clears the user's other default in the same transaction."""
        self.ensure_attached()
        if self.is_default != is_default:
            self.is_default = is_default
            self.update_time = now

    def update_billing(self, billing_details: BillingDetails, now: datetime) -> None:
        self.ensure_attached()
        if self.billing_details != billing_details:
            self.billing_details = billing_details
            self.update_time = now

    def detach(self, now: datetime) -> None:
        """Detached for good: no longer the default, no longer usable or listed."""
        self.ensure_attached()
        self.is_default = False
        self.detach_time = now
        self.update_time = now


def new_payment_method(
    *,
    method_id: str,
    user_id: str,
    provider: str,
    provider_customer_id: str,
    provider_payment_method_id: str,
    card: CardDetails,
    is_default: bool,
    billing_details: BillingDetails,
    now: datetime,
) -> PaymentMethod:
    return PaymentMethod(
        id=method_id,
        user_id=user_id,
        provider=provider,
        provider_customer_id=provider_customer_id,
        provider_payment_method_id=provider_payment_method_id,
        type=PaymentMethodType.CARD,
        card=card,
        is_default=is_default,
        billing_details=billing_details,
        create_time=now,
        update_time=now,
    )
