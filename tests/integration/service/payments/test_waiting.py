"""No payment waits for ever: stranded ones are resolved, abandoned ones expire, and the
provider's word (a capture made in its dashboard) moves a payment forward."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.clock import ManualClock
from server.adapters.db.tables import payments
from server.adapters.providers.mock import MockProvider
from server.domain.errors import FailedPrecondition, ProviderUnavailable
from server.domain.payment import CaptureMethod
from server.domain.payment_states import PaymentState
from server.domain.reconciliation import WaitingPolicy, policy, use_policy
from server.jobs.waiting_gauges import measure_waiting_payments
from server.observability.metrics import gauges
from server.service.dependencies import Dependencies
from server.service.payments.at_provider import charge_key
from server.service.payments.commands import capture_payment, create_payment
from server.service.payments.pages import PaymentQuery
from server.service.payments.queries import get_payment, list_payments
from server.service.payments.reconcile import reconcile_payments
from server.service.payments.requests import AmountInput, CapturePayment, CreatePayment
from server.service.provider import CreateAtProvider, ProviderPayment, ProviderStatus

START = datetime(2026, 11, 1, tzinfo=UTC)


def request(n: int, method: str, *, confirm: bool = True, manual: bool = False) -> CreatePayment:
    return CreatePayment(
        request_id=f"r-{n}",
        order_id="order-1",
        user_id="u-1",
        amount=AmountInput("USD", 1000),
        payment_method_id=method,
        confirm=confirm,
        capture_method=CaptureMethod.MANUAL if manual else CaptureMethod.AUTOMATIC,
    )


@pytest.fixture
def clocked(deps: Dependencies) -> tuple[Dependencies, ManualClock]:
    clock = ManualClock(START)
    return replace(deps, clock=clock), clock


@pytest.fixture(autouse=True)
def default_policy() -> Iterator[None]:
    before = policy()
    use_policy(WaitingPolicy())
    yield
    use_policy(before)


async def events_of(engine: AsyncEngine, payment_id: str) -> list[tuple[str, int]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                "SELECT event_type, sequence FROM outbox WHERE aggregate_id = :id ORDER BY sequence"
            ),
            {"id": payment_id},
        )
        return [(str(kind), int(seq)) for kind, seq in rows]


async def test_a_stranded_unconfirmed_payment_is_failed_and_frees_its_order(
    clocked: tuple[Dependencies, ManualClock], engine: AsyncEngine, provider: MockProvider
) -> None:
    """The database failed while the provider id and CONFIRM were saved; the caller left."""
    deps, clock = clocked
    stranded = await create_payment(deps, "svc", request(1, "pm_card_visa", confirm=False))
    payment_id = stranded.resource.id
    provider_id = stranded.resource.provider_payment_id
    async with engine.begin() as connection:
        await connection.execute(
            payments.update().where(payments.c.id == payment_id).values(provider_payment_id="")
        )
    clock.advance(timedelta(seconds=119))
    await reconcile_payments(deps)
    assert (await get_payment(deps.uow, payment_id)).state is PaymentState.REQUIRES_CONFIRMATION
    clock.advance(timedelta(seconds=11))
    report = await reconcile_payments(deps)
    assert report.changed == (payment_id,)
    failed = await get_payment(deps.uow, payment_id)
    assert failed.state is PaymentState.FAILED
    assert failed.failure_code == "provider_not_confirmed"
    assert failed.provider_payment_id == provider_id
    # Tidied up at the provider, and the order can be paid again.
    assert (await provider.retrieve_payment(provider_id)).status is ProviderStatus.CANCELED
    again = await create_payment(deps, "svc", request(2, "pm_card_visa"))
    assert again.resource.state is PaymentState.SUCCEEDED
    assert [kind for kind, _ in await events_of(engine, payment_id)] == [
        "payment.created",
        "payment.failed",
    ]


class LosesTheAnswer(MockProvider):
    """Charges, then the answer never reaches us (the process died, the link broke)."""

    async def create_payment(
        self, request: CreateAtProvider, idempotency_key: str
    ) -> ProviderPayment:
        await super().create_payment(request, idempotency_key)
        raise ProviderUnavailable("the provider's answer was lost")


class NeverReached(MockProvider):
    """The charge never arrives at the provider."""

    async def create_payment(
        self, request: CreateAtProvider, idempotency_key: str
    ) -> ProviderPayment:
        if request.confirm:
            raise ProviderUnavailable("the provider did not answer in time")
        return await super().create_payment(request, idempotency_key)


async def test_a_charge_whose_answer_was_lost_is_found_at_the_next_check(
    clocked: tuple[Dependencies, ManualClock], tmp_path: Path
) -> None:
    deps, clock = clocked
    ledger = tmp_path / "lost-answer.jsonl"
    deps = replace(deps, provider=LosesTheAnswer(ledger=ledger))
    with pytest.raises(ProviderUnavailable):
        await create_payment(deps, "svc", request(1, "pm_card_visa"))
    [waiting] = (await list_payments(deps.uow, PaymentQuery()))[0]
    assert waiting.state is PaymentState.PROCESSING
    assert not waiting.provider_payment_id

    clock.advance(timedelta(seconds=30))  # the first check, long before it counts as stranded
    assert (await reconcile_payments(deps)).changed == (waiting.id,)
    found = await get_payment(deps.uow, waiting.id)
    assert found.state is PaymentState.SUCCEEDED
    assert found.provider_payment_id
    assert len(ledger.read_text().splitlines()) == 1  # charged once


async def test_a_charge_that_never_reached_the_provider_fails_and_its_key_cannot_charge(
    clocked: tuple[Dependencies, ManualClock], tmp_path: Path
) -> None:
    deps, clock = clocked
    ledger = tmp_path / "never-reached.jsonl"
    provider = NeverReached(ledger=ledger)
    deps = replace(deps, provider=provider)
    with pytest.raises(ProviderUnavailable):
        await create_payment(deps, "svc", request(1, "pm_card_visa"))
    [waiting] = (await list_payments(deps.uow, PaymentQuery()))[0]

    clock.advance(timedelta(seconds=30))  # not found, but a call may still be in flight
    assert (await reconcile_payments(deps)).changed == ()
    assert (await get_payment(deps.uow, waiting.id)).state is PaymentState.PROCESSING
    clock.advance(timedelta(minutes=3))
    assert (await reconcile_payments(deps)).changed == (waiting.id,)
    failed = await get_payment(deps.uow, waiting.id)
    assert failed.state is PaymentState.FAILED
    assert failed.failure_code == "provider_not_confirmed"
    # The charge arriving late, with its key, finds the payment registered uncharged.
    late = await MockProvider.create_payment(
        provider,
        CreateAtProvider(
            payment_id=waiting.id,
            order_id=waiting.order_id,
            amount=waiting.amount,
            capture_method=waiting.capture_method,
            payment_method_id="pm_card_visa",
            confirm=True,
        ),
        idempotency_key=charge_key(waiting),
    )
    assert late.status is not ProviderStatus.SUCCEEDED
    assert not ledger.exists() or not ledger.read_text().strip()  # no money moved
    again = await create_payment(
        replace(deps, provider=MockProvider()), "svc", request(2, "pm_card_visa")
    )
    assert again.resource.state is PaymentState.SUCCEEDED  # the order is free again


async def test_a_stranded_payment_the_provider_charged_follows_the_provider(
    clocked: tuple[Dependencies, ManualClock], engine: AsyncEngine, provider: MockProvider
) -> None:
    deps, clock = clocked
    made = (await create_payment(deps, "svc", request(1, "pm_card_visa", confirm=False))).resource
    # Charged at the provider (by a request whose record was lost), our row knows nothing.
    await provider.confirm_payment(made.provider_payment_id, "", "lost-confirm")
    async with engine.begin() as connection:
        await connection.execute(
            payments.update().where(payments.c.id == made.id).values(provider_payment_id="")
        )
    clock.advance(timedelta(minutes=3))
    assert (await reconcile_payments(deps)).changed == (made.id,)
    found = await get_payment(deps.uow, made.id)
    assert found.state is PaymentState.SUCCEEDED
    assert found.amount_captured == 1000
    assert found.provider_payment_id == made.provider_payment_id


@pytest.mark.parametrize(
    ("method", "confirm", "state"),
    [
        ("", False, PaymentState.REQUIRES_PAYMENT_METHOD),
        ("pm_card_visa", False, PaymentState.REQUIRES_CONFIRMATION),
        ("pm_card_authenticationRequired", True, PaymentState.REQUIRES_ACTION),
    ],
)
async def test_a_payment_waiting_on_the_customer_expires_after_24_hours(
    clocked: tuple[Dependencies, ManualClock],
    engine: AsyncEngine,
    provider: MockProvider,
    method: str,
    confirm: bool,
    state: PaymentState,
) -> None:
    deps, clock = clocked
    made = (await create_payment(deps, "svc", request(1, method, confirm=confirm))).resource
    assert made.state is state
    for _ in range(30):  # the reconciler's passes through the day
        clock.advance(timedelta(hours=1))
        await reconcile_payments(deps)
        current = await get_payment(deps.uow, made.id)
        if current.state is not state:
            break
    assert current.state is PaymentState.CANCELED
    assert clock.now() - made.update_time >= timedelta(hours=24)
    assert clock.now() - made.update_time <= timedelta(hours=25)
    assert current.next_reconcile_time is None
    at_provider = await provider.retrieve_payment(made.provider_payment_id)
    assert at_provider.status is ProviderStatus.CANCELED
    events = await events_of(engine, made.id)
    assert events[-1][0] == "payment.canceled"
    assert [seq for _, seq in events] == list(range(1, len(events) + 1))
    async with engine.connect() as connection:
        reason = await connection.scalar(
            sa.text(
                "SELECT payload FROM outbox WHERE aggregate_id = :id AND event_type = "
                "'payment.canceled'"
            ),
            {"id": made.id},
        )
    assert b"expired" in bytes(reason)
    again = await create_payment(deps, "svc", request(2, "pm_card_visa"))
    assert again.resource.state is PaymentState.SUCCEEDED


async def test_the_expiry_is_configurable(
    clocked: tuple[Dependencies, ManualClock],
) -> None:
    use_policy(WaitingPolicy(expire_after=timedelta(minutes=10)))
    deps, clock = clocked
    made = (await create_payment(deps, "svc", request(1, "pm_card_visa", confirm=False))).resource
    clock.advance(timedelta(minutes=10))
    await reconcile_payments(deps, include_not_due=True)
    assert (await get_payment(deps.uow, made.id)).state is PaymentState.CANCELED


async def test_a_capture_made_in_the_providers_dashboard_lands_with_its_amount(
    clocked: tuple[Dependencies, ManualClock], engine: AsyncEngine, provider: MockProvider
) -> None:
    deps, clock = clocked
    made = (await create_payment(deps, "svc", request(1, "pm_card_visa", manual=True))).resource
    assert made.state is PaymentState.REQUIRES_CAPTURE
    await provider.capture_payment(made.provider_payment_id, 600, "dashboard-capture")
    clock.advance(timedelta(seconds=20))
    assert (await reconcile_payments(deps)).changed == (made.id,)
    captured = await get_payment(deps.uow, made.id)
    assert captured.state is PaymentState.SUCCEEDED
    assert captured.amount_captured == 600
    kinds = [kind for kind, _ in await events_of(engine, made.id)]
    assert kinds[-2:] == ["payment.captured", "payment.succeeded"]
    # Our own capture now finds it done instead of failing PROVIDER_REJECTED.
    with pytest.raises(FailedPrecondition, match="in state SUCCEEDED cannot be captured"):
        await capture_payment(deps, "svc", CapturePayment(id=made.id, request_id="cap-1"))


async def test_the_waiting_gauges_count_per_state_and_age(
    clocked: tuple[Dependencies, ManualClock],
) -> None:
    deps, clock = clocked
    await create_payment(deps, "svc", request(1, "pm_mock_processing"))
    clock.advance(timedelta(seconds=90))
    await measure_waiting_payments(deps.uow, clock)
    assert gauges.waiting["PROCESSING"] == (1, 90.0)
    assert gauges.waiting["REQUIRES_CONFIRMATION"] == (0, 0.0)
