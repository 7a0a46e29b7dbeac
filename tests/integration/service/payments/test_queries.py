"""ListPayments on real databases: filters, orderings, keyset pages."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from server.adapters.clock import ManualClock
from server.domain.errors import InvalidArgument
from server.domain.payment import Payment
from server.domain.payment_states import PaymentState
from server.service.dependencies import Dependencies
from server.service.payments.commands import create_payment
from server.service.payments.pages import PaymentQuery, SortKey, TimeBound
from server.service.payments.queries import list_payments
from server.service.payments.requests import AmountInput, CreatePayment

START = datetime(2026, 11, 1, tzinfo=UTC)


async def seed(deps: Dependencies, n: int, *, start: int = 0) -> list[Payment]:
    clock = ManualClock(START + timedelta(minutes=start))
    timed = replace(deps, clock=clock)
    made = []
    for i in range(start, start + n):
        method = "pm_card_chargeDeclined" if i % 3 == 0 else "pm_card_visa"
        command = CreatePayment(
            request_id=f"r-{i}",
            order_id=f"o-{i}",
            user_id=f"user-{i % 2}",
            amount=AmountInput("USD", 100 + (i * 37) % 50),
            payment_method_id=method,
            confirm=True,
        )
        made.append((await create_payment(timed, "svc", command)).resource)
        clock.advance(timedelta(minutes=1))
    return made


async def all_pages(deps: Dependencies, query: PaymentQuery) -> list[Payment]:
    found, token = await list_payments(deps.uow, query)
    pages = [found]
    while token:
        found, token = await list_payments(deps.uow, query, token)
        pages.append(found)
    assert all(0 < len(page) <= query.page_size for page in pages)
    return [p for page in pages for p in page]


async def test_pages_walk_every_payment_newest_first(deps: Dependencies) -> None:
    made = await seed(deps, 23)
    listed = await all_pages(deps, PaymentQuery(page_size=5))
    assert [p.id for p in listed] == [p.id for p in reversed(made)]


async def test_filters_combine(deps: Dependencies) -> None:
    made = await seed(deps, 12)
    query = PaymentQuery(
        user_id="user-1",
        states=frozenset({PaymentState.SUCCEEDED}),
        create_time=(TimeBound(">=", START + timedelta(minutes=3)),),
        page_size=2,
    )
    expected = [
        p
        for p in reversed(made)
        if p.user_id == "user-1"
        and p.state is PaymentState.SUCCEEDED
        and p.create_time >= START + timedelta(minutes=3)
    ]
    assert expected
    assert [p.id for p in await all_pages(deps, query)] == [p.id for p in expected]
    by_order = await all_pages(deps, PaymentQuery(order_id="o-4"))
    assert [p.id for p in by_order] == [made[4].id]
    not_failed = await all_pages(
        deps, PaymentQuery(excluded_states=frozenset({PaymentState.FAILED}))
    )
    assert len(not_failed) == sum(p.state is not PaymentState.FAILED for p in made)


async def test_order_by_amount_with_ties(deps: Dependencies) -> None:
    made = await seed(deps, 15)
    query = PaymentQuery(sort=SortKey.AMOUNT, descending=False, page_size=4)
    listed = await all_pages(deps, query)
    assert [p.id for p in listed] == [
        p.id for p in sorted(made, key=lambda p: (p.amount.minor_units, p.id))
    ]


async def test_pages_are_stable_under_concurrent_inserts(deps: Dependencies) -> None:
    made = await seed(deps, 10)
    query = PaymentQuery(page_size=4)
    first, token = await list_payments(deps.uow, query)
    await seed(deps, 5, start=100)  # newer payments arrive between pages
    rest = []
    while token:
        page, token = await list_payments(deps.uow, query, token)
        rest.extend(page)
    assert [p.id for p in first + rest] == [p.id for p in reversed(made)]


async def test_a_token_only_works_with_its_query(deps: Dependencies) -> None:
    await seed(deps, 5)
    _, token = await list_payments(deps.uow, PaymentQuery(page_size=2))
    assert token
    with pytest.raises(InvalidArgument) as error:
        await list_payments(deps.uow, PaymentQuery(page_size=2, user_id="user-1"), token)
    assert error.value.violations[0].field == "page_token"
    for garbage in ("x", "e30", token[:-3], "!!!"):
        with pytest.raises(InvalidArgument):
            await list_payments(deps.uow, PaymentQuery(page_size=2), garbage)
