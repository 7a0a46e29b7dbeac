"""The mock keeps intents, refunds and keys in its own SQLite file, and obeys a fault plan."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from server.adapters.providers.mock import MockProvider
from server.adapters.providers.mock_faults import FaultPlan, parse_plan, write_plan
from server.adapters.providers.mock_store import MockStore
from server.domain.errors import ProviderUnavailable
from server.domain.money import Money
from server.domain.payment import CaptureMethod
from server.service.provider import (
    CreateAtProvider,
    ProviderRefundStatus,
    ProviderStatus,
)

PAYMENT_ID = "pay_01JD0000000000000000000001"
CREATE = CreateAtProvider(
    PAYMENT_ID, "order-1", Money("USD", 2000), CaptureMethod.AUTOMATIC, "pm_card_visa"
)


def on(path: Path, plan: Path | None = None) -> MockProvider:
    return MockProvider(store=MockStore(path), faults=FaultPlan(plan))


async def test_a_charge_survives_sigkill_and_a_replay_charges_nothing(tmp_path: Path) -> None:
    store = tmp_path / "mock.sqlite"
    # A separate process charges, then dies without any cleanup.
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from pathlib import Path
        from server.adapters.providers.mock import MockProvider
        from server.adapters.providers.mock_store import MockStore
        from tests.unit.adapters.providers.test_mock_provider_durability import CREATE

        async def main():
            mock = MockProvider(store=MockStore(Path({str(store)!r})))
            created = await mock.create_payment(CREATE, "k:create")
            await mock.confirm_payment(created.provider_payment_id, "", "k:confirm")
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    done = await asyncio.create_subprocess_exec(sys.executable, "-c", script, cwd=os.getcwd())
    assert await done.wait() == -signal.SIGKILL
    mock = on(store)
    found = await mock.find_payment(PAYMENT_ID)
    assert found is not None
    assert found.status is ProviderStatus.SUCCEEDED
    replayed = await mock.confirm_payment(found.provider_payment_id, "", "k:confirm")
    assert replayed == found
    assert mock.store.movements() == [("charge", found.provider_payment_id, 2000)]


async def test_two_instances_on_one_file_share_keys_refunds_and_the_ledger(tmp_path: Path) -> None:
    server, worker = on(tmp_path / "mock.sqlite"), on(tmp_path / "mock.sqlite")
    created = await server.create_payment(CREATE, "k:create")
    assert await worker.create_payment(CREATE, "k:create") == created
    charged = await worker.confirm_payment(created.provider_payment_id, "", "k:confirm")
    assert await server.retrieve_payment(created.provider_payment_id) == charged
    refund = await server.refund_payment(created.provider_payment_id, 500, "k:refund")
    assert await worker.refund_payment(created.provider_payment_id, 500, "k:refund") == refund
    assert await worker.retrieve_refund(refund.provider_refund_id) == refund
    assert [kind for kind, _, _ in server.store.movements()] == ["charge", "refund"]


async def test_find_payment_is_none_for_a_payment_it_never_saw(tmp_path: Path) -> None:
    assert await on(tmp_path / "mock.sqlite").find_payment(PAYMENT_ID) is None


async def test_unavailable_fault_does_nothing_at_the_provider(tmp_path: Path) -> None:
    plan = tmp_path / "faults.json"
    mock = on(tmp_path / "mock.sqlite", plan)
    created = await mock.create_payment(CREATE, "k:create")
    write_plan(plan, {"confirm": "unavailable"})
    with pytest.raises(ProviderUnavailable):
        await mock.confirm_payment(created.provider_payment_id, "", "k:confirm")
    assert mock.store.movements() == []
    plan.unlink()
    charged = await mock.confirm_payment(created.provider_payment_id, "", "k:confirm")
    assert charged.status is ProviderStatus.SUCCEEDED


async def test_timeout_fault_charges_and_loses_the_answer_then_replays_it(tmp_path: Path) -> None:
    plan = tmp_path / "faults.json"
    mock = on(tmp_path / "mock.sqlite", plan)
    created = await mock.create_payment(CREATE, "k:create")
    write_plan(plan, {"confirm": "timeout"})
    with pytest.raises(ProviderUnavailable):
        await mock.confirm_payment(created.provider_payment_id, "", "k:confirm")
    write_plan(plan, {})
    replayed = await mock.confirm_payment(created.provider_payment_id, "", "k:confirm")
    assert replayed.status is ProviderStatus.SUCCEEDED
    assert len(mock.store.movements()) == 1


async def test_unknown_fault_answers_processing_and_pending_but_acts(tmp_path: Path) -> None:
    plan = tmp_path / "faults.json"
    mock = on(tmp_path / "mock.sqlite", plan)
    created = await mock.create_payment(CREATE, "k:create")
    write_plan(plan, {"confirm": "unknown", "refund": "unknown"})
    answer = await mock.confirm_payment(created.provider_payment_id, "", "k:confirm")
    assert answer.status is ProviderStatus.PROCESSING
    truth = await mock.retrieve_payment(created.provider_payment_id)
    assert truth.status is ProviderStatus.SUCCEEDED
    refund = await mock.refund_payment(created.provider_payment_id, 100, "k:refund")
    assert refund.status is ProviderRefundStatus.PENDING
    settled = await mock.retrieve_refund(refund.provider_refund_id)
    assert settled.status is ProviderRefundStatus.SUCCEEDED


def test_a_plan_naming_an_unknown_call_or_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mock call"):
        parse_plan('{"charge": "timeout"}')
    with pytest.raises(ValueError):
        parse_plan('{"confirm": "explode"}')
