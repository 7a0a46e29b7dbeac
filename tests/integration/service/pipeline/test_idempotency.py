"""Idempotency on real databases: one request_id charges once, replays, resumes after a crash."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.clock import ManualClock
from server.adapters.db.tables import idempotency_keys, payments
from server.adapters.providers.mock import MockProvider
from server.domain.errors import IdempotencyKeyInUse, IdempotencyKeyReused, ProviderUnavailable
from server.domain.payment import Payment
from server.domain.payment_states import PaymentState
from server.jobs.key_reaper import reap_expired_keys
from server.service.dependencies import Dependencies
from server.service.payments.commands import create_payment
from server.service.payments.requests import AmountInput, CreatePayment
from server.service.pipeline.command import Outcome
from server.service.pipeline.idempotency import IdempotencyPolicy
from tests.support.held_calls import WITHIN_S, HeldFirstCall

REQUEST = CreatePayment(
    request_id="key-1",
    order_id="order-1",
    user_id="user-1",
    amount=AmountInput("EUR", 2500),
    payment_method_id="pm_card_visa",
    confirm=True,
)


async def count(engine: AsyncEngine, table: sa.Table) -> int:
    async with engine.connect() as connection:
        return int(
            (await connection.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
        )


async def test_same_key_same_parameters_replays_the_first_outcome(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    first = await create_payment(deps, "svc", REQUEST)
    second = await create_payment(deps, "svc", REQUEST)
    assert second.replayed
    assert not first.replayed
    assert second.resource == first.resource
    assert await count(engine, payments) == 1


async def test_a_decline_is_replayed_too(deps: Dependencies) -> None:
    declined = replace(REQUEST, payment_method_id="pm_card_chargeDeclined")
    first = await create_payment(deps, "svc", declined)
    second = await create_payment(deps, "svc", declined)
    assert second.replayed
    assert second.resource.state is PaymentState.FAILED == first.resource.state


async def test_same_key_other_parameters_is_refused(deps: Dependencies) -> None:
    await create_payment(deps, "svc", REQUEST)
    with pytest.raises(IdempotencyKeyReused) as error:
        await create_payment(deps, "svc", replace(REQUEST, amount=AmountInput("EUR", 2501)))
    assert error.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert str(error.value) == "request_id was already used with different parameters"
    assert dict(error.value.metadata) == {"request_id": "key-1", "method": "CreatePayment"}


async def test_keys_are_scoped_to_the_caller(deps: Dependencies) -> None:
    mine = await create_payment(deps, "svc-a", REQUEST)
    theirs = await create_payment(deps, "svc-b", replace(REQUEST, order_id="order-2"))
    assert not theirs.replayed
    assert theirs.resource.id != mine.resource.id


async def test_in_flight_key_is_in_use(
    engine: AsyncEngine, deps: Dependencies, tmp_path: Path
) -> None:
    held = HeldFirstCall(MockProvider(ledger=tmp_path / "slow.jsonl"), "create_payment")
    slow = replace(deps, provider=held.as_provider())
    first = asyncio.create_task(create_payment(slow, "svc", REQUEST))
    await asyncio.wait_for(held.reached.wait(), WITHIN_S)
    with pytest.raises(IdempotencyKeyInUse) as error:
        await create_payment(slow, "svc", REQUEST)
    assert error.value.reason == "IDEMPOTENCY_KEY_IN_USE"
    assert str(error.value) == "a request with this request_id is still in progress; retry later"
    assert dict(error.value.metadata) == {"request_id": "key-1"}
    held.release.set()
    done = await asyncio.wait_for(first, WITHIN_S)
    assert (await create_payment(slow, "svc", REQUEST)).resource == done.resource


async def test_concurrent_identical_calls_charge_once(
    engine: AsyncEngine, deps: Dependencies, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    provider = MockProvider(latency_s=0.05, ledger=ledger)
    shared = replace(deps, provider=provider)

    async def caller() -> Outcome[Payment]:
        for _ in range(200):
            try:
                return await create_payment(shared, "svc", REQUEST)
            except IdempotencyKeyInUse:
                await asyncio.sleep(0.02)
        raise AssertionError("never got an answer")

    outcomes = await asyncio.gather(*(caller() for _ in range(50)))
    assert len({o.resource.id for o in outcomes}) == 1
    assert sum(not o.replayed for o in outcomes) == 1
    assert await count(engine, payments) == 1
    assert len(ledger.read_text().splitlines()) == 1


async def test_a_dead_first_attempt_is_resumed_after_its_lease(
    engine: AsyncEngine, deps: Dependencies, tmp_path: Path
) -> None:
    clock = ManualClock(datetime(2026, 11, 1, tzinfo=UTC))
    policy = IdempotencyPolicy(lease=timedelta(seconds=30))
    ledger = tmp_path / "ledger.jsonl"
    timing_out = replace(
        deps, clock=clock, idempotency=policy, provider=MockProvider(ledger=ledger)
    )
    # The provider charged but the answer never came back.
    with pytest.raises(ProviderUnavailable):
        await create_payment(
            timing_out, "svc", replace(REQUEST, payment_method_id="pm_mock_timeout")
        )
    async with engine.begin() as connection:
        # As if the process died before releasing: the lease still runs.
        await connection.execute(
            idempotency_keys.update().values(locked_until=clock.now() + timedelta(seconds=30))
        )
    with pytest.raises(IdempotencyKeyInUse):
        await create_payment(
            timing_out, "svc", replace(REQUEST, payment_method_id="pm_mock_timeout")
        )
    clock.advance(timedelta(seconds=31))
    # Resumed: the charge is found at the provider, not sent again.
    resumed = await create_payment(
        timing_out, "svc", replace(REQUEST, payment_method_id="pm_mock_timeout")
    )
    assert resumed.resource.state is PaymentState.SUCCEEDED
    assert await count(engine, payments) == 1
    assert len(ledger.read_text().splitlines()) == 1


async def test_reaper_deletes_keys_after_retention(engine: AsyncEngine, deps: Dependencies) -> None:
    clock = ManualClock(datetime(2026, 11, 1, tzinfo=UTC))
    timed = replace(deps, clock=clock)
    await create_payment(timed, "svc", REQUEST)
    clock.advance(timedelta(hours=23, minutes=59))
    assert await reap_expired_keys(timed.uow, clock) == 0
    assert (await create_payment(timed, "svc", REQUEST)).replayed
    clock.advance(timedelta(minutes=2))
    assert await reap_expired_keys(timed.uow, clock, batch=1) == 1
    assert await count(engine, idempotency_keys) == 0
