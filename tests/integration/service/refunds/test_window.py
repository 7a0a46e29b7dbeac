"""The refund window on real databases: closed after PAYMENTS_REFUND_WINDOW_DAYS, unless an
admin overrides it with a reason, which stays on the refund."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.clock import ManualClock
from server.adapters.db.tables import idempotency_keys, refunds
from server.domain.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from server.domain.principal import Principal, Role
from server.domain.refund import RefundState
from server.service.dependencies import Dependencies
from server.service.payments.queries import get_payment
from server.service.refunds.commands import create_refund
from server.service.refunds.window import window_override_of
from tests.integration.service.refunds.test_commands import CALLER, paid, refund

WINDOW = timedelta(days=30)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))


@pytest.fixture
def windowed(deps: Dependencies, clock: ManualClock) -> Dependencies:
    return replace(deps, clock=clock, refund_window=WINDOW)


async def _stored_refunds(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return (
            await connection.execute(sa.select(sa.func.count()).select_from(refunds))
        ).scalar_one()


async def test_a_refund_inside_the_window_passes_and_one_past_it_is_refused(
    windowed: Dependencies, clock: ManualClock, engine: AsyncEngine
) -> None:
    payment_id = await paid(windowed)
    captured = (await get_payment(windowed.uow, payment_id)).capture_time
    assert captured == clock.now()

    clock.advance(WINDOW - timedelta(seconds=1))
    inside = await create_refund(windowed, CALLER, refund(payment_id, "r-in", 100))
    assert inside.resource.state is RefundState.SUCCEEDED

    clock.advance(timedelta(seconds=1))
    with pytest.raises(FailedPrecondition) as refused:
        await create_refund(windowed, CALLER, refund(payment_id, "r-late", 100))
    assert refused.value.reason == "REFUND_WINDOW_CLOSED"
    assert refused.value.metadata["window_days"] == "30"
    assert refused.value.metadata["capture_time"] == captured.isoformat()
    # Nothing stored: no refund, and the key is free for a corrected retry.
    assert await _stored_refunds(engine) == 1
    async with engine.connect() as connection:
        keys = await connection.execute(
            sa.select(idempotency_keys.c.request_id).where(
                idempotency_keys.c.request_id == "r-late"
            )
        )
        assert keys.first() is None


async def test_an_admin_override_refunds_late_and_keeps_the_reason(
    windowed: Dependencies, clock: ManualClock
) -> None:
    payment_id = await paid(windowed)
    clock.advance(WINDOW * 3)
    late = replace(
        refund(payment_id, "r-override", 400), window_override_reason="goodwill, ticket 4711"
    )
    outcome = await create_refund(windowed, CALLER, late)
    assert outcome.resource.state is RefundState.SUCCEEDED
    assert outcome.resource.window_override_reason == "goodwill, ticket 4711"
    replayed = await create_refund(windowed, CALLER, late)
    assert replayed.replayed
    assert replayed.resource.window_override_reason == "goodwill, ticket 4711"
    # The same key without the override is another request, not a replay.
    with pytest.raises(Exception, match="request_id"):
        await create_refund(windowed, CALLER, replace(late, window_override_reason=None))


async def test_an_override_needs_a_reason(windowed: Dependencies) -> None:
    payment_id = await paid(windowed)
    with pytest.raises(InvalidArgument) as invalid:
        await create_refund(
            windowed, CALLER, replace(refund(payment_id, "r-1", 1), window_override_reason=" ")
        )
    assert [(v.field, v.description) for v in invalid.value.violations] == [
        ("window_override.reason", "must say why the refund window is overridden")
    ]
    with pytest.raises(InvalidArgument) as too_long:
        await create_refund(
            windowed,
            CALLER,
            replace(refund(payment_id, "r-2", 1), window_override_reason="x" * 10_000),
        )
    assert [v.field for v in too_long.value.violations] == ["window_override.reason"]


def test_only_an_admin_may_override() -> None:
    admin = Principal("ops", "", frozenset({Role.ADMIN}))
    service = Principal("orders", "", frozenset({Role.SERVICE}))
    assert window_override_of(admin, True, "why") == "why"
    assert window_override_of(service, False, "") is None
    with pytest.raises(PermissionDenied) as denied:
        window_override_of(service, True, "why")
    assert denied.value.reason == "REFUND_WINDOW_OVERRIDE_DENIED"
    assert str(denied.value) == "only an admin may refund past the refund window"
