"""The payment webhooks of test_webhooks.py again, through the two-statement path.

`payments gateway` on PostgreSQL applies payment events through
server/adapters/db/payment_webhooks.py, not the unit of work; every payment case of
test_webhooks.py runs here against it, and its failure case with a failure of its own.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import cast

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db import payment_webhooks
from server.adapters.db.direct_pool import DirectPool
from server.adapters.db.payment_webhooks import PgPaymentWebhooks
from server.cli import main
from server.domain.payment_states import PaymentState
from server.service.dependencies import Dependencies
from server.service.provider import PaymentProvider
from tests.integration.gateway.test_webhooks import (
    SECRET,
    TruthProvider,
    client,
    deliver,
    event_for,
    load,
    seed,
    stored,
    test_a_capture_made_in_stripes_dashboard_is_applied_not_stale,
    test_a_signed_event_that_can_never_be_applied_is_kept_and_acknowledged,
    test_concurrent_duplicates_apply_once,
    test_confirmed_in_the_browser_is_checked_with_the_provider,
    test_doubt_resolved_by_the_provider_as_stale,
    test_duplicate_delivery_does_nothing,
    test_each_event_type_moves_the_payment,
    test_late_failure_after_success_is_stale,
    test_metadata_of_another_intent_is_not_trusted,
    test_payment_found_by_provider_id_without_metadata,
    test_success_after_requires_action_moves_on,
    test_success_already_known_from_grpc_is_applied_without_change,
    test_unknown_payment_and_type_are_stored_as_ignored,
    truth,
)

__all__ = [
    "client",
    "test_a_capture_made_in_stripes_dashboard_is_applied_not_stale",
    "test_a_signed_event_that_can_never_be_applied_is_kept_and_acknowledged",
    "test_concurrent_duplicates_apply_once",
    "test_confirmed_in_the_browser_is_checked_with_the_provider",
    "test_doubt_resolved_by_the_provider_as_stale",
    "test_duplicate_delivery_does_nothing",
    "test_each_event_type_moves_the_payment",
    "test_late_failure_after_success_is_stale",
    "test_metadata_of_another_intent_is_not_trusted",
    "test_payment_found_by_provider_id_without_metadata",
    "test_success_after_requires_action_moves_on",
    "test_success_already_known_from_grpc_is_applied_without_change",
    "test_unknown_payment_and_type_are_stored_as_ignored",
    "truth",
]

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The two-statement path exists on PostgreSQL only."""
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def stripe_deps(deps: Dependencies, truth: TruthProvider, engine: AsyncEngine) -> Dependencies:
    """test_webhooks.py's, with the two-statement path as the gateway builds it."""
    provider = cast(PaymentProvider, truth)
    return replace(
        deps,
        provider=provider,
        simulator=None,
        payment_webhooks=PgPaymentWebhooks(DirectPool(engine)),
    )


async def test_failing_write_answers_500_and_replay_applies_it(
    client: httpx.AsyncClient,
    stripe_deps: Dependencies,
    engine: AsyncEngine,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    payment = await seed(stripe_deps, PaymentState.PROCESSING)
    body = event_for(payment, "payment_intent.succeeded", "succeeded")

    def broken_rows(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"secret detail {SECRET} {body.decode()}")

    with monkeypatch.context() as patch:
        patch.setattr(payment_webhooks, "outbox_rows", broken_rows)
        reply = await deliver(client, body)
        assert reply.status_code == 500
        assert SECRET not in reply.text
        assert (await deliver(client, body)).status_code == 500
    [row] = await stored(engine)
    assert (row["status"], row["error"], row["attempts"]) == ("failed", "RuntimeError", 2)
    assert row["applied_time"] is None
    assert (await load(stripe_deps, payment.id)).state is PaymentState.PROCESSING

    # `payments webhooks replay` builds its dependencies as the gateway does: this path.
    monkeypatch.setenv("PAYMENTS_DATABASE_URL", database_url)
    monkeypatch.setenv("PAYMENTS_PROVIDER", "mock")
    assert await asyncio.to_thread(main, ["webhooks", "replay"]) == 0
    assert "replayed 1 failed webhook events: 1 applied" in capsys.readouterr().out
    assert (await load(stripe_deps, payment.id)).state is PaymentState.SUCCEEDED
    [row] = await stored(engine)
    assert (row["status"], row["error"], row["attempts"]) == ("applied", "", 3)
    assert (await deliver(client, body)).json()["outcome"] == "duplicate"
