"""Tests for CreatePayment validation."""

from __future__ import annotations

import dataclasses
import re
import string
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.card_numbers import contains_card_number
from server.domain.currencies import MINOR_UNIT_EXPONENTS
from server.domain.errors import InvalidArgument, Validator
from server.domain.money import Money
from server.domain.payment import CaptureMethod
from server.service.commands import AmountInput, CreatePayment, check_text, validate_create
from tests.support.card_numbers import luhn_cards


def readable_id(value: object) -> str:
    """A test id of plain characters, so the id can be passed back on pytest's command line."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", repr(value))[:60]


PM_CHARS = set(string.ascii_letters + string.digits + "_")
VALID = CreatePayment(
    request_id="req-1",
    order_id="order-1",
    user_id="user-1",
    amount=AmountInput("USD", 1050),
    payment_method_id="pm_card_visa",
    capture_method=CaptureMethod.AUTOMATIC,
    confirm=True,
    description="two coffees",
    metadata={"cart": "42"},
)


def fields_of(command: CreatePayment) -> list[str]:
    with pytest.raises(InvalidArgument) as caught:
        validate_create(command)
    assert caught.value.reason == "INVALID_ARGUMENT"
    return [violation.field for violation in caught.value.violations]


def test_a_valid_command_returns_its_money() -> None:
    assert validate_create(VALID) == Money("USD", 1050)


@pytest.mark.parametrize(
    "changes",
    [
        {"payment_method_id": "", "confirm": False},
        {"capture_method": CaptureMethod.MANUAL},
        {"description": "", "metadata": {}},
        {"request_id": "r" * 255, "order_id": "o" * 255, "user_id": "u" * 255},
        {"request_id": "!~#$%&'()*+,-./:;<=>?@[]^_`{|}"},
        {"amount": AmountInput("JPY", 1)},
        {"amount": AmountInput("BHD", 10**12)},
        {"payment_method_id": "pm_" + "a" * 100},
        {"description": "d" * 1000},
        {"metadata": {f"key{i}": "v" * 500 for i in range(50)}},
        {"metadata": {"k" * 40: ""}},
        {"description": "héllo wörld ✓"},
    ],
    ids=readable_id,
)
def test_valid_variants_pass(changes: dict[str, Any]) -> None:
    command = dataclasses.replace(VALID, **changes)
    assert command.amount is not None
    assert validate_create(command) == Money(
        command.amount.currency_code, command.amount.minor_units
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"request_id": ""}, "request_id"),
        ({"request_id": "r" * 256}, "request_id"),
        ({"request_id": "has spaces"}, "request_id"),
        ({"request_id": "tab\there"}, "request_id"),
        ({"request_id": "ünïcode"}, "request_id"),
        ({"order_id": ""}, "order_id"),
        ({"order_id": "o" * 256}, "order_id"),
        ({"order_id": "order 1"}, "order_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "u" * 256}, "user_id"),
        ({"user_id": "user\n1"}, "user_id"),
        ({"amount": None}, "amount"),
        ({"amount": AmountInput("usd", 100)}, "amount.currency_code"),
        ({"amount": AmountInput("XYZ", 100)}, "amount.currency_code"),
        ({"amount": AmountInput("", 100)}, "amount.currency_code"),
        ({"amount": AmountInput("USD", 0)}, "amount.minor_units"),
        ({"amount": AmountInput("USD", -1)}, "amount.minor_units"),
        ({"amount": AmountInput("USD", 10**12 + 1)}, "amount.minor_units"),
        ({"amount": AmountInput("USD", 2**63)}, "amount.minor_units"),
        ({"amount": AmountInput("USD", -(2**63) - 1)}, "amount.minor_units"),
        ({"confirm": True, "payment_method_id": ""}, "payment_method_id"),
        ({"payment_method_id": "card_visa"}, "payment_method_id"),
        ({"payment_method_id": "pm_"}, "payment_method_id"),
        ({"payment_method_id": "pm_card visa"}, "payment_method_id"),
        ({"payment_method_id": "pm_" + "a" * 101}, "payment_method_id"),
        ({"payment_method_id": "pm_card_visa\n"}, "payment_method_id"),
        ({"capture_method": None}, "capture_method"),
        ({"description": "d" * 1001}, "description"),
        ({"description": "nul\x00"}, "description"),
        ({"metadata": {f"key{i}": "v" for i in range(51)}}, "metadata"),
        ({"metadata": {"k" * 41: "v"}}, "metadata"),
        ({"metadata": {"": "v"}}, "metadata"),
        ({"metadata": {"nul\x00": "v"}}, "metadata"),
        ({"metadata": {"note": "v" * 501}}, "metadata[note]"),
        ({"metadata": {"note": "nul\x00"}}, "metadata[note]"),
    ],
    ids=readable_id,
)
def test_each_bad_field_is_reported_under_its_path(changes: dict[str, Any], field: str) -> None:
    assert fields_of(dataclasses.replace(VALID, **changes)) == [field]


def test_several_bad_fields_are_reported_at_once() -> None:
    command = CreatePayment(
        request_id="",
        order_id="",
        user_id="a user",
        amount=AmountInput("usd", 0),
        payment_method_id="visa",
        capture_method=None,
        confirm=True,
        description="d" * 1001,
        metadata={"k" * 41: "v", "ok": "v" * 501},
    )
    assert sorted(fields_of(command)) == sorted(
        [
            "request_id",
            "order_id",
            "user_id",
            "amount.currency_code",
            "amount.minor_units",
            "payment_method_id",
            "capture_method",
            "description",
            "metadata",
            "metadata[ok]",
        ]
    )


def test_violations_name_the_limits() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_create(dataclasses.replace(VALID, description="d" * 1001))
    (violation,) = caught.value.violations
    assert "1000" in violation.description


def test_parameters_are_the_fields_as_a_dict() -> None:
    parameters = VALID.parameters()
    assert parameters["amount"] == {"currency_code": "USD", "minor_units": 1050}
    assert parameters["metadata"] == {"cart": "42"}
    assert parameters["request_id"] == "req-1"


# --- hypothesis: nothing but InvalidArgument ---------------------------------------------------

texts = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
    st.sampled_from(["", "req-1", "pm_card_visa", "x" * 256, "pm_" + "a" * 101, "pm_a b"]),
    st.from_regex(r"pm_[A-Za-z0-9_]{1,100}", fullmatch=True),
)
integers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 10**12, 10**12 + 1, 2**63 - 1, 2**63, -(2**63), 2**64]),
)
currency_codes = st.one_of(st.text(max_size=4), st.sampled_from(["USD", "JPY", "BHD", "usd"]))
FIELD_STRATEGIES: dict[str, st.SearchStrategy[Any]] = dict(
    request_id=texts,
    order_id=texts,
    user_id=texts,
    amount=st.one_of(st.none(), st.builds(AmountInput, currency_codes, integers)),
    payment_method_id=texts,
    capture_method=st.one_of(st.none(), st.sampled_from(CaptureMethod)),
    confirm=st.booleans(),
    description=st.one_of(st.text(max_size=1100), st.just("d" * 1001)),
    metadata=st.one_of(
        st.dictionaries(st.text(max_size=45), st.text(max_size=10), max_size=55),
        st.dictionaries(st.text(max_size=3), st.text(min_size=495, max_size=505), max_size=3),
    ),
)
random_commands = st.builds(CreatePayment, **FIELD_STRATEGIES)


@st.composite
def nearly_valid_commands(draw: st.DrawFn) -> CreatePayment:
    """VALID with up to two fields drawn at random, so that many commands pass."""
    names = draw(st.sets(st.sampled_from(sorted(FIELD_STRATEGIES)), max_size=2))
    return dataclasses.replace(VALID, **{name: draw(FIELD_STRATEGIES[name]) for name in names})


commands = st.one_of(random_commands, nearly_valid_commands())


def expected_fields(command: CreatePayment) -> set[str]:
    """An oracle written apart from the validator: the paths of every bad field."""

    def reference(value: str) -> bool:
        printable = 0 < len(value) <= 255 and all(0x21 <= ord(char) <= 0x7E for char in value)
        return printable and not contains_card_number(value)

    def safe(value: str) -> bool:
        categories = {"Cc", "Cf", "Cs", "Zl", "Zp"}
        return not any(unicodedata.category(char) in categories for char in value)

    def text(value: str, limit: int) -> bool:
        return len(value) <= limit and safe(value)

    bad = {
        name
        for name in ("request_id", "order_id", "user_id")
        if not reference(getattr(command, name))
    }
    if command.amount is None:
        bad.add("amount")
    else:
        if command.amount.currency_code not in MINOR_UNIT_EXPONENTS:
            bad.add("amount.currency_code")
        if not 0 < command.amount.minor_units <= 10**12:
            bad.add("amount.minor_units")
    method = command.payment_method_id
    method_ok = method.startswith("pm_") and 1 <= len(method) - 3 <= 100
    if method and not (method_ok and all(char in PM_CHARS for char in method[3:])):
        bad.add("payment_method_id")
    if command.confirm and not method:
        bad.add("payment_method_id")
    if command.capture_method is None:
        bad.add("capture_method")
    if not text(command.description, 1000):
        bad.add("description")
    if len(command.metadata) > 50:
        bad.add("metadata")
    for key, value in command.metadata.items():
        if not (0 < len(key) <= 40 and safe(key)):
            bad.add("metadata")
        elif not text(value, 500):
            bad.add(f"metadata[{key}]")
    return bad


@given(commands)
def test_arbitrary_commands_raise_nothing_but_invalid_argument(command: CreatePayment) -> None:
    bad = expected_fields(command)
    if not bad:
        assert command.amount is not None
        expected = Money(command.amount.currency_code, command.amount.minor_units)
        assert validate_create(command) == expected
        return
    with pytest.raises(InvalidArgument) as caught:
        validate_create(command)
    assert {violation.field for violation in caught.value.violations} == bad


card_numbers = luhn_cards()


@given(card=card_numbers, where=st.sampled_from(["description", "metadata value", "metadata key"]))
def test_a_card_number_in_description_or_metadata_is_refused(card: str, where: str) -> None:
    text = f"paid {card}"[:40]
    if where == "description":
        command = dataclasses.replace(VALID, description=text)
        expected = ["description"]
    elif where == "metadata value":
        command = dataclasses.replace(VALID, metadata={"note": text})
        expected = ["metadata[note]"]
    else:
        command = dataclasses.replace(VALID, metadata={text: "x"})
        expected = ["metadata"]
    assert fields_of(command) == expected


@pytest.mark.parametrize("name", ["reason", "description", "billing_details.name"])
def test_every_free_text_field_refuses_card_numbers(name: str) -> None:
    validator = Validator()
    check_text(validator, name, "refund to 4000 0566 5566 5556 please", 500)
    assert [v.field for v in validator.violations] == [name]


@given(card=luhn_cards(), name=st.sampled_from(["request_id", "order_id", "user_id"]))
def test_a_card_number_in_an_identifier_is_refused(card: str, name: str) -> None:
    changes: dict[str, Any] = {name: f"id-{card}"}
    command = dataclasses.replace(VALID, **changes)
    assert fields_of(command) == [name]


@pytest.mark.parametrize(
    "char",
    ["\x00", "\x1b", "\n", "\u202e", "\u2066", "\u200b", "\u200d", "\ufeff", "\u2028"],
    ids=["nul", "ansi-escape", "newline", "rlo", "lri", "zwsp", "zwj", "bom", "line-sep"],
)
@pytest.mark.parametrize("name", ["reason", "description", "name", "billing_details.name"])
def test_every_free_text_field_refuses_control_bidi_and_zero_width_characters(
    name: str, char: str
) -> None:
    validator = Validator()
    check_text(validator, name, f"Premium{char}plan", 500)
    assert [v.field for v in validator.violations] == [name]


def test_free_text_keeps_ordinary_unicode() -> None:
    validator = Validator()
    check_text(validator, "name", "Café Ünïcode 日本語 مرحبا 🎉", 500)
    assert validator.violations == []
