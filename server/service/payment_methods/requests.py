"""The requests the payment method use cases accept, and their validation.

Field paths in violations are the request's own field names, for example
`billing_details.address.country` on attach and
`payment_method.billing_details.email` on update.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from server.domain.errors import Validator
from server.domain.ids import PAYMENT_METHOD_ID
from server.domain.payment_method import Address, BillingDetails
from server.service.payments.requests import (
    check_reference,
    check_request_id,
    check_text,
    targeted,
)
from server.service.request_fields import request_fields

MAX_NAME = 200
MAX_LINE = 200
MAX_EMAIL = 254
MAX_POSTAL_CODE = 20
_PROVIDER_METHOD = re.compile(r"pm_[A-Za-z0-9_]{1,100}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# E.164 allows 15 digits; spaces, dots, dashes and parentheses are accepted for people.
_PHONE = re.compile(r"\+?[0-9 ().-]{3,30}")
_COUNTRY = re.compile(r"[A-Z]{2}")
# 13 to 19 digits, perhaps grouped with spaces or dashes: the shape of a card number.

ADDRESS_FIELDS = tuple(f.name for f in fields(Address))
BILLING_LEAVES = ("name", "email", "phone", *(f"address.{name}" for name in ADDRESS_FIELDS))
# What UpdatePaymentMethod may change, as update_mask paths on the PaymentMethod.
UPDATABLE_PATHS = frozenset(
    {
        "default",
        "billing_details",
        "billing_details.address",
        *(f"billing_details.{leaf}" for leaf in BILLING_LEAVES),
    }
)
FULL_REPLACEMENT = "*"


@dataclass(frozen=True, slots=True)
class AttachPaymentMethod:
    request_id: str
    user_id: str
    provider_payment_method_id: str
    set_default: bool = False
    billing_details: BillingDetails = field(default_factory=BillingDetails)

    def parameters(self) -> dict[str, Any]:
        return request_fields(self)


@dataclass(frozen=True, slots=True)
class UpdatePaymentMethod:
    id: str
    request_id: str = ""
    default: bool = False
    # None when the request carried no billing_details at all.
    billing_details: BillingDetails | None = None
    # None when the request carried no update_mask: the populated fields are implied.
    update_mask: tuple[str, ...] | None = None

    def parameters(self) -> dict[str, Any]:
        return request_fields(self)


@dataclass(frozen=True, slots=True)
class DetachPaymentMethod:
    id: str
    request_id: str = ""


def check_billing(validator: Validator, prefix: str, billing: BillingDetails) -> None:
    """Every violation of `billing`, named `<prefix>.<field>`."""
    check_text(validator, f"{prefix}.name", billing.name, MAX_NAME)
    if billing.email:
        validator.check(
            len(billing.email) <= MAX_EMAIL and _EMAIL.fullmatch(billing.email) is not None,
            f"{prefix}.email",
            f"must be an email address of at most {MAX_EMAIL} characters",
        )
    if billing.phone:
        digits = sum(c.isdigit() for c in billing.phone)
        validator.check(
            _PHONE.fullmatch(billing.phone) is not None and 3 <= digits <= 15,
            f"{prefix}.phone",
            "must be a phone number: up to 15 digits, an optional leading +",
        )
    address = billing.address
    for name in ("line1", "line2", "city", "state"):
        check_text(validator, f"{prefix}.address.{name}", getattr(address, name), MAX_LINE)
    check_text(validator, f"{prefix}.address.postal_code", address.postal_code, MAX_POSTAL_CODE)
    if address.country:
        validator.check(
            _COUNTRY.fullmatch(address.country) is not None,
            f"{prefix}.address.country",
            "must be an upper-case ISO 3166-1 alpha-2 code, for example US",
        )


def check_provider_method(validator: Validator, value: str) -> None:
    if validator.check(bool(value), "provider_payment_method_id", "is required"):
        validator.check(
            _PROVIDER_METHOD.fullmatch(value) is not None,
            "provider_payment_method_id",
            "must be a provider payment method id like pm_card_visa",
        )


def validate_attach(command: AttachPaymentMethod) -> None:
    validator = Validator()
    check_request_id(validator, command.request_id, required=True)
    check_reference(validator, "user_id", command.user_id)
    check_provider_method(validator, command.provider_payment_method_id)
    check_billing(validator, "billing_details", command.billing_details)
    validator.raise_if_any()


def implied_paths(command: UpdatePaymentMethod) -> frozenset[str]:
    """AIP-134 without a mask: every field the request populates."""
    paths = {"default"} if command.default else set()
    billing = command.billing_details or BillingDetails()
    for leaf in BILLING_LEAVES:
        if _leaf(billing, leaf):
            paths.add(f"billing_details.{leaf}")
    return frozenset(paths)


def update_paths(validator: Validator, command: UpdatePaymentMethod) -> frozenset[str]:
    """The paths to change; `*` stands for every updatable field (a full replacement)."""
    if not command.update_mask:
        paths = implied_paths(command)
    elif FULL_REPLACEMENT in command.update_mask:
        paths = frozenset({"default", "billing_details"})
    else:
        paths = frozenset(command.update_mask)
        for path in sorted(paths - UPDATABLE_PATHS):
            validator.add(
                "update_mask",
                f"{path!r} cannot be updated; the paths that can: "
                f"{', '.join(sorted(UPDATABLE_PATHS))}",
            )
    validator.check(bool(paths), "update_mask", "names no field to update")
    return paths


def validate_update(command: UpdatePaymentMethod) -> frozenset[str]:
    """Every violation at once; the normalised update_mask paths when there are none."""
    validator = targeted(PAYMENT_METHOD_ID, command.id, command.request_id, "payment_method.id")
    paths = update_paths(validator, command)
    if command.billing_details is not None:
        # Only what the mask takes from the request has to be valid.
        checked = Validator()
        check_billing(checked, "payment_method.billing_details", command.billing_details)
        for violation in checked.violations:
            if covered(violation.field.removeprefix("payment_method."), paths):
                validator.violations.append(violation)
    validator.raise_if_any()
    return paths


def validate_detach(command: DetachPaymentMethod) -> None:
    targeted(PAYMENT_METHOD_ID, command.id, command.request_id).raise_if_any()


def covered(path: str, mask: frozenset[str]) -> bool:
    """Whether `path` is one of the mask's paths or lies under one."""
    return any(path == p or path.startswith(f"{p}.") for p in mask)


def touches_billing(paths: frozenset[str]) -> bool:
    return any(covered(f"billing_details.{leaf}", paths) for leaf in BILLING_LEAVES)


def _leaf(billing: BillingDetails, leaf: str) -> str:
    if leaf.startswith("address."):
        return str(getattr(billing.address, leaf.removeprefix("address.")))
    return str(getattr(billing, leaf))


def merge_billing(
    current: BillingDetails, incoming: BillingDetails, paths: frozenset[str]
) -> BillingDetails:
    """`current` with the fields under `paths` taken from `incoming` (AIP-134 semantics)."""
    values = {
        leaf: _leaf(incoming if covered(f"billing_details.{leaf}", paths) else current, leaf)
        for leaf in BILLING_LEAVES
    }
    return BillingDetails(
        name=values["name"],
        email=values["email"],
        phone=values["phone"],
        address=Address(**{name: values[f"address.{name}"] for name in ADDRESS_FIELDS}),
    )
