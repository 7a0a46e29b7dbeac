"""The provider says no, or has not answered yet: refunds, captures and confirmations.

Each test runs on the mock and on localstripe, on both databases, and checks
the provider's own ledger as well as what the service stored. The provider is
made to refuse the way it does in production: someone acted on the payment in
the provider's dashboard first.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import sqlalchemy as sa
import stripe
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db.tables import idempotency_keys
from server.adapters.providers.mock import MockProvider
from server.adapters.providers.resilience import (
    CircuitBreaker,
    ResilientProvider,
)
from server.adapters.providers.stripe_provider import StripeProvider
from server.config import ResiliencePolicy
from server.domain.errors import FailedPrecondition, InvalidArgument
from server.domain.payment import CaptureMethod
from server.domain.payment_states import PaymentState
from server.domain.refund import RefundState
from server.service.dependencies import Dependencies
from server.service.payments.commands import (
    cancel_payment,
    capture_payment,
    confirm_payment,
    create_payment,
)
from server.service.payments.queries import get_payment
from server.service.payments.requests import (
    AmountInput,
    CancelPayment,
    CapturePayment,
    ConfirmPayment,
    CreatePayment,
)
from server.service.refunds.commands import create_refund
from server.service.refunds.queries import list_refunds, refund_query
from tests.integration.service.refunds.test_commands import CALLER, outbox_events, paid, refund
from tests.support.held_calls import WITHIN_S, HeldFirstCall
from tests.support.provider_ledger import (
    MockLedger,
    ProviderLedger,
    StripeLedger,
)

API_KEY = "sk_test_payments"
# Where tests/conftest.py's `provider` fixture keeps the mock's ledger.
MOCK_LEDGER = "ledger.jsonl"


@dataclass(frozen=True)
class AtProvider:
    deps: Dependencies
    ledger: ProviderLedger


@pytest.fixture(params=["mock", "localstripe"])
def at(
    request: pytest.FixtureRequest, deps: Dependencies, provider: MockProvider, tmp_path: Path
) -> AtProvider:
    if request.param == "mock":
        return AtProvider(deps, MockLedger(provider, tmp_path / MOCK_LEDGER))
    url: str = request.getfixturevalue("localstripe_url")
    policy = ResiliencePolicy(attempts=2, backoff_initial_s=0.01, call_timeout_s=5)
    stripe_provider = ResilientProvider(StripeProvider(API_KEY, url), policy, CircuitBreaker(5, 30))
    client = stripe.StripeClient(
        API_KEY, base_addresses={"api": url}, http_client=stripe.HTTPXClient()
    )
    return AtProvider(replace(deps, provider=stripe_provider, simulator=None), StripeLedger(client))


async def key_rows(engine: AsyncEngine, request_id: str) -> int:
    async with engine.connect() as connection:
        found = await connection.execute(
            sa.select(sa.func.count())
            .select_from(idempotency_keys)
            .where(idempotency_keys.c.request_id == request_id)
        )
        return int(found.scalar_one())


async def not_yet_confirmed(
    deps: Dependencies, capture: CaptureMethod, method: str = "pm_card_visa"
) -> str:
    n = uuid.uuid4().hex[:8]
    outcome = await create_payment(
        deps,
        CALLER,
        CreatePayment(
            request_id=f"pay-{n}",
            order_id=f"order-{n}",
            user_id="user-1",
            amount=AmountInput("USD", 1000),
            payment_method_id=method,
            capture_method=capture,
            confirm=capture is CaptureMethod.MANUAL,
        ),
    )
    return outcome.resource.id


async def test_refund_refused_by_the_provider_is_recorded_failed_and_frees_its_key(
    deps: Dependencies, provider: MockProvider, engine: AsyncEngine, tmp_path: Path
) -> None:
    # localstripe refunds whatever it is asked, so only the mock can refuse here.
    ledger = MockLedger(provider, tmp_path / MOCK_LEDGER)
    payment_id = await paid(deps)
    at_provider = (await get_payment(deps.uow, payment_id)).provider_payment_id
    await ledger.refund_behind_our_back(at_provider, 1000)

    for _ in range(2):  # the refused request's key is free: the retry is refused again
        with pytest.raises(FailedPrecondition) as refused:
            await create_refund(deps, CALLER, refund(payment_id, "r-refused", 300))
        assert refused.value.reason == "PROVIDER_REJECTED"
        assert str(refused.value) == (
            "the provider refused the refund: amount exceeds what the payment can still refund"
        )
    assert await key_rows(engine, "r-refused") == 0

    stored, _ = await list_refunds(deps.uow, refund_query(payment_id, 10))
    assert [r.state for r in stored] == [RefundState.FAILED, RefundState.FAILED]
    # The provider's refusal, as it gave it: no failure of the refund's own.
    assert {(r.failure_code, r.failure_message) for r in stored} == {
        ("provider_rejected", "amount exceeds what the payment can still refund")
    }
    payment = await get_payment(deps.uow, payment_id)
    assert payment.state is PaymentState.SUCCEEDED
    assert payment.amount_refunded == 0
    assert [t for t, _, _ in await outbox_events(engine, payment_id)][-2:] == [
        "refund.failed",
        "refund.failed",
    ]
    assert await ledger.refunds(at_provider) == 1, "only the dashboard's refund moved money"


async def test_refund_while_a_pending_one_holds_the_amount_never_reaches_the_provider(
    at: AtProvider,
) -> None:
    payment_id = await paid(at.deps)
    at_provider = (await get_payment(at.deps.uow, payment_id)).provider_payment_id
    held = HeldFirstCall(at.deps.provider, "refund_payment")
    deps = replace(at.deps, provider=held.as_provider())

    first = asyncio.ensure_future(create_refund(deps, CALLER, refund(payment_id, "r-all", None)))
    try:
        await asyncio.wait_for(held.reached.wait(), WITHIN_S)
        # The first refund is PENDING with the whole amount reserved at the provider's door.
        with pytest.raises(FailedPrecondition) as refused:
            await create_refund(deps, CALLER, refund(payment_id, "r-more", 500))
        assert refused.value.reason == "REFUND_EXCEEDS_REFUNDABLE"
        assert refused.value.metadata["refundable"] == "0"
        assert str(refused.value) == "only 0 of the payment can still be refunded"
        with pytest.raises(FailedPrecondition) as the_rest:  # "the rest" is nothing
            await create_refund(deps, CALLER, refund(payment_id, "r-rest", None))
        assert the_rest.value.reason == "REFUND_EXCEEDS_REFUNDABLE"
        assert await at.ledger.refunds(at_provider) == 0
    finally:
        held.release.set()
        await asyncio.wait([first], timeout=WITHIN_S)
    settled = first.result().resource
    assert settled.state is RefundState.SUCCEEDED
    assert settled.amount.minor_units == 1000
    payment = await get_payment(deps.uow, payment_id)
    assert payment.state is PaymentState.REFUNDED
    assert payment.amount_refunded == 1000
    assert await at.ledger.refunds(at_provider) == 1


async def test_capture_refused_by_the_provider_takes_its_word_and_frees_the_key(
    at: AtProvider, engine: AsyncEngine
) -> None:
    payment_id = await not_yet_confirmed(at.deps, CaptureMethod.MANUAL)
    held = await get_payment(at.deps.uow, payment_id)
    assert held.state is PaymentState.REQUIRES_CAPTURE
    await at.ledger.capture_behind_our_back(held.provider_payment_id, 1000)

    with pytest.raises(FailedPrecondition) as refused:
        await capture_payment(at.deps, CALLER, CapturePayment(payment_id, "cap-1"))
    assert refused.value.reason == "PROVIDER_REJECTED"
    payment = await get_payment(at.deps.uow, payment_id)
    assert payment.state is PaymentState.SUCCEEDED
    assert payment.amount_captured == 1000
    assert await key_rows(engine, "cap-1") == 0
    assert await at.ledger.captures(held.provider_payment_id) == 1


async def test_cancel_refused_by_the_provider_takes_its_word(
    deps: Dependencies, provider: MockProvider, engine: AsyncEngine, tmp_path: Path
) -> None:
    # Captured in the dashboard meanwhile: the provider will not cancel a succeeded payment.
    ledger = MockLedger(provider, tmp_path / MOCK_LEDGER)
    payment_id = await not_yet_confirmed(deps, CaptureMethod.MANUAL)
    held = await get_payment(deps.uow, payment_id)
    await ledger.capture_behind_our_back(held.provider_payment_id, 1000)

    with pytest.raises(FailedPrecondition) as refused:
        await cancel_payment(deps, CALLER, CancelPayment(payment_id, "cancel-1"))
    assert refused.value.reason == "PROVIDER_REJECTED"
    payment = await get_payment(deps.uow, payment_id)
    assert payment.state is PaymentState.SUCCEEDED
    assert payment.amount_captured == 1000
    assert await key_rows(engine, "cancel-1") == 0


async def test_capture_of_a_payment_canceled_at_the_provider_is_refused(
    deps: Dependencies, provider: MockProvider, engine: AsyncEngine, tmp_path: Path
) -> None:
    # localstripe captures even a canceled intent, so only the mock can tell here.
    ledger = MockLedger(provider, tmp_path / MOCK_LEDGER)
    payment_id = await not_yet_confirmed(deps, CaptureMethod.MANUAL)
    held = await get_payment(deps.uow, payment_id)
    await ledger.cancel_behind_our_back(held.provider_payment_id)

    with pytest.raises(FailedPrecondition) as refused:
        await capture_payment(deps, CALLER, CapturePayment(payment_id, "cap-1"))
    assert refused.value.reason == "PROVIDER_REJECTED"
    payment = await get_payment(deps.uow, payment_id)
    assert payment.state is PaymentState.CANCELED
    assert payment.amount_captured == 0
    assert await key_rows(engine, "cap-1") == 0
    assert await ledger.captures(held.provider_payment_id) == 0
    assert not await ledger.money_taken(held.provider_payment_id)


async def test_confirmation_refused_by_the_provider_fails_the_payment_and_frees_the_key(
    deps: Dependencies, provider: MockProvider, engine: AsyncEngine, tmp_path: Path
) -> None:
    # localstripe answers a confirmation that names a payment method with 500 "Not
    # implemented", and the Stripe adapter reads before confirming, so only the mock refuses.
    ledger = MockLedger(provider, tmp_path / MOCK_LEDGER)
    payment_id = await not_yet_confirmed(deps, CaptureMethod.AUTOMATIC, method="")
    waiting = await get_payment(deps.uow, payment_id)
    assert waiting.state is PaymentState.REQUIRES_PAYMENT_METHOD

    # A method the provider has never heard of: it refuses to charge it.
    confirm = ConfirmPayment(payment_id, "confirm-1", "pm_card_doesNotExist")
    with pytest.raises(InvalidArgument) as refused:
        await confirm_payment(deps, CALLER, confirm)
    assert refused.value.reason == "PROVIDER_REJECTED"
    assert refused.value.violations[0].field == "payment_method_id"
    payment = await get_payment(deps.uow, payment_id)
    assert payment.state is PaymentState.FAILED
    assert payment.amount_captured == 0
    assert await key_rows(engine, "confirm-1") == 0
    assert not await ledger.money_taken(waiting.provider_payment_id)
