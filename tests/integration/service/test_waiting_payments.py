"""No payment waits for ever: stranded ones are resolved, abandoned ones expire, and the
provider's word (a capture made in its dashboard) moves a payment forward."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.clock import ManualClock
from server.adapters.db.tables import payments
from server.adapters.providers.base import ProviderStatus
from server.adapters.providers.mock import MockProvider
from server.domain.errors import FailedPrecondition
from server.domain.payment import CaptureMethod
from server.domain.payment_states import PaymentState
from server.domain.reconciliation import WaitingPolicy, policy, use_policy
from server.jobs.waiting_gauges import measure_waiting_payments
from server.observability.metrics import gauges
from server.service.commands import AmountInput, CapturePayment, CreatePayment
from server.service.dependencies import Dependencies
from server.service.payment_commands import capture_payment, create_payment
from server.service.payment_queries import get_payment
from server.service.reconcile_payments import reconcile_payments

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
    payment_id = stranded.payment.id
    provider_id = stranded.payment.provider_payment_id
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
    assert again.payment.state is PaymentState.SUCCEEDED
    assert [kind for kind, _ in await events_of(engine, payment_id)] == [
        "payment.created",
        "payment.failed",
    ]


async def test_a_stranded_payment_the_provider_charged_follows_the_provider(
    clocked: tuple[Dependencies, ManualClock], engine: AsyncEngine, provider: MockProvider
) -> None:
    deps, clock = clocked
    made = (await create_payment(deps, "svc", request(1, "pm_card_visa", confirm=False))).payment
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
    made = (await create_payment(deps, "svc", request(1, method, confirm=confirm))).payment
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
    assert again.payment.state is PaymentState.SUCCEEDED


async def test_the_expiry_is_configurable(
    clocked: tuple[Dependencies, ManualClock],
) -> None:
    use_policy(WaitingPolicy(expire_after=timedelta(minutes=10)))
    deps, clock = clocked
    made = (await create_payment(deps, "svc", request(1, "pm_card_visa", confirm=False))).payment
    clock.advance(timedelta(minutes=10))
    await reconcile_payments(deps, include_not_due=True)
    assert (await get_payment(deps.uow, made.id)).state is PaymentState.CANCELED


async def test_a_capture_made_in_the_providers_dashboard_lands_with_its_amount(
    clocked: tuple[Dependencies, ManualClock], engine: AsyncEngine, provider: MockProvider
) -> None:
    deps, clock = clocked
    made = (await create_payment(deps, "svc", request(1, "pm_card_visa", manual=True))).payment
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
    with pytest.raises(FailedPrecondition, match="not allowed"):
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
