"""The janitor on real databases: it asks the provider and applies the truth."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.clock import ManualClock
from server.adapters.db.tables import payments
from server.adapters.providers.mock import MockProvider
from server.domain.errors import ProviderUnavailable
from server.domain.payment_states import PaymentState
from server.service.dependencies import Dependencies
from server.service.payments.commands import create_payment
from server.service.payments.queries import get_payment
from server.service.payments.reconcile import reconcile_payments
from server.service.payments.requests import AmountInput, CreatePayment

START = datetime(2026, 11, 1, tzinfo=UTC)


def request(n: int, method: str) -> CreatePayment:
    return CreatePayment(
        request_id=f"r-{n}",
        order_id=f"o-{n}",
        user_id="u-1",
        amount=AmountInput("USD", 1000),
        payment_method_id=method,
        confirm=True,
    )


@pytest.fixture
def clocked(deps: Dependencies) -> tuple[Dependencies, ManualClock]:
    clock = ManualClock(START)
    return replace(deps, clock=clock), clock


async def test_nothing_is_checked_before_its_time(
    clocked: tuple[Dependencies, ManualClock],
) -> None:
    deps, clock = clocked
    pending = (await create_payment(deps, "svc", request(1, "pm_mock_processing"))).resource
    assert pending.state is PaymentState.PROCESSING
    # First check within 30 s by default: 20 s, plus at most one 10 s pass interval.
    clock.advance(timedelta(seconds=19))
    assert (await reconcile_payments(deps)).checked == 0
    clock.advance(timedelta(seconds=1))
    report = await reconcile_payments(deps)
    assert report.checked == 1
    assert report.unresolved == (pending.id,)


async def test_the_provider_truth_is_applied(
    clocked: tuple[Dependencies, ManualClock], provider: MockProvider, engine: AsyncEngine
) -> None:
    deps, clock = clocked
    pending = (await create_payment(deps, "svc", request(1, "pm_mock_processing"))).resource
    with pytest.raises(ProviderUnavailable):
        await create_payment(deps, "svc", request(2, "pm_mock_timeout"))
    provider.settle(pending.provider_payment_id, succeeded=True)
    clock.advance(timedelta(minutes=5))
    report = await reconcile_payments(deps)
    assert report.checked == 2
    assert len(report.changed) == 2
    for payment_id in report.changed:
        payment = await get_payment(deps.uow, payment_id)
        assert payment.state is PaymentState.SUCCEEDED
        assert payment.next_reconcile_time is None
    async with engine.connect() as connection:
        events = await connection.execute(
            sa.text("SELECT event_type FROM outbox WHERE aggregate_id = :id ORDER BY sequence"),
            {"id": pending.id},
        )
        assert events.scalars().all()[-1] == "payment.succeeded"


async def test_unresolved_payments_follow_the_schedule(
    clocked: tuple[Dependencies, ManualClock],
) -> None:
    deps, clock = clocked
    pending = (await create_payment(deps, "svc", request(1, "pm_mock_processing"))).resource
    expected_gaps = [
        timedelta(seconds=20),
        timedelta(minutes=5),
        timedelta(hours=1),
        timedelta(days=1),
        timedelta(days=1),
    ]
    for attempt, gap in enumerate(expected_gaps, start=1):
        clock.advance(gap - timedelta(seconds=1))
        assert (await reconcile_payments(deps)).checked == 0
        clock.advance(timedelta(seconds=1))
        assert (await reconcile_payments(deps)).unresolved == (pending.id,)
        payment = await get_payment(deps.uow, pending.id)
        assert payment.reconcile_attempts == attempt


async def test_a_payment_the_provider_never_heard_of_fails(
    clocked: tuple[Dependencies, ManualClock], engine: AsyncEngine
) -> None:
    deps, clock = clocked
    pending = (await create_payment(deps, "svc", request(1, "pm_mock_processing"))).resource
    lost = (await create_payment(deps, "svc", request(2, "pm_mock_processing"))).resource
    async with engine.begin() as connection:
        await connection.execute(
            payments.update().where(payments.c.id == pending.id).values(provider_payment_id="")
        )
        await connection.execute(
            payments.update()
            .where(payments.c.id == lost.id)
            .values(provider_payment_id="mock_pi_unknown")
        )
    # The one without an id is looked up by our payment id once it is stranded; a
    # provider that has forgotten everything never heard of either. The one without an
    # id is then registered, uncharged, under its charge's key, and canceled.
    clock.advance(timedelta(minutes=2))
    deps = replace(deps, provider=MockProvider())
    report = await reconcile_payments(deps, include_not_due=True)
    assert set(report.changed) == {pending.id, lost.id}
    failures = {}
    for payment_id in report.changed:
        payment = await get_payment(deps.uow, payment_id)
        assert payment.state is PaymentState.FAILED
        failures[payment_id] = payment.failure_code
    assert failures == {pending.id: "provider_not_confirmed", lost.id: "provider_unknown"}


async def test_concurrent_passes_check_each_payment_once(
    clocked: tuple[Dependencies, ManualClock], provider: MockProvider
) -> None:
    deps, clock = clocked
    made = [
        (await create_payment(deps, "svc", request(n, "pm_mock_processing"))).resource
        for n in range(6)
    ]
    for payment in made:
        provider.settle(payment.provider_payment_id, succeeded=True)
    clock.advance(timedelta(minutes=5))
    reports = await asyncio.gather(*(reconcile_payments(deps) for _ in range(3)))
    changed = [pid for report in reports for pid in report.changed]
    assert sorted(changed) == sorted(p.id for p in made)
