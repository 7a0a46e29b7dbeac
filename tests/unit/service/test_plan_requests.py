"""CreatePlan validation: every bad field named at once, good ones never refused."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.billing_period import MAX_INTERVAL_COUNT, Interval
from server.domain.card_numbers import contains_card_number
from server.domain.errors import InvalidArgument
from server.service.commands import AmountInput
from server.service.plan_commands import MAX_TRIAL_DAYS, CreatePlan, validate_plan


def plan(interval: Interval, count: int, trial_days: int = 0) -> CreatePlan:
    return CreatePlan("req-1", "Premium", AmountInput("USD", 999), interval, count, trial_days)


def refused_fields(command: CreatePlan) -> set[str]:
    try:
        validate_plan(command)
    except InvalidArgument as error:
        return {v.field for v in error.violations}
    return set()


@given(st.sampled_from(list(Interval)), st.integers(-(2**31), 2**31 - 1))
def test_interval_count_is_one_to_three_years(interval: Interval, count: int) -> None:
    ok = 1 <= count <= MAX_INTERVAL_COUNT[interval]
    assert refused_fields(plan(interval, count)) == (set() if ok else {"interval_count"})


@given(st.integers(-(2**31), 2**31 - 1))
def test_trial_days_are_zero_to_730(trial_days: int) -> None:
    ok = 0 <= trial_days <= MAX_TRIAL_DAYS
    assert refused_fields(plan(Interval.MONTH, 1, trial_days)) == (set() if ok else {"trial_days"})


@given(st.text(max_size=300))
def test_names_need_a_visible_character_and_at_most_200(name: str) -> None:
    command = CreatePlan("req-1", name, AmountInput("USD", 999), Interval.DAY, 1)
    unsafe = {"Cc", "Cf", "Cs", "Zl", "Zp"}
    ok = bool(name.strip()) and len(name) <= 200
    ok = ok and not any(unicodedata.category(char) in unsafe for char in name)
    ok = ok and not contains_card_number(name)
    assert refused_fields(command) == (set() if ok else {"name"})


def test_a_card_number_in_the_name_is_refused() -> None:
    command = CreatePlan("req-1", "Gold 4242 4242 4242 4242", AmountInput("USD", 999), None, 1)
    with pytest.raises(InvalidArgument) as caught:
        validate_plan(command)
    assert "name" in {v.field for v in caught.value.violations}


def test_a_valid_plan_gives_its_price() -> None:
    price = validate_plan(plan(Interval.YEAR, 3, 730))
    assert (price.currency_code, price.minor_units) == ("USD", 999)


def test_a_missing_price_and_interval_are_named() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_plan(CreatePlan("req-1", "P", None, None, 1))
    assert [v.field for v in caught.value.violations] == ["price", "interval"]
