"""The refund janitor settles refunds left PENDING, on real databases with the mock provider."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.clock import ManualClock
from server.adapters.db.tables import refunds
from server.adapters.providers.mock import MockProvider
from server.domain.errors import ProviderUnavailable
from server.domain.payment_states import PaymentState
from server.domain.refund import RefundState
from server.service.dependencies import Dependencies
from server.service.payments.queries import get_payment
from server.service.provider import ProviderRefund, ProviderRefundStatus
from server.service.refunds.commands import create_refund
from server.service.refunds.queries import get_refund
from server.service.refunds.reconcile import RESEND_WITHIN, STALE_AFTER, reconcile_refunds
from tests.integration.service.refunds.test_commands import CALLER, outbox_events, paid, refund


class AnswerLost(MockProvider):
    """Refunds at the provider, then the answer never arrives (a timeout or a crash)."""

    async def refund_payment(
        self, provider_payment_id: str, amount: int, idempotency_key: str
    ) -> ProviderRefund:
        answer = await super().refund_payment(provider_payment_id, amount, idempotency_key)
        if not getattr(self, "answered", False):
            self.answered = True
            raise ProviderUnavailable("the refund call timed out")
        return answer


class PendingThenCanceled(MockProvider):
    """A refund the provider accepts as pending and later cancels."""

    async def refund_payment(
        self, provider_payment_id: str, amount: int, idempotency_key: str
    ) -> ProviderRefund:
        return ProviderRefund("re_pending_1", ProviderRefundStatus.PENDING)

    async def retrieve_refund(self, provider_refund_id: str) -> ProviderRefund:
        assert provider_refund_id == "re_pending_1"
        return ProviderRefund(provider_refund_id, ProviderRefundStatus.CANCELED)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 1, 12, 0, tzinfo=UTC))


def with_provider(deps: Dependencies, provider: MockProvider, clock: ManualClock) -> Dependencies:
    return replace(deps, provider=provider, simulator=provider, clock=clock)


def refunds_in_ledger(ledger: Path) -> int:
    lines = ledger.read_text().splitlines() if ledger.exists() else []
    return sum(json.loads(line)["kind"] == "refund" for line in lines)


async def lost_answer(deps: Dependencies, request_id: str, amount: int) -> str:
    """A paid payment whose refund reached the provider but whose answer was lost."""
    payment_id = await paid(deps, amount=1000)
    with pytest.raises(ProviderUnavailable):
        await create_refund(deps, CALLER, refund(payment_id, request_id, amount))
    return payment_id


async def test_lost_answer_is_settled_by_resending_with_the_same_key(
    deps: Dependencies, engine: AsyncEngine, clock: ManualClock, tmp_path: Path
) -> None:
    ledger = tmp_path / "lost.jsonl"
    deps = with_provider(deps, AnswerLost(ledger=ledger), clock)
    payment_id = await lost_answer(deps, "lost-1", 400)
    [pending] = await refund_rows(engine)
    assert pending.state == "PENDING"
    assert pending.provider_refund_id == ""

    # Still in the hands of the call that made it: the janitor waits.
    assert (await reconcile_refunds(deps)).checked == 0
    clock.advance(STALE_AFTER + timedelta(seconds=1))
    report = await reconcile_refunds(deps)
    assert report.changed == (pending.id,)

    settled = await get_refund(deps.uow, pending.id)
    assert settled.state is RefundState.SUCCEEDED
    assert settled.provider_refund_id.startswith("mock_re_")
    payment = await get_payment(deps.uow, payment_id)
    assert payment.amount_refunded == 400
    assert payment.state is PaymentState.PARTIALLY_REFUNDED
    assert refunds_in_ledger(ledger) == 1, "the resend must not refund a second time"
    events = await outbox_events(engine, payment_id)
    assert [t for t, _, _ in events].count("refund.issued") == 1
    assert [s for _, s, _ in events] == list(range(1, len(events) + 1))

    # The caller's retry now gets the settled refund, not a second one.
    again = await create_refund(deps, CALLER, refund(payment_id, "lost-1", 400))
    assert again.resource.id == pending.id
    assert again.resource.state is RefundState.SUCCEEDED
    assert (await reconcile_refunds(deps)).checked == 0


async def test_refund_canceled_at_the_provider_frees_its_amount(
    deps: Dependencies, engine: AsyncEngine, clock: ManualClock, tmp_path: Path
) -> None:
    deps = with_provider(deps, PendingThenCanceled(ledger=tmp_path / "l.jsonl"), clock)
    payment_id = await paid(deps, amount=1000)
    made = (await create_refund(deps, CALLER, refund(payment_id, "slow-1", None))).resource
    assert made.state is RefundState.PENDING
    assert made.provider_refund_id == "re_pending_1"

    clock.advance(STALE_AFTER + timedelta(seconds=1))
    assert (await reconcile_refunds(deps)).changed == (made.id,)
    canceled = await get_refund(deps.uow, made.id)
    assert canceled.state is RefundState.CANCELED
    payment = await get_payment(deps.uow, payment_id)
    assert payment.state is PaymentState.SUCCEEDED
    assert payment.amount_refunded == 0
    events = await outbox_events(engine, payment_id)
    assert events[-1][0] == "refund.failed"


async def test_provider_still_silent_is_asked_again_one_interval_later(
    deps: Dependencies, engine: AsyncEngine, clock: ManualClock, tmp_path: Path
) -> None:
    provider = AnswerLost(ledger=tmp_path / "l.jsonl")
    deps = with_provider(deps, provider, clock)
    await lost_answer(deps, "quiet-1", 100)
    provider.answered = False  # the resend times out too
    clock.advance(STALE_AFTER + timedelta(seconds=1))
    report = await reconcile_refunds(deps)
    assert report.changed == ()
    assert len(report.unresolved) == 1
    assert (await reconcile_refunds(deps)).checked == 0  # not again before the interval
    clock.advance(STALE_AFTER + timedelta(seconds=1))
    assert (await reconcile_refunds(deps)).changed == report.unresolved


async def test_past_the_provider_key_lifetime_it_is_left_to_an_operator(
    deps: Dependencies, engine: AsyncEngine, clock: ManualClock, tmp_path: Path
) -> None:
    ledger = tmp_path / "old.jsonl"
    deps = with_provider(deps, AnswerLost(ledger=ledger), clock)
    await lost_answer(deps, "old-1", 100)
    clock.advance(RESEND_WITHIN + timedelta(minutes=1))
    report = await reconcile_refunds(deps)
    assert report.checked == 1
    assert report.changed == ()
    [row] = await refund_rows(engine)
    assert row.state == "PENDING"
    assert refunds_in_ledger(ledger) == 1


async def test_two_janitors_at_once_settle_each_refund_once(
    deps: Dependencies, engine: AsyncEngine, clock: ManualClock, tmp_path: Path
) -> None:
    ledger = tmp_path / "race.jsonl"
    provider = AnswerLost(ledger=ledger)
    deps = with_provider(deps, provider, clock)
    payment_ids = []
    for i in range(4):
        provider.answered = False
        payment_ids.append(await lost_answer(deps, f"race-{i}", 250))
    provider.answered = True
    clock.advance(STALE_AFTER + timedelta(seconds=1))
    reports = await asyncio.gather(reconcile_refunds(deps), reconcile_refunds(deps))
    settled = [r for report in reports for r in report.changed]
    assert len(settled) == len(set(settled)) == 4
    assert refunds_in_ledger(ledger) == 4
    for payment_id in payment_ids:
        events = await outbox_events(engine, payment_id)
        assert [t for t, _, _ in events].count("refund.issued") == 1
        assert (await get_payment(deps.uow, payment_id)).amount_refunded == 250


async def refund_rows(engine: AsyncEngine) -> list[sa.Row[tuple[str, str, str]]]:
    async with engine.connect() as connection:
        result = await connection.execute(
            sa.select(refunds.c.id, refunds.c.state, refunds.c.provider_refund_id)
        )
        return list(result.all())  # type: ignore[arg-type]
