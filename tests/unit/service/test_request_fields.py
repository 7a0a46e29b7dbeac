"""request_fields is asdict, made cheaply: the same dict, so a stored key's fingerprint
still matches the retry that carries the same request."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from server.service.payment_methods.requests import AttachPaymentMethod, UpdatePaymentMethod
from server.service.payments.requests import AmountInput, CreatePayment
from server.service.pipeline.idempotency import fingerprint
from server.service.request_fields import request_fields
from server.service.subscriptions.commands import (
    CancelSubscription,
    CreateSubscription,
    UpdateSubscription,
)

REQUESTS = st.one_of(
    st.from_type(CreatePayment),
    st.from_type(AttachPaymentMethod),
    st.from_type(UpdatePaymentMethod),
    st.from_type(CreateSubscription),
    st.from_type(UpdateSubscription),
    st.from_type(CancelSubscription),
)


@given(REQUESTS)
def test_every_request_gives_what_asdict_gives(request: Any) -> None:
    fields = request_fields(request)
    assert fields == asdict(request)
    assert json.dumps(fields, sort_keys=True, default=str) == json.dumps(
        asdict(request), sort_keys=True, default=str
    )


@given(st.from_type(CreatePayment))
def test_the_fingerprint_is_the_one_asdict_made(request: CreatePayment) -> None:
    assert fingerprint("CreatePayment", request.parameters()) == fingerprint(
        "CreatePayment", asdict(request)
    )


def test_a_nested_request_is_a_new_dict_all_the_way_down() -> None:
    request = CreatePayment(request_id="r", order_id="o", user_id="u", amount=None)
    request.metadata["cart"] = "c-1"
    fields = request_fields(request)
    fields["metadata"]["cart"] = "changed"  # the caller's dict is not the request's
    assert request.metadata == {"cart": "c-1"}


class _Box:
    """A mutable value no request holds today: asdict deep-copies it."""

    def __init__(self, items: list[int]) -> None:
        self.items = items

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Box) and other.items == self.items

    __hash__ = None  # type: ignore[assignment]


@dataclass
class _Odd:
    when: datetime
    blob: bytes
    tags: frozenset[str]
    inner: list[AmountInput]
    box: _Box


def test_any_other_value_is_deep_copied_as_asdict_copies_it() -> None:
    odd = _Odd(
        when=datetime(2026, 12, 2, tzinfo=UTC),
        blob=b"\x00\x01",
        tags=frozenset({"a"}),
        inner=[AmountInput("EUR", 1)],
        box=_Box([1, 2]),
    )
    fields = request_fields(odd)
    assert fields == asdict(odd)
    assert fields["box"].items is not odd.box.items  # a deep copy, not the same list
