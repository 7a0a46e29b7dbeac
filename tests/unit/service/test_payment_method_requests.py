"""Tests for the validation of payment method requests and the AIP-134 update mask."""

from __future__ import annotations

import re
import string
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.errors import InvalidArgument
from server.domain.ids import PAYMENT_METHOD_ID
from server.domain.payment_method import Address, BillingDetails
from server.service.payment_method_requests import (
    BILLING_LEAVES,
    UPDATABLE_PATHS,
    AttachPaymentMethod,
    DetachPaymentMethod,
    UpdatePaymentMethod,
    implied_paths,
    merge_billing,
    validate_attach,
    validate_detach,
    validate_update,
)
from tests.support.card_numbers import luhn_cards

METHOD_ID = "pmt_01JD0000000000000000000000"
VALID = AttachPaymentMethod(
    request_id="req-1",
    user_id="user-1",
    provider_payment_method_id="pm_card_visa",
    set_default=True,
    billing_details=BillingDetails(
        name="Ada Lovelace",
        email="ada@example.com",
        phone="+44 20 7946 0018",
        address=Address("1 Main St", "Flat 2", "London", "", "SW1Y 4JH", "GB"),
    ),
)

# Letters and a few digits: never 13 digits in a row.
words = st.text(alphabet=string.ascii_letters + " .,'-", max_size=60)
short_numbers = st.integers(min_value=0, max_value=999_999).map(str)
free_text = st.builds(lambda a, n, b: f"{a}{n}{b}", words, short_numbers, words)
countries = st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2)
emails = st.builds(
    lambda user, host: f"{user}@{host}.example",
    st.text(alphabet=string.ascii_lowercase + "._+", min_size=1, max_size=20),
    st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=20),
)
phones = st.builds(lambda n: f"+1 {n}", st.integers(min_value=100, max_value=99_999_999_999))
addresses = st.builds(
    Address,
    line1=free_text,
    line2=free_text,
    city=free_text,
    state=free_text,
    postal_code=st.text(alphabet=string.ascii_uppercase + string.digits + " ", max_size=10),
    country=st.one_of(st.just(""), countries),
)
billings = st.builds(
    BillingDetails,
    name=free_text,
    email=st.one_of(st.just(""), emails),
    phone=st.one_of(st.just(""), phones),
    address=addresses,
)
# Luhn-valid 13-19 digit numbers: what server.domain.card_numbers calls a card number.
card_numbers = luhn_cards()
FREE_TEXT_FIELDS = ("name", "address.line1", "address.line2", "address.city", "address.state")


def fields_of(call: object) -> set[str]:
    assert callable(call)
    with pytest.raises(InvalidArgument) as caught:
        call()
    return {violation.field for violation in caught.value.violations}


def with_leaf(billing: BillingDetails, leaf: str, value: str) -> BillingDetails:
    if leaf.startswith("address."):
        return replace(billing, address=replace(billing.address, **{leaf[8:]: value}))
    top = {"name": billing.name, "email": billing.email, "phone": billing.phone, leaf: value}
    return BillingDetails(top["name"], top["email"], top["phone"], billing.address)


def test_a_valid_attach_passes() -> None:
    validate_attach(VALID)


@given(billing=billings, default=st.booleans())
def test_any_well_formed_attach_passes(billing: BillingDetails, default: bool) -> None:
    validate_attach(replace(VALID, billing_details=billing, set_default=default))


@given(
    number=card_numbers,
    leaf=st.sampled_from(FREE_TEXT_FIELDS),
    grouped=st.booleans(),
)
def test_a_card_number_in_any_free_text_field_is_refused(
    number: str, leaf: str, grouped: bool
) -> None:
    if grouped:
        number = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    billing = with_leaf(VALID.billing_details, leaf, f"card {number}")
    command = replace(VALID, billing_details=billing)
    assert fields_of(lambda: validate_attach(command)) == {f"billing_details.{leaf}"}


@given(country=st.text(min_size=1, max_size=4).filter(lambda c: not re.fullmatch("[A-Z]{2}", c)))
def test_country_must_be_two_upper_case_letters(country: str) -> None:
    billing = with_leaf(VALID.billing_details, "address.country", country)
    command = replace(VALID, billing_details=billing)
    assert "billing_details.address.country" in fields_of(lambda: validate_attach(command))


@given(method=st.text(max_size=120).filter(lambda m: not m.startswith("pm_")))
def test_provider_method_ids_look_like_stripes(method: str) -> None:
    command = replace(VALID, provider_payment_method_id=method)
    assert fields_of(lambda: validate_attach(command)) == {"provider_payment_method_id"}


@pytest.mark.parametrize(
    ("leaf", "value"),
    [
        ("email", "not an email"),
        ("email", "a@b"),
        ("phone", "call me"),
        ("phone", "+1234567890123456"),
        ("name", "x" * 201),
        ("address.postal_code", "9" * 21),
        ("address.city", "nul\x00"),
    ],
)
def test_bad_billing_values(leaf: str, value: str) -> None:
    command = replace(VALID, billing_details=with_leaf(VALID.billing_details, leaf, value))
    assert fields_of(lambda: validate_attach(command)) == {f"billing_details.{leaf}"}


def test_every_missing_required_field_at_once() -> None:
    command = AttachPaymentMethod(request_id="", user_id="", provider_payment_method_id="")
    assert fields_of(lambda: validate_attach(command)) == {
        "request_id",
        "user_id",
        "provider_payment_method_id",
    }


@given(current=billings, incoming=billings)
def test_merge_with_no_path_keeps_and_with_the_whole_message_replaces(
    current: BillingDetails, incoming: BillingDetails
) -> None:
    assert merge_billing(current, incoming, frozenset({"default"})) == current
    assert merge_billing(current, incoming, frozenset({"billing_details"})) == incoming
    merged = merge_billing(current, incoming, frozenset({"billing_details.address"}))
    assert merged == replace(current, address=incoming.address)


@given(
    current=billings,
    incoming=billings,
    leaves=st.sets(st.sampled_from(BILLING_LEAVES)),
)
def test_merge_takes_exactly_the_masked_leaves(
    current: BillingDetails, incoming: BillingDetails, leaves: set[str]
) -> None:
    merged = merge_billing(current, incoming, frozenset(f"billing_details.{x}" for x in leaves))
    for leaf in BILLING_LEAVES:
        source = incoming if leaf in leaves else current
        if leaf.startswith("address."):
            assert getattr(merged.address, leaf[8:]) == getattr(source.address, leaf[8:])
        else:
            assert getattr(merged, leaf) == getattr(source, leaf)


@given(billing=billings, default=st.booleans())
def test_without_a_mask_the_populated_fields_are_implied(
    billing: BillingDetails, default: bool
) -> None:
    command = UpdatePaymentMethod(id=METHOD_ID, default=default, billing_details=billing)
    paths = implied_paths(command)
    assert ("default" in paths) == default
    assert paths <= UPDATABLE_PATHS
    assert merge_billing(BillingDetails(), billing, paths) == billing


def test_full_replacement_and_unknown_paths() -> None:
    star = UpdatePaymentMethod(id=METHOD_ID, update_mask=("*",))
    assert validate_update(star) == frozenset({"default", "billing_details"})
    unknown = UpdatePaymentMethod(id=METHOD_ID, update_mask=("user_id", "default", "card"))
    assert fields_of(lambda: validate_update(unknown)) == {"update_mask"}
    empty = UpdatePaymentMethod(id=METHOD_ID)
    assert fields_of(lambda: validate_update(empty)) == {"update_mask"}
    bad_id = UpdatePaymentMethod(id="pm_card_visa", request_id="has space", default=True)
    assert fields_of(lambda: validate_update(bad_id)) == {"payment_method.id", "request_id"}


@given(bad_leaf=st.sampled_from(("email", "address.country")), mask_it=st.booleans())
def test_only_masked_billing_fields_must_be_valid(bad_leaf: str, mask_it: bool) -> None:
    billing = with_leaf(BillingDetails(name="Ada"), bad_leaf, "bad value")
    mask = ("billing_details.name", *((f"billing_details.{bad_leaf}",) if mask_it else ()))
    command = UpdatePaymentMethod(id=METHOD_ID, billing_details=billing, update_mask=mask)
    if mask_it:
        expected = {f"payment_method.billing_details.{bad_leaf}"}
        assert fields_of(lambda: validate_update(command)) == expected
    else:
        assert validate_update(command) == frozenset(mask)


def test_detach_needs_one_of_our_ids() -> None:
    validate_detach(DetachPaymentMethod(PAYMENT_METHOD_ID.new(), "req-1"))
    assert fields_of(lambda: validate_detach(DetachPaymentMethod(""))) == {"id"}
    assert fields_of(lambda: validate_detach(DetachPaymentMethod("pm_card_visa"))) == {"id"}
