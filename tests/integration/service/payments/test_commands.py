"""The payment use cases on real databases with the mock provider."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from payments.v1 import events_pb2
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db.tables import idempotency_keys, outbox, payments
from server.adapters.providers.mock import MockProvider
from server.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    IdempotencyKeyReused,
    InvalidArgument,
    NotFound,
    ProviderUnavailable,
    Unimplemented,
)
from server.domain.payment import CaptureMethod, Failure
from server.domain.payment_states import PaymentState
from server.observability.context import payment_id
from server.service.dependencies import Dependencies
from server.service.payments.commands import (
    cancel_payment,
    capture_payment,
    confirm_payment,
    create_payment,
    simulate_payment,
)
from server.service.payments.queries import get_payment
from server.service.payments.requests import (
    AmountInput,
    CancelPayment,
    CapturePayment,
    ConfirmPayment,
    CreatePayment,
    SimulatePayment,
)
from server.service.provider import CreateAtProvider, ProviderPayment, ProviderRejected
from tests.support.held_calls import WITHIN_S, HeldFirstCall

CALLER = "orders-service"


def create(
    request_id: str = "req-1",
    *,
    order_id: str = "order-1",
    method: str = "pm_card_visa",
    confirm: bool = True,
    capture: CaptureMethod = CaptureMethod.AUTOMATIC,
    minor_units: int = 1050,
) -> CreatePayment:
    return CreatePayment(
        request_id=request_id,
        order_id=order_id,
        user_id="user-1",
        amount=AmountInput("USD", minor_units),
        payment_method_id=method,
        capture_method=capture,
        confirm=confirm,
        description="two books",
        metadata={"cart": "c-9"},
    )


async def event_types(engine: AsyncEngine, payment_id: str) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(outbox.c.event_type, outbox.c.sequence)
            .where(outbox.c.aggregate_id == payment_id)
            .order_by(outbox.c.sequence)
        )
        found = rows.all()
    assert [r.sequence for r in found] == list(range(1, len(found) + 1))
    return [r.event_type for r in found]


async def test_confirmed_visa_payment_succeeds_with_events(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    outcome = await create_payment(deps, CALLER, create())
    payment = outcome.resource
    assert not outcome.replayed
    assert payment.state is PaymentState.SUCCEEDED
    assert payment.amount_captured == 1050
    assert payment.provider_payment_id.startswith("mock_pi_")
    assert await event_types(engine, payment.id) == [
        "payment.created",
        "payment.processing",
        "payment.succeeded",
    ]
    assert (await get_payment(deps.uow, payment.id)) == payment


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("pm_card_chargeDeclined", "card_declined"),
        ("pm_card_insufficientFunds", "insufficient_funds"),
    ],
)
async def test_decline_is_a_failed_payment_not_an_error(
    deps: Dependencies, engine: AsyncEngine, method: str, code: str
) -> None:
    payment = (await create_payment(deps, CALLER, create(method=method))).resource
    assert payment.state is PaymentState.FAILED
    assert payment.failure_code == code
    assert payment.failure_message
    assert await event_types(engine, payment.id) == [
        "payment.created",
        "payment.processing",
        "payment.failed",
    ]
    # A failed payment frees the order for another attempt.
    again = await create_payment(deps, CALLER, create("req-2"))
    assert again.resource.state is PaymentState.SUCCEEDED


async def test_unconfirmed_then_confirmed(deps: Dependencies) -> None:
    created = (await create_payment(deps, CALLER, create(confirm=False, method=""))).resource
    assert created.state is PaymentState.REQUIRES_PAYMENT_METHOD
    with pytest.raises(InvalidArgument) as missing:
        await confirm_payment(deps, CALLER, ConfirmPayment(created.id))
    assert missing.value.violations[0].field == "payment_method_id"
    confirmed = await confirm_payment(
        deps, CALLER, ConfirmPayment(created.id, "confirm-1", "pm_card_visa")
    )
    assert confirmed.resource.state is PaymentState.SUCCEEDED
    replay = await confirm_payment(
        deps, CALLER, ConfirmPayment(created.id, "confirm-1", "pm_card_visa")
    )
    assert replay.replayed
    assert replay.resource == confirmed.resource


async def test_three_d_secure_then_confirm_again(deps: Dependencies, engine: AsyncEngine) -> None:
    first = (
        await create_payment(deps, CALLER, create(method="pm_card_authenticationRequired"))
    ).resource
    assert first.state is PaymentState.REQUIRES_ACTION
    done = (await confirm_payment(deps, CALLER, ConfirmPayment(first.id, "after-3ds"))).resource
    assert done.state is PaymentState.SUCCEEDED
    assert await event_types(engine, first.id) == [
        "payment.created",
        "payment.processing",
        "payment.requires_action",
        "payment.processing",
        "payment.succeeded",
    ]


async def test_manual_capture_partial(deps: Dependencies, engine: AsyncEngine) -> None:
    held = (await create_payment(deps, CALLER, create(capture=CaptureMethod.MANUAL))).resource
    assert held.state is PaymentState.REQUIRES_CAPTURE
    assert held.amount_captured == 0
    with pytest.raises(InvalidArgument) as too_much:
        await capture_payment(deps, CALLER, CapturePayment(held.id, "", AmountInput("USD", 1051)))
    assert too_much.value.reason == "AMOUNT_NOT_CAPTURABLE"
    with pytest.raises(InvalidArgument):
        await capture_payment(deps, CALLER, CapturePayment(held.id, "", AmountInput("EUR", 10)))
    captured = await capture_payment(
        deps, CALLER, CapturePayment(held.id, "cap-1", AmountInput("USD", 700))
    )
    assert captured.resource.state is PaymentState.SUCCEEDED
    assert captured.resource.amount_captured == 700
    with pytest.raises(FailedPrecondition):
        await capture_payment(deps, CALLER, CapturePayment(held.id, "cap-2"))
    assert await event_types(engine, held.id) == [
        "payment.created",
        "payment.processing",
        "payment.authorized",
        "payment.processing",
        "payment.captured",
        "payment.succeeded",
    ]


async def test_cancel_releases_the_order(deps: Dependencies) -> None:
    held = (await create_payment(deps, CALLER, create(capture=CaptureMethod.MANUAL))).resource
    canceled = await cancel_payment(deps, CALLER, CancelPayment(held.id, "c-1", "customer left"))
    assert canceled.resource.state is PaymentState.CANCELED
    again = await cancel_payment(deps, CALLER, CancelPayment(held.id, "c-1", "customer left"))
    assert again.replayed
    with pytest.raises(FailedPrecondition):
        await capture_payment(deps, CALLER, CapturePayment(held.id))
    assert (await create_payment(deps, CALLER, create("req-2"))).resource.state is (
        PaymentState.SUCCEEDED
    )


async def test_cannot_cancel_a_succeeded_payment(deps: Dependencies) -> None:
    paid = (await create_payment(deps, CALLER, create())).resource
    with pytest.raises(FailedPrecondition) as error:
        await cancel_payment(deps, CALLER, CancelPayment(paid.id))
    assert error.value.reason == "INVALID_PAYMENT_STATE"


async def test_second_live_payment_for_an_order_is_refused(deps: Dependencies) -> None:
    first = (await create_payment(deps, CALLER, create(confirm=False))).resource
    with pytest.raises(AlreadyExists) as error:
        await create_payment(deps, CALLER, create("req-2"))
    assert error.value.reason == "ORDER_HAS_LIVE_PAYMENT"
    assert str(error.value) == "order order-1 already has a live payment"
    assert dict(error.value.metadata) == {"payment_id": first.id, "order_id": "order-1"}
    # The refused request stored nothing: its key is free for a corrected retry.
    other = await create_payment(deps, CALLER, create("req-2", order_id="order-2"))
    assert not other.replayed


async def test_unknown_payment_method_fails_the_payment(deps: Dependencies) -> None:
    with pytest.raises(InvalidArgument) as error:
        await create_payment(deps, CALLER, create(method="pm_card_doesNotExist"))
    assert error.value.reason == "PROVIDER_REJECTED"
    assert error.value.violations[0].field == "payment_method_id"


async def test_provider_timeout_leaves_processing_and_retry_resumes(
    deps: Dependencies, engine: AsyncEngine, tmp_path: Path
) -> None:
    with pytest.raises(ProviderUnavailable):
        await create_payment(deps, CALLER, create(method="pm_mock_timeout"))
    async with engine.connect() as connection:
        state = (await connection.execute(sa.select(payments.c.state))).scalar_one()
    assert state == "PROCESSING"
    # The retry resumes: it finds the charge at the provider instead of sending it again.
    resumed = await create_payment(deps, CALLER, create(method="pm_mock_timeout"))
    assert resumed.resource.state is PaymentState.SUCCEEDED
    ledger = (tmp_path / "ledger.jsonl").read_text().splitlines()
    assert len(ledger) == 1, "the retry must not charge again"
    assert json.loads(ledger[0])["kind"] == "charge"


async def test_simulate_settles_a_processing_payment(deps: Dependencies) -> None:
    pending = (await create_payment(deps, CALLER, create(method="pm_mock_processing"))).resource
    assert pending.state is PaymentState.PROCESSING
    settled = await simulate_payment(deps, CALLER, SimulatePayment(pending.id, "", True))
    assert settled.resource.state is PaymentState.SUCCEEDED
    with pytest.raises(FailedPrecondition):
        await simulate_payment(deps, CALLER, SimulatePayment(pending.id, "", False))


async def test_simulate_is_unimplemented_when_disabled(deps: Dependencies) -> None:
    closed = Dependencies(uow=deps.uow, provider=deps.provider, simulation_enabled=False)
    with pytest.raises(Unimplemented):
        await simulate_payment(closed, CALLER, SimulatePayment("pay_01JD0000000000000000000000"))


async def test_simulate_refusals_say_why(deps: Dependencies) -> None:
    payment_id = "pay_01JD0000000000000000000000"
    closed = Dependencies(uow=deps.uow, provider=deps.provider, simulation_enabled=False)
    with pytest.raises(Unimplemented) as disabled:
        await simulate_payment(closed, CALLER, SimulatePayment(payment_id, "", True))
    assert disabled.value.reason == "SIMULATION_DISABLED"
    assert str(disabled.value) == (
        "SimulatePayment exists only when PAYMENTS_ENV is development or test"
    )
    no_mock = Dependencies(uow=deps.uow, provider=deps.provider, simulation_enabled=True)
    with pytest.raises(Unimplemented) as without_mock:
        await simulate_payment(no_mock, CALLER, SimulatePayment(payment_id, "", True))
    assert without_mock.value.reason == "SIMULATION_DISABLED"
    assert str(without_mock.value) == "SimulatePayment needs the mock provider"
    with pytest.raises(InvalidArgument) as invalid:
        await simulate_payment(deps, CALLER, SimulatePayment(payment_id, "bad id!", None))
    assert [(v.field, v.description) for v in invalid.value.violations] == [
        ("request_id", "must be 1 to 255 printable ASCII characters without spaces"),
        ("outcome", "is required"),
    ]


async def test_simulate_with_a_request_id_replays_and_refuses_other_outcomes(
    deps: Dependencies,
) -> None:
    pending = (await create_payment(deps, CALLER, create(method="pm_mock_processing"))).resource
    first = await simulate_payment(deps, CALLER, SimulatePayment(pending.id, "sim-1", True))
    again = await simulate_payment(deps, CALLER, SimulatePayment(pending.id, "sim-1", True))
    assert not first.replayed
    assert again.replayed
    assert again.resource == first.resource
    with pytest.raises(IdempotencyKeyReused):
        await simulate_payment(deps, CALLER, SimulatePayment(pending.id, "sim-1", False))
    # From another caller the same request_id is a key of its own: no replay, a real try.
    with pytest.raises(FailedPrecondition):
        await simulate_payment(deps, "billing-service", SimulatePayment(pending.id, "sim-1", True))


async def test_missing_payment_is_not_found(deps: Dependencies) -> None:
    with pytest.raises(NotFound):
        await get_payment(deps.uow, "pay_01JD0000000000000000000000")
    with pytest.raises(NotFound) as missing:
        await confirm_payment(deps, CALLER, ConfirmPayment("pay_01JD0000000000000000000000"))
    assert missing.value.reason == "PAYMENT_NOT_FOUND"
    assert str(missing.value) == "payment pay_01JD0000000000000000000000 not found"


async def test_invalid_request_stores_nothing(deps: Dependencies, engine: AsyncEngine) -> None:
    bad = CreatePayment(
        request_id="",
        order_id="",
        user_id="u",
        amount=AmountInput("usd", 0),
        confirm=True,
    )
    with pytest.raises(InvalidArgument) as error:
        await create_payment(deps, CALLER, bad)
    fields = {v.field for v in error.value.violations}
    assert fields == {
        "request_id",
        "order_id",
        "amount.currency_code",
        "amount.minor_units",
        "payment_method_id",
    }
    async with engine.connect() as connection:
        for table in ("payments", "idempotency_keys", "outbox"):
            count = (await connection.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar()
            assert count == 0, table


class RefusesWithoutDetail(MockProvider):
    """A provider that refuses every new payment and names neither a field nor a code."""

    async def create_payment(
        self, request: CreateAtProvider, idempotency_key: str
    ) -> ProviderPayment:
        raise ProviderRejected("Your request was invalid.")


async def test_a_refusal_without_detail_fails_the_payment_as_an_invalid_request(
    deps: Dependencies, engine: AsyncEngine, tmp_path: Path
) -> None:
    refusing = replace(deps, provider=RefusesWithoutDetail(ledger=tmp_path / "refusing.jsonl"))
    with pytest.raises(InvalidArgument) as refused:
        await create_payment(refusing, CALLER, create("req-refused"))
    assert refused.value.reason == "PROVIDER_REJECTED"
    assert refused.value.violations == (
        FieldViolation("payment_method_id", "Your request was invalid."),
    )
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                sa.select(payments.c.state, payments.c.failure_code, payments.c.failure_message)
            )
        ).one()
    assert tuple(row) == ("FAILED", "invalid_request", "Your request was invalid.")


@pytest.mark.parametrize("command", ["confirm", "capture", "cancel", "simulate"])
async def test_an_optional_request_id_is_still_checked(deps: Dependencies, command: str) -> None:
    payment_id, request_id = "pay_01JD0000000000000000000000", "has spaces"
    calls = {
        "confirm": lambda: confirm_payment(deps, CALLER, ConfirmPayment(payment_id, request_id)),
        "capture": lambda: capture_payment(deps, CALLER, CapturePayment(payment_id, request_id)),
        "cancel": lambda: cancel_payment(deps, CALLER, CancelPayment(payment_id, request_id)),
        "simulate": lambda: simulate_payment(
            deps, CALLER, SimulatePayment(payment_id, request_id, True)
        ),
    }
    with pytest.raises(InvalidArgument) as invalid:
        await calls[command]()
    assert invalid.value.violations == (
        FieldViolation("request_id", "must be 1 to 255 printable ASCII characters without spaces"),
    )


async def test_a_payment_s_outcome_is_one_log_line_and_a_replay_none(
    deps: Dependencies, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="server.service.payments.commands")
    first = (await create_payment(deps, CALLER, create("req-logged"))).resource
    await create_payment(deps, CALLER, create("req-logged"))
    declined = (
        await create_payment(
            deps,
            CALLER,
            create("req-declined", order_id="order-2", method="pm_card_chargeDeclined"),
        )
    ).resource
    lines = [r.getMessage() for r in caplog.records if r.name == "server.service.payments.commands"]
    assert lines == [
        f"payment {first.id}: SUCCEEDED at mock",
        f"payment {declined.id}: FAILED at mock",
    ]


def canonical(method: str, parameters: str) -> str:
    """The fingerprint of a request_id's key, from the canonical JSON written out by hand."""
    return hashlib.sha256(f'["{method}",{parameters}]'.encode()).hexdigest()


async def stored_key(engine: AsyncEngine, request_id: str) -> tuple[str, str, str | None]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                sa.select(
                    idempotency_keys.c.method,
                    idempotency_keys.c.fingerprint,
                    idempotency_keys.c.resource_id,
                ).where(idempotency_keys.c.request_id == request_id)
            )
        ).one()
    return row.method, row.fingerprint, row.resource_id


async def test_each_command_keys_its_request_id_by_its_own_canonical_parameters(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    # Keys outlive a deploy (24 h): a retry must find the fingerprint an earlier version stored.
    held = (await create_payment(deps, CALLER, create("k-0", confirm=False))).resource
    await confirm_payment(deps, CALLER, ConfirmPayment(held.id, "k-confirm"))
    manual = (
        await create_payment(
            deps, CALLER, create("k-1", order_id="order-2", capture=CaptureMethod.MANUAL)
        )
    ).resource
    await capture_payment(deps, CALLER, CapturePayment(manual.id, "k-capture"))
    waiting = (
        await create_payment(deps, CALLER, create("k-2", order_id="order-3", confirm=False))
    ).resource
    await cancel_payment(deps, CALLER, CancelPayment(waiting.id, "k-cancel", "duplicate"))
    pending = (
        await create_payment(
            deps, CALLER, create("k-3", order_id="order-4", method="pm_mock_processing")
        )
    ).resource
    await simulate_payment(deps, CALLER, SimulatePayment(pending.id, "k-simulate", True))

    assert await stored_key(engine, "k-confirm") == (
        "ConfirmPayment",
        canonical("ConfirmPayment", f'{{"id":"{held.id}","payment_method_id":""}}'),
        held.id,
    )
    assert await stored_key(engine, "k-capture") == (
        "CapturePayment",
        canonical("CapturePayment", f'{{"amount":null,"id":"{manual.id}"}}'),
        manual.id,
    )
    partly = (
        await create_payment(
            deps, CALLER, create("k-4", order_id="order-5", capture=CaptureMethod.MANUAL)
        )
    ).resource
    await capture_payment(
        deps, CALLER, CapturePayment(partly.id, "k-part", AmountInput("USD", 700))
    )
    assert await stored_key(engine, "k-part") == (
        "CapturePayment",
        canonical("CapturePayment", f'{{"amount":["USD",700],"id":"{partly.id}"}}'),
        partly.id,
    )
    assert await stored_key(engine, "k-cancel") == (
        "CancelPayment",
        canonical("CancelPayment", f'{{"id":"{waiting.id}","r":"duplicate"}}'),
        waiting.id,
    )
    assert await stored_key(engine, "k-simulate") == (
        "SimulatePayment",
        canonical("SimulatePayment", f'{{"id":"{pending.id}","s":true}}'),
        pending.id,
    )


async def test_a_capture_takes_at_most_the_authorized_amount_in_its_currency(
    deps: Dependencies,
) -> None:
    manual = (await create_payment(deps, CALLER, create(capture=CaptureMethod.MANUAL))).resource
    with pytest.raises(InvalidArgument) as wrong:
        await capture_payment(deps, CALLER, CapturePayment(manual.id, "", AmountInput("EUR", 1051)))
    assert wrong.value.reason == "AMOUNT_NOT_CAPTURABLE"
    assert wrong.value.violations == (
        FieldViolation("amount_to_capture.currency_code", "must be the payment's currency, USD"),
        FieldViolation("amount_to_capture.minor_units", "must be at most the authorized 1050"),
    )
    with pytest.raises(InvalidArgument) as malformed:
        await capture_payment(deps, CALLER, CapturePayment(manual.id, "", AmountInput("usd", 0)))
    assert [v.field for v in malformed.value.violations] == [
        "amount_to_capture.currency_code",
        "amount_to_capture.minor_units",
    ]
    captured = await capture_payment(
        deps, CALLER, CapturePayment(manual.id, "", AmountInput("USD", 1050))
    )
    assert captured.resource.amount_captured == 1050


async def test_confirming_a_payment_without_a_method_asks_for_one(deps: Dependencies) -> None:
    bare = (await create_payment(deps, CALLER, create(method="", confirm=False))).resource
    with pytest.raises(InvalidArgument) as invalid:
        await confirm_payment(deps, CALLER, ConfirmPayment(bare.id))
    assert invalid.value.violations == (
        FieldViolation("payment_method_id", "is required: the payment has none yet"),
    )


async def test_a_cancel_reason_is_checked_by_its_name(deps: Dependencies) -> None:
    with pytest.raises(InvalidArgument) as invalid:
        await cancel_payment(
            deps, CALLER, CancelPayment("pay_01JD0000000000000000000000", "", "x" * 10_000)
        )
    assert [v.field for v in invalid.value.violations] == ["reason"]


async def test_a_refusal_without_a_request_id_is_recorded_too(deps: Dependencies) -> None:
    bare = (await create_payment(deps, CALLER, create(method="", confirm=False))).resource
    with pytest.raises(InvalidArgument):
        await confirm_payment(deps, CALLER, ConfirmPayment(bare.id, "", "pm_card_doesNotExist"))
    assert (await get_payment(deps.uow, bare.id)).state is PaymentState.FAILED


async def test_the_cancel_reason_reaches_the_canceled_event(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    waiting = (await create_payment(deps, CALLER, create(confirm=False))).resource
    await cancel_payment(deps, CALLER, CancelPayment(waiting.id, "", "duplicate order"))
    async with engine.connect() as connection:
        payload = (
            await connection.execute(
                sa.select(outbox.c.payload).where(
                    outbox.c.aggregate_id == waiting.id, outbox.c.event_type == "payment.canceled"
                )
            )
        ).scalar_one()
    assert events_pb2.EventEnvelope.FromString(payload).payment_canceled.reason == "duplicate order"


async def test_a_refusal_is_one_log_line(
    deps: Dependencies, caplog: pytest.LogCaptureFixture
) -> None:
    bare = (await create_payment(deps, CALLER, create(method="", confirm=False))).resource
    caplog.set_level(logging.INFO, logger="server.service.payments.commands")
    # Only the refusal's lines: whether the creation's line was captured depends on the
    # log level an earlier test in this process left behind.
    caplog.clear()
    with pytest.raises(InvalidArgument):
        await confirm_payment(deps, CALLER, ConfirmPayment(bare.id, "", "pm_card_doesNotExist"))
    lines = [r.getMessage() for r in caplog.records if r.name == "server.service.payments.commands"]
    assert lines == [f"payment {bare.id}: rejected at mock"]


async def test_a_payment_moved_while_the_provider_answered_keeps_the_other_writer_s_state(
    deps: Dependencies, engine: AsyncEngine, tmp_path: Path
) -> None:
    held = HeldFirstCall(MockProvider(ledger=tmp_path / "held.jsonl"), "create_payment")
    slow = replace(deps, provider=held.as_provider())
    charging = asyncio.ensure_future(create_payment(slow, CALLER, create("req-raced")))
    try:
        await asyncio.wait_for(held.reached.wait(), WITHIN_S)
        # Meanwhile another writer (a webhook, the reconciler) moves the payment on.
        async with engine.connect() as connection:
            payment_id = (await connection.execute(sa.select(payments.c.id))).scalar_one()
        async with deps.uow() as uow:
            other = await uow.payments.get(payment_id, for_update=True)
            assert other is not None
            expected = other.event_sequence
            other.fail(deps.clock.now(), Failure("card_declined", "Your card was declined."))
            await uow.payments.save(other, expected)
            await uow.commit()
    finally:
        held.release.set()
    answered = await asyncio.wait_for(charging, WITHIN_S)
    # Its write found the row moved on: the other writer's state stands, and is the answer.
    assert answered.resource.state is PaymentState.FAILED
    assert (await get_payment(deps.uow, payment_id)).state is PaymentState.FAILED


async def test_a_malformed_method_is_refused_before_the_provider_hears_of_it(
    deps: Dependencies,
) -> None:
    waiting = (await create_payment(deps, CALLER, create(method="", confirm=False))).resource
    with pytest.raises(InvalidArgument) as invalid:
        await confirm_payment(deps, CALLER, ConfirmPayment(waiting.id, "", "not a method"))
    assert invalid.value.reason == "INVALID_ARGUMENT"
    assert [v.field for v in invalid.value.violations] == ["payment_method_id"]


@pytest.mark.parametrize("command", ["confirm", "cancel"])
async def test_a_key_names_its_payment_while_the_provider_works(
    deps: Dependencies, engine: AsyncEngine, tmp_path: Path, command: str
) -> None:
    # What a resumed attempt reads after a crash in mid-call.
    waiting = (await create_payment(deps, CALLER, create(confirm=False))).resource
    method = {"confirm": "confirm_payment", "cancel": "cancel_payment"}[command]
    held = HeldFirstCall(deps.provider, method)
    slow = replace(deps, provider=held.as_provider())
    call = (
        confirm_payment(slow, CALLER, ConfirmPayment(waiting.id, "k-held"))
        if command == "confirm"
        else cancel_payment(slow, CALLER, CancelPayment(waiting.id, "k-held"))
    )
    running = asyncio.ensure_future(call)
    try:
        await asyncio.wait_for(held.reached.wait(), WITHIN_S)
        assert (await stored_key(engine, "k-held"))[2] == waiting.id
    finally:
        held.release.set()
    await asyncio.wait_for(running, WITHIN_S)


class DownForTheFirstCreate(MockProvider):
    """Down for the first create: the payment's row is written, the provider never hears of it."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def create_payment(
        self, request: CreateAtProvider, idempotency_key: str
    ) -> ProviderPayment:
        if self.down:
            self.down = False
            raise ProviderUnavailable("the provider did not answer")
        return await super().create_payment(request, idempotency_key)


async def never_registered(deps: Dependencies, provider: MockProvider) -> str:
    """A payment whose creation never reached the provider: its row has no provider id."""
    with pytest.raises(ProviderUnavailable):
        await create_payment(replace(deps, provider=provider), CALLER, create(confirm=False))
    async with deps.uow() as uow:
        found = await uow.payments.find_live_by_order("user-1", "order-1")
    assert found is not None
    assert found.provider_payment_id == ""
    return found.id


async def test_confirming_a_payment_the_provider_never_saw_creates_and_charges_it(
    deps: Dependencies,
) -> None:
    provider = DownForTheFirstCreate()
    payment_id = await never_registered(deps, provider)

    confirmed = await confirm_payment(
        replace(deps, provider=provider), CALLER, ConfirmPayment(payment_id, "confirm-1")
    )

    assert confirmed.resource.state is PaymentState.SUCCEEDED
    intent = confirmed.resource.provider_payment_id
    assert provider.store.movements() == [("charge", intent, 1050)]


async def test_canceling_a_payment_the_provider_never_saw_asks_the_provider_nothing(
    deps: Dependencies,
) -> None:
    provider = DownForTheFirstCreate()
    payment_id = await never_registered(deps, provider)

    canceled = await cancel_payment(
        replace(deps, provider=provider), CALLER, CancelPayment(payment_id, "c-1")
    )

    assert canceled.resource.state is PaymentState.CANCELED
    assert provider.store.intent_for_payment(payment_id) is None


async def test_a_cancel_reaches_the_provider_under_the_payments_own_key(
    deps: Dependencies, provider: MockProvider
) -> None:
    held = (await create_payment(deps, CALLER, create(capture=CaptureMethod.MANUAL))).resource

    await cancel_payment(deps, CALLER, CancelPayment(held.id, "c-1"))

    # Keyed by the payment, so a cancel retried after a crash is one cancel at the provider.
    assert provider.store.reply(f"{held.id}:cancel") is not None


async def test_confirming_a_payment_whose_provider_id_was_lost_confirms_the_same_intent(
    deps: Dependencies, provider: MockProvider, engine: AsyncEngine
) -> None:
    created = (await create_payment(deps, CALLER, create(confirm=False))).resource
    intent = created.provider_payment_id
    # The provider registered it; the write of its id was lost (a crash right after).
    async with engine.begin() as connection:
        await connection.execute(
            payments.update().where(payments.c.id == created.id).values(provider_payment_id="")
        )

    confirmed = await confirm_payment(deps, CALLER, ConfirmPayment(created.id, "confirm-1"))

    assert confirmed.resource.state is PaymentState.SUCCEEDED
    assert confirmed.resource.provider_payment_id == intent  # looked up, not created again
    assert provider.store.movements() == [("charge", intent, 1050)]


async def test_a_replay_tags_what_follows_with_its_payment(deps: Dependencies) -> None:
    first = (await create_payment(deps, CALLER, create())).resource
    payment_id.set("")

    again = await create_payment(deps, CALLER, create())

    assert again.replayed
    assert payment_id.get() == first.id  # the log lines that follow name the payment
