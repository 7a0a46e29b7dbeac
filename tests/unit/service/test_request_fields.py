"""request_fields is asdict, made cheaply: the same dict, so a stored key's fingerprint
still matches the retry that carries the same request."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from server.service.payment_methods.requests import AttachPaymentMethod, UpdatePaymentMethod
from server.service.payments.requests import CreatePayment
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
