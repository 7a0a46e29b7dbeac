"""Outages inside the command pipeline: nothing half-done, nothing INTERNAL, nothing stuck.

The database is a real PostgreSQL database of this module's own, cut off at the
worst moments (right after the provider has answered); the provider is the mock,
told to refuse where a test needs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db.direct_pool import DirectPool
from server.adapters.db.engine import create_engine
from server.adapters.db.payment_statements import PgPaymentStatements
from server.adapters.db.unit_of_work import SqlUnitOfWork
from server.adapters.providers.mock import MockProvider
from server.domain.errors import (
    DatabaseUnavailable,
    FailedPrecondition,
    IdempotencyKeyInUse,
    ProviderUnavailable,
)
from server.domain.payment import CaptureMethod
from server.domain.payment_states import PaymentState
from server.service.dependencies import Dependencies
from server.service.payments.commands import capture_payment, create_payment
from server.service.payments.requests import AmountInput, CapturePayment, CreatePayment
from server.service.provider import CreateAtProvider, ProviderPayment, ProviderRejected
from tests.support.databases import (
    TABLES,
    postgres_database,
    set_postgres_database_reachable,
)

CALLER = "svc"


def pay(request_id: str, order_id: str = "order-1", *, manual: bool = False) -> CreatePayment:
    return CreatePayment(
        request_id=request_id,
        order_id=order_id,
        user_id="user-1",
        amount=AmountInput("EUR", 1000),
        payment_method_id="pm_card_visa",
        capture_method=CaptureMethod.MANUAL if manual else CaptureMethod.AUTOMATIC,
        confirm=True,
    )


T = TypeVar("T")


@pytest.fixture(scope="module")
def outage_url() -> Iterator[str]:
    with postgres_database("payments_pipeline_outage") as url:
        yield url


@pytest.fixture
async def outage_engine(outage_url: str) -> AsyncIterator[AsyncEngine]:
    set_postgres_database_reachable(outage_url, True)
    engine = create_engine(outage_url)
    async with engine.begin() as connection:
        await connection.execute(sa.text(f"TRUNCATE {', '.join(TABLES)}"))
    yield engine
    set_postgres_database_reachable(outage_url, True)
    await engine.dispose()


async def retried(call: Callable[[], Awaitable[T]], attempts: int = 3) -> T:
    """As a client retries UNAVAILABLE: a pooled connection the outage ended fails once."""
    for _ in range(attempts - 1):
        try:
            return await call()
        except DatabaseUnavailable:
            continue
    return await call()


class CutsTheDatabase(MockProvider):
    """The mock provider, cutting the database off right after it answers `call`."""

    def __init__(self, url: str, call: str, ledger: Path) -> None:
        super().__init__(ledger=ledger)
        self._url = url
        self._call = call

    def _cut(self, call: str) -> None:
        if call == self._call:
            set_postgres_database_reachable(self._url, False)

    async def create_payment(
        self, request: CreateAtProvider, idempotency_key: str
    ) -> ProviderPayment:
        answer = await super().create_payment(request, idempotency_key)
        self._cut("create")
        return answer

    async def confirm_payment(self, *args: Any, **kwargs: Any) -> ProviderPayment:
        answer = await super().confirm_payment(*args, **kwargs)
        self._cut("confirm")
        return answer


@pytest.fixture(params=["unit-of-work", "statements"])
def statements(
    request: pytest.FixtureRequest, outage_engine: AsyncEngine
) -> PgPaymentStatements | None:
    """Each test twice: the payment pipeline on units of work, and on its statements."""
    if request.param == "unit-of-work":
        return None
    return PgPaymentStatements(DirectPool(outage_engine))  # closed with the engine


@pytest.fixture
def outage_deps(
    outage_engine: AsyncEngine, statements: PgPaymentStatements | None
) -> Callable[[MockProvider], Dependencies]:
    def build(provider: MockProvider) -> Dependencies:
        return Dependencies(
            uow=partial(SqlUnitOfWork, outage_engine),
            provider=provider,
            payment_statements=statements,
        )

    return build


async def test_a_charge_the_database_could_not_record_is_recorded_when_it_is_back(
    outage_url: str, outage_deps: Callable[[MockProvider], Dependencies], tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    deps = outage_deps(CutsTheDatabase(outage_url, "create", ledger))

    with pytest.raises(DatabaseUnavailable) as first:
        await create_payment(deps, CALLER, pay("charged-while-down"))
    assert first.value.retry_after is not None
    assert deps.recorder.kept == 1
    with pytest.raises(DatabaseUnavailable):  # the client's retry, still during the outage
        await create_payment(deps, CALLER, pay("charged-while-down"))

    set_postgres_database_reachable(outage_url, True)
    await asyncio.wait_for(deps.recorder.drained(), timeout=30)
    again = await retried(lambda: create_payment(deps, CALLER, pay("charged-while-down")))

    assert again.replayed
    assert again.resource.state is PaymentState.SUCCEEDED
    assert len(ledger.read_text().splitlines()) == 1  # charged once


class RefusesCaptureAndLookup(MockProvider):
    def __init__(self, lookup_error: Exception) -> None:
        super().__init__()
        self._lookup_error = lookup_error

    async def capture_payment(self, *args: Any, **kwargs: Any) -> ProviderPayment:
        raise ProviderRejected("this PaymentIntent could not be captured")

    async def retrieve_payment(self, provider_payment_id: str) -> ProviderPayment:
        raise self._lookup_error


@pytest.mark.parametrize(
    "lookup_error",
    [ProviderRejected("no such payment_intent"), ProviderUnavailable("timed out")],
    ids=["lookup-rejected", "lookup-unavailable"],
)
async def test_a_refused_capture_whose_lookup_fails_answers_and_frees_the_key(
    deps: Dependencies, lookup_error: Exception
) -> None:
    held = (await create_payment(deps, CALLER, pay("held", manual=True))).resource
    assert held.state is PaymentState.REQUIRES_CAPTURE
    refusing = replace(deps, provider=RefusesCaptureAndLookup(lookup_error))

    with pytest.raises(FailedPrecondition) as refused:
        await capture_payment(refusing, CALLER, CapturePayment(held.id, "capture-1"))
    assert refused.value.reason == "PROVIDER_REJECTED"
    assert str(refused.value) == "the provider refused: this PaymentIntent could not be captured"
    # Released, not forgotten: the key stays, unlocked, so a retry resumes the same capture.
    async with deps.uow() as uow:
        key = await uow.idempotency_keys.get(CALLER, "capture-1")
    assert key is not None
    assert key.locked_until is None
    assert key.resource_id == held.id
    try:  # the key is free at once: a retry runs again instead of waiting out the lease
        await capture_payment(refusing, CALLER, CapturePayment(held.id, "capture-1"))
    except IdempotencyKeyInUse:
        pytest.fail("the request_id stayed locked")
    except FailedPrecondition:
        pass

    async with deps.uow() as uow:
        stored = await uow.payments.get(held.id)
    assert stored is not None
    assert stored.state is PaymentState.PROCESSING  # where the reconciler looks
    assert stored.next_reconcile_time is not None


async def test_a_refusal_whose_handling_fails_raises_that_and_frees_the_key(
    deps: Dependencies,
) -> None:
    held = (await create_payment(deps, CALLER, pay("held", manual=True))).resource
    refusing = replace(deps, provider=RefusesCaptureAndLookup(ValueError("a bug")))
    for _ in range(2):  # the retry runs again: the key was not left locked
        with pytest.raises(ValueError, match=r"^a bug$"):
            await capture_payment(refusing, CALLER, CapturePayment(held.id, "capture-1"))


class RefusesWhileTheDatabaseIsCut(MockProvider):
    """Refuses the charge, and the database goes down as it answers."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url

    async def create_payment(
        self, request: CreateAtProvider, idempotency_key: str
    ) -> ProviderPayment:
        set_postgres_database_reachable(self._url, False)
        raise ProviderRejected("this card cannot be used", field="payment_method_id")


async def test_a_refusal_the_database_could_not_record_is_recorded_when_it_is_back(
    outage_url: str,
    outage_engine: AsyncEngine,
    outage_deps: Callable[[MockProvider], Dependencies],
) -> None:
    deps = outage_deps(RefusesWhileTheDatabaseIsCut(outage_url))

    with pytest.raises(DatabaseUnavailable):
        await create_payment(deps, CALLER, pay("refused-while-down"))
    assert deps.recorder.kept == 1

    set_postgres_database_reachable(outage_url, True)
    await asyncio.wait_for(deps.recorder.drained(), timeout=30)
    async with outage_engine.connect() as connection:
        keys = await retried(lambda: connection.execute(sa.text("SELECT 1 FROM idempotency_keys")))
        states = await connection.execute(sa.text("SELECT state FROM payments"))
        assert keys.all() == []  # forgotten: a retry starts afresh
        assert states.scalars().all() == [PaymentState.FAILED.value]
