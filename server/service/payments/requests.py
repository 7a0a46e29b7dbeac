"""The requests the payment use cases accept, and their validation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from server.domain.card_numbers import contains_card_number
from server.domain.errors import Validator
from server.domain.ids import PAYMENT_ID, PAYMENT_METHOD_ID, IdKind, check_id
from server.domain.money import Money, check_amount
from server.domain.payment import CaptureMethod
from server.domain.text import UNSAFE_TEXT, is_safe_text
from server.service.request_fields import request_fields

MAX_REQUEST_ID = 255
MAX_REFERENCE = 255
MAX_DESCRIPTION = 1000
MAX_METADATA_ENTRIES = 50
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500
MAX_REASON = 500
# Printable ASCII without spaces: ids end up in URLs, logs and provider keys.
# Never a card number either: ids are stored in several tables and logged.
_REFERENCE = re.compile(r"[\x21-\x7e]+")
_PAYMENT_METHOD = re.compile(r"pm_[A-Za-z0-9_]{1,100}")


@dataclass(frozen=True, slots=True)
class AmountInput:
    """An amount as the caller sent it, before validation."""

    currency_code: str
    minor_units: int


@dataclass(frozen=True, slots=True)
class CreatePayment:
    request_id: str
    order_id: str
    user_id: str
    amount: AmountInput | None
    payment_method_id: str = ""
    capture_method: CaptureMethod | None = CaptureMethod.AUTOMATIC
    confirm: bool = False
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    def parameters(self) -> dict[str, Any]:
        return request_fields(self)


@dataclass(frozen=True, slots=True)
class ConfirmPayment:
    id: str
    request_id: str = ""
    payment_method_id: str = ""


@dataclass(frozen=True, slots=True)
class CapturePayment:
    id: str
    request_id: str = ""
    amount_to_capture: AmountInput | None = None


@dataclass(frozen=True, slots=True)
class CancelPayment:
    id: str
    request_id: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SimulatePayment:
    id: str
    request_id: str = ""
    succeed: bool | None = None


def check_identifier(validator: Validator, name: str, value: str, limit: int) -> None:
    """An identifier the client chooses (order_id, user_id, request_id, ...), not empty."""
    if validator.check(
        len(value) <= limit and _REFERENCE.fullmatch(value) is not None,
        name,
        f"must be 1 to {limit} printable ASCII characters without spaces",
    ):
        validator.check(
            not contains_card_number(value),
            name,
            "must not contain a card number; the provider keeps the card",
        )


def check_request_id(validator: Validator, request_id: str, *, required: bool) -> None:
    if not request_id:
        validator.check(not required, "request_id", "is required: a unique key for this request")
        return
    check_identifier(validator, "request_id", request_id, MAX_REQUEST_ID)


def check_reference(validator: Validator, name: str, value: str) -> None:
    if validator.check(bool(value), name, "is required"):
        check_identifier(validator, name, value, MAX_REFERENCE)


def check_payment_id(validator: Validator, value: str, name: str = "id") -> None:
    check_id(validator, PAYMENT_ID, value, name)


def targeted(kind: IdKind, resource_id: str, request_id: str, name: str = "id") -> Validator:
    """Checks what every command on an existing resource sends: the resource's id (as `name`)
    and an optional request_id; the use case adds its own checks, then raises."""
    validator = Validator()
    check_id(validator, kind, resource_id, name)
    check_request_id(validator, request_id, required=False)
    return validator


def check_payment_method(validator: Validator, value: str) -> None:
    """A provider's method (pm_card_visa) or one of our saved methods (pmt_...)."""
    if value:
        validator.check(
            _PAYMENT_METHOD.fullmatch(value) is not None or PAYMENT_METHOD_ID.matches(value),
            "payment_method_id",
            "must be a provider payment method id like pm_card_visa, "
            f"or a saved payment method id like {PAYMENT_METHOD_ID.example}",
        )


def check_text(validator: Validator, name: str, value: str, limit: int) -> None:
    validator.check(len(value) <= limit, name, f"must be at most {limit} characters")
    validator.check(is_safe_text(value), name, UNSAFE_TEXT)
    validator.check(
        not contains_card_number(value),
        name,
        "must not contain a card number; the provider keeps the card",
    )


def check_metadata(validator: Validator, metadata: dict[str, str]) -> None:
    validator.check(
        len(metadata) <= MAX_METADATA_ENTRIES,
        "metadata",
        f"must have at most {MAX_METADATA_ENTRIES} entries",
    )
    for key, value in sorted(metadata.items()):
        ok = validator.check(
            0 < len(key) <= MAX_METADATA_KEY and is_safe_text(key),
            "metadata",
            f"keys must be 1 to {MAX_METADATA_KEY} characters, without control characters",
        ) and validator.check(
            not contains_card_number(key), "metadata", "keys must not contain a card number"
        )
        if ok:
            check_text(validator, f"metadata[{key}]", value, MAX_METADATA_VALUE)


def validate_create(command: CreatePayment) -> Money:
    """Every violation at once; the validated amount when there are none."""
    validator = Validator()
    check_request_id(validator, command.request_id, required=True)
    check_reference(validator, "order_id", command.order_id)
    check_reference(validator, "user_id", command.user_id)
    amount = None
    if validator.check(command.amount is not None, "amount", "is required") and command.amount:
        amount = check_amount(
            validator, "amount", command.amount.currency_code, command.amount.minor_units
        )
    check_payment_method(validator, command.payment_method_id)
    if command.confirm:
        validator.check(
            bool(command.payment_method_id),
            "payment_method_id",
            "is required when confirm is set",
        )
    validator.check(command.capture_method is not None, "capture_method", "is not a known value")
    check_text(validator, "description", command.description, MAX_DESCRIPTION)
    check_metadata(validator, command.metadata)
    validator.raise_if_any()
    assert amount is not None
    return amount
