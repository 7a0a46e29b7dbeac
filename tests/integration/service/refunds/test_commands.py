"""Refunds on real databases with the mock provider (and one through localstripe)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import replace

import pytest
import sqlalchemy as sa
from payments.v1 import events_pb2, refunds_pb2
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.codec import encode_refund
from server.adapters.db.tables import idempotency_keys, outbox, refunds
from server.adapters.providers.resilience import (
    CircuitBreaker,
    ResilientProvider,
)
from server.adapters.providers.stripe_provider import StripeProvider
from server.config import ResiliencePolicy
from server.domain.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    IdempotencyKeyReused,
    InvalidArgument,
    NotFound,
)
from server.domain.payment import CaptureMethod
from server.domain.payment_states import PaymentState
from server.domain.refund import RefundState
from server.service.dependencies import Dependencies
from server.service.payments.commands import create_payment
from server.service.payments.queries import get_payment
from server.service.payments.requests import AmountInput, CreatePayment
from server.service.provider import ProviderRefundStatus
from server.service.refunds.commands import CreateRefund, create_refund
from server.service.refunds.queries import get_refund, list_refunds, refund_query

CALLER = "orders-service"


async def paid(deps: Dependencies, method: str = "pm_card_visa", amount: int = 1000) -> str:
    n = uuid.uuid4().hex[:8]
    outcome = await create_payment(
        deps,
        CALLER,
        CreatePayment(
            request_id=f"pay-{n}",
            order_id=f"order-{n}",
            user_id="user-1",
            amount=AmountInput("USD", amount),
            payment_method_id=method,
            capture_method=CaptureMethod.AUTOMATIC,
            confirm=True,
        ),
    )
    assert outcome.resource.state is PaymentState.SUCCEEDED
    return outcome.resource.id


def refund(
    payment_id: str, request_id: str, amount: int | None, currency: str = "USD"
) -> CreateRefund:
    return CreateRefund(
        request_id=request_id,
        payment_id=payment_id,
        amount=AmountInput(currency, amount) if amount is not None else None,
        reason="damaged",
    )


async def outbox_events(engine: AsyncEngine, payment_id: str) -> list[tuple[str, int, bytes]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(outbox.c.event_type, outbox.c.sequence, outbox.c.payload)
            .where(outbox.c.aggregate_id == payment_id)
            .order_by(outbox.c.id)
        )
        return [(r.event_type, r.sequence, r.payload) for r in rows]


async def test_partial_then_full_refund_moves_the_payment_and_writes_events(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    payment_id = await paid(deps)
    first = (await create_refund(deps, CALLER, refund(payment_id, "r-1", 300))).resource
    assert first.state is RefundState.SUCCEEDED
    assert first.provider_refund_id.startswith("mock_re_")
    payment = await get_payment(deps.uow, payment_id)
    assert payment.state is PaymentState.PARTIALLY_REFUNDED
    assert payment.amount_refunded == 300

    rest = (await create_refund(deps, CALLER, refund(payment_id, "r-2", None))).resource
    assert rest.amount.minor_units == 700
    payment = await get_payment(deps.uow, payment_id)
    assert payment.state is PaymentState.REFUNDED
    assert payment.amount_refunded == 1000

    events = await outbox_events(engine, payment_id)
    assert [sequence for _, sequence, _ in events] == list(range(1, len(events) + 1))
    assert [t for t, _, _ in events][-2:] == ["refund.issued", "refund.issued"]
    last = events_pb2.EventEnvelope.FromString(events[-1][2])
    assert last.WhichOneof("event") == "refund_issued"
    assert last.aggregate_type == "payment"
    assert last.aggregate_id == payment_id
    assert last.refund_issued.refund.id == rest.id
    assert last.refund_issued.refund.state == refunds_pb2.REFUND_STATE_SUCCEEDED
    assert last.refund_issued.payment.amount_refunded.minor_units == 1000

    assert (await get_refund(deps.uow, first.id)).amount.minor_units == 300
    found, token = await list_refunds(deps.uow, refund_query(payment_id, 1))
    assert [r.id for r in found] == [first.id]
    assert token
    found, token = await list_refunds(deps.uow, refund_query(payment_id, 1), token)
    assert [r.id for r in found] == [rest.id]
    assert token == ""


async def test_over_refund_and_wrong_currency_are_refused(deps: Dependencies) -> None:
    payment_id = await paid(deps)
    with pytest.raises(InvalidArgument) as too_much:
        await create_refund(deps, CALLER, refund(payment_id, "r-1", 1001))
    assert too_much.value.reason == "REFUND_EXCEEDS_CAPTURED"
    with pytest.raises(InvalidArgument):
        await create_refund(deps, CALLER, refund(payment_id, "r-2", 10, "EUR"))
    await create_refund(deps, CALLER, refund(payment_id, "r-3", 600))
    with pytest.raises(FailedPrecondition) as left:
        await create_refund(deps, CALLER, refund(payment_id, "r-4", 401))
    assert left.value.reason == "REFUND_EXCEEDS_REFUNDABLE"
    assert left.value.metadata["refundable"] == "400"
    payment = await get_payment(deps.uow, payment_id)
    assert payment.amount_refunded == 600


async def test_validation(deps: Dependencies) -> None:
    with pytest.raises(InvalidArgument) as error:
        await create_refund(deps, CALLER, refund("nope", "", 0))
    fields = {v.field for v in error.value.violations}
    assert {"request_id", "payment_id", "amount.minor_units"} <= fields
    with pytest.raises(NotFound):
        await create_refund(deps, CALLER, refund("pay_01JD0000000000000000000000", "r-1", 10))


async def test_refund_of_a_payment_that_did_not_succeed_is_refused(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    n = uuid.uuid4().hex[:8]
    declined = await create_payment(
        deps,
        CALLER,
        CreatePayment(
            request_id=f"pay-{n}",
            order_id=f"order-{n}",
            user_id="user-1",
            amount=AmountInput("USD", 1000),
            payment_method_id="pm_card_chargeDeclined",
            confirm=True,
        ),
    )
    assert declined.resource.state is PaymentState.FAILED
    with pytest.raises(FailedPrecondition) as error:
        await create_refund(deps, CALLER, refund(declined.resource.id, "r-1", None))
    assert error.value.reason == "INVALID_PAYMENT_STATE"
    async with engine.connect() as connection:
        assert (
            await connection.execute(sa.select(sa.func.count()).select_from(refunds))
        ).scalar_one() == 0
        stored = await connection.execute(
            sa.select(sa.func.count())
            .select_from(idempotency_keys)
            .where(idempotency_keys.c.request_id == "r-1")
        )
        assert stored.scalar_one() == 0


async def test_same_request_id_replays_byte_identical(deps: Dependencies) -> None:
    payment_id = await paid(deps)
    first = await create_refund(deps, CALLER, refund(payment_id, "r-1", 250))
    again = await create_refund(deps, CALLER, refund(payment_id, "r-1", 250))
    assert again.replayed
    assert not first.replayed
    assert encode_refund(again.resource) == encode_refund(first.resource)
    assert first.client_secret == again.client_secret == ""  # only a payment has one
    payment = await get_payment(deps.uow, payment_id)
    assert payment.amount_refunded == 250
    with pytest.raises(IdempotencyKeyReused):
        await create_refund(deps, CALLER, refund(payment_id, "r-1", 251))


async def test_failing_mock_refund_releases_the_amount(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    payment_id = await paid(deps, "pm_card_refundFail")
    failed = (await create_refund(deps, CALLER, refund(payment_id, "r-1", None))).resource
    assert failed.state is RefundState.FAILED
    assert failed.failure_code == "refund_failed"
    payment = await get_payment(deps.uow, payment_id)
    assert payment.state is PaymentState.SUCCEEDED
    assert payment.amount_refunded == 0
    events = await outbox_events(engine, payment_id)
    assert events[-1][0] == "refund.failed"
    assert [s for _, s, _ in events] == list(range(1, len(events) + 1))
    envelope = events_pb2.EventEnvelope.FromString(events[-1][2])
    assert envelope.refund_failed.refund.failure_code == "refund_failed"
    # The failed amount is free again: a new refund may ask for all of it (and fail again).
    again = (await create_refund(deps, CALLER, refund(payment_id, "r-2", 1000))).resource
    assert again.state is RefundState.FAILED


async def test_concurrent_partial_refunds_never_over_refund(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    payment_id = await paid(deps, amount=1000)

    async def one(i: int) -> object:
        try:
            return await create_refund(deps, CALLER, refund(payment_id, f"race-{i}", 150))
        except DomainError as error:
            return error

    results = await asyncio.gather(*(one(i) for i in range(20)))
    refused = [r for r in results if isinstance(r, DomainError)]
    assert all(isinstance(r, (FailedPrecondition, InvalidArgument)) for r in refused)
    assert len(refused) == 14
    async with engine.connect() as connection:
        total = (
            await connection.execute(
                sa.select(sa.func.sum(refunds.c.amount)).where(
                    refunds.c.payment_id == payment_id, refunds.c.state == "SUCCEEDED"
                )
            )
        ).scalar_one()
    assert total == 900
    payment = await get_payment(deps.uow, payment_id)
    assert payment.amount_refunded == 900
    assert payment.state is PaymentState.PARTIALLY_REFUNDED
    events = await outbox_events(engine, payment_id)
    assert [s for _, s, _ in events] == list(range(1, len(events) + 1))
    assert [t for t, _, _ in events].count("refund.issued") == 6


async def test_stripe_refund_through_localstripe(deps: Dependencies, localstripe_url: str) -> None:
    policy = ResiliencePolicy(attempts=2, backoff_initial_s=0.01, call_timeout_s=5)
    provider = ResilientProvider(
        StripeProvider("sk_test_payments", localstripe_url), policy, CircuitBreaker(5, 30)
    )
    stripe_deps = replace(deps, provider=provider, simulator=None)
    payment_id = await paid(stripe_deps)
    part = (await create_refund(stripe_deps, CALLER, refund(payment_id, "s-1", 400))).resource
    assert part.state is RefundState.SUCCEEDED
    assert part.provider_refund_id.startswith("re_")
    rest = (await create_refund(stripe_deps, CALLER, refund(payment_id, "s-2", None))).resource
    assert rest.state is RefundState.SUCCEEDED
    assert rest.amount.minor_units == 600
    payment = await get_payment(stripe_deps.uow, payment_id)
    assert payment.state is PaymentState.REFUNDED
    assert payment.amount_refunded == 1000
    # The refund janitor's lookup reads the same refund back from Stripe.
    looked_up = await provider.retrieve_refund(part.provider_refund_id)
    assert looked_up.status is ProviderRefundStatus.SUCCEEDED
    assert looked_up.provider_refund_id == part.provider_refund_id


async def test_refusals_say_what_is_wrong_and_what_is_left(deps: Dependencies) -> None:
    missing = "pay_01JD0000000000000000000000"
    with pytest.raises(NotFound) as not_found:
        await create_refund(deps, CALLER, refund(missing, "r-missing", 1))
    assert not_found.value.reason == "PAYMENT_NOT_FOUND"
    assert str(not_found.value) == f"payment {missing} not found"

    payment_id = await paid(deps, amount=1000)
    with pytest.raises(InvalidArgument) as currency:
        await create_refund(deps, CALLER, refund(payment_id, "r-eur", 1, "EUR"))
    assert currency.value.violations == (
        FieldViolation("amount.currency_code", "must be the payment's currency, USD"),
    )
    with pytest.raises(InvalidArgument) as too_much:
        await create_refund(deps, CALLER, refund(payment_id, "r-big", 1001))
    assert too_much.value.reason == "REFUND_EXCEEDS_CAPTURED"
    assert too_much.value.violations == (
        FieldViolation("amount.minor_units", "must be at most the captured 1000"),
    )
    await create_refund(deps, CALLER, refund(payment_id, "r-most", 600))
    with pytest.raises(FailedPrecondition) as left:
        await create_refund(deps, CALLER, refund(payment_id, "r-rest", 401))
    assert left.value.reason == "REFUND_EXCEEDS_REFUNDABLE"
    assert str(left.value) == "only 400 of the payment can still be refunded"
    assert dict(left.value.metadata) == {"refundable": "400", "payment_id": payment_id}


async def test_a_refund_is_recorded_as_asked_and_keyed_by_its_parameters(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    payment_id = await paid(deps, amount=1000)
    made = (await create_refund(deps, CALLER, refund(payment_id, "r-key", 300))).resource
    stored = await get_refund(deps.uow, made.id)
    assert (stored.payment_id, stored.amount.minor_units, stored.reason) == (
        payment_id,
        300,
        "damaged",
    )
    assert (stored.provider, stored.window_override_reason) == ("mock", "")
    # The key's fingerprint is the canonical JSON of the method and its parameters, as
    # stored by every earlier version: a retry across a deploy must still match it.
    canonical = (
        '["CreateRefund",{"amount":["USD",300],'
        f'"payment_id":"{payment_id}","reason":"damaged","window_override_reason":null}}]'
    )
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                sa.select(
                    idempotency_keys.c.caller,
                    idempotency_keys.c.method,
                    idempotency_keys.c.fingerprint,
                ).where(idempotency_keys.c.request_id == "r-key")
            )
        ).one()
    assert tuple(row) == (CALLER, "CreateRefund", hashlib.sha256(canonical.encode()).hexdigest())


async def test_the_last_unit_refunds(deps: Dependencies) -> None:
    payment_id = await paid(deps, amount=1000)
    await create_refund(deps, CALLER, refund(payment_id, "r-most", 999))
    last = (await create_refund(deps, CALLER, refund(payment_id, "r-last", None))).resource
    assert last.amount.minor_units == 1


async def test_a_refund_reason_is_checked_by_its_name(deps: Dependencies) -> None:
    too_long = replace(refund("pay_01JD0000000000000000000000", "r-1", 1), reason="x" * 10_000)
    with pytest.raises(InvalidArgument) as invalid:
        await create_refund(deps, CALLER, too_long)
    assert [v.field for v in invalid.value.violations] == ["reason"]
