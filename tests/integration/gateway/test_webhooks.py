"""POST /webhooks/stripe against the app built on real databases, through the service layer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.app import create_app
from gateway.signature import TOLERANCE_SECONDS
from gateway.webhook import MAX_BODY_BYTES
from server.adapters.db.engine import create_engine, ping
from server.adapters.db.payment_repository import SqlPaymentRepository
from server.adapters.db.tables import webhook_events
from server.adapters.providers.base import PaymentProvider, ProviderPayment, ProviderStatus
from server.cli import main
from server.domain.ids import PAYMENT_ID, REFUND_ID
from server.domain.money import Money
from server.domain.payment import CaptureMethod, Payment, new_payment
from server.domain.payment_states import PaymentState
from server.domain.refund import Refund, RefundState, new_refund
from server.service.dependencies import Dependencies
from tests.support.stored_data import outbox_types
from tests.support.stripe_events import event_body, intent_object, signed_headers

SECRET = "whsec_integration"
ROTATED = "whsec_integration_old"
URL = "/webhooks/stripe"


class TruthProvider:
    """Answers retrieve_payment with a fixed truth and counts the calls; nothing else."""

    name = "stripe"
    issues_client_secrets = True

    def __init__(self, truth: ProviderStatus = ProviderStatus.SUCCEEDED) -> None:
        self.truth = truth
        self.retrieved: list[str] = []

    async def retrieve_payment(self, provider_payment_id: str) -> ProviderPayment:
        self.retrieved.append(provider_payment_id)
        received = 1000 if self.truth is ProviderStatus.SUCCEEDED else 0
        return ProviderPayment(provider_payment_id, self.truth, received)


@pytest.fixture
def truth() -> TruthProvider:
    return TruthProvider()


@pytest.fixture
def stripe_deps(deps: Dependencies, truth: TruthProvider) -> Dependencies:
    # The happy path never calls the provider: the tests check truth.retrieved.
    return replace(deps, provider=cast(PaymentProvider, truth), simulator=None)


@pytest.fixture
async def client(
    stripe_deps: Dependencies, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(stripe_deps, [SECRET, ROTATED], database_ready=partial(ping, engine))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


async def seed(
    deps: Dependencies,
    state: PaymentState,
    *,
    capture: CaptureMethod = CaptureMethod.AUTOMATIC,
    provider_payment_id: str | None = None,
) -> Payment:
    """A Stripe payment stored in `state`, as the gRPC path would have left it."""
    now = datetime.now(UTC)
    payment_id = PAYMENT_ID.new()
    payment = new_payment(
        payment_id=payment_id,
        order_id=f"order-{payment_id}",
        user_id="user-1",
        amount=Money("USD", 1000),
        provider="stripe",
        capture_method=capture,
        payment_method_id="pm_card_visa",
        description="",
        metadata={},
        now=now,
    )
    payment.state = state
    payment.provider_payment_id = (
        f"pi_{payment_id[-12:]}" if provider_payment_id is None else provider_payment_id
    )
    async with deps.uow() as uow:
        await uow.payments.add(payment)
        await uow.commit()
    return payment


async def load(deps: Dependencies, payment_id: str) -> Payment:
    async with deps.uow() as uow:
        payment = await uow.payments.get(payment_id)
    assert payment is not None
    return payment


async def stored(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        rows = (await connection.execute(webhook_events.select())).mappings().all()
    return [dict(row) for row in rows]


async def deliver(
    client: httpx.AsyncClient, body: bytes, secret: str = SECRET, timestamp: int | None = None
) -> httpx.Response:
    return await client.post(URL, content=body, headers=signed_headers(body, secret, timestamp))


def event_for(
    payment: Payment,
    event_type: str,
    status: str,
    *,
    metadata: bool = True,
    decline_code: str = "",
) -> bytes:
    obj = intent_object(
        payment.provider_payment_id,
        status,
        payment_id=payment.id if metadata else "",
        decline_code=decline_code,
    )
    return event_body(event_type, obj)


@pytest.mark.parametrize(
    ("event_type", "status", "start", "capture", "end", "emitted"),
    [
        (
            "payment_intent.succeeded",
            "succeeded",
            PaymentState.PROCESSING,
            CaptureMethod.AUTOMATIC,
            PaymentState.SUCCEEDED,
            "payment.succeeded",
        ),
        (
            "payment_intent.succeeded",
            "succeeded",
            PaymentState.REQUIRES_ACTION,
            CaptureMethod.AUTOMATIC,
            PaymentState.SUCCEEDED,
            "payment.succeeded",
        ),
        (
            "payment_intent.payment_failed",
            "requires_payment_method",
            PaymentState.PROCESSING,
            CaptureMethod.AUTOMATIC,
            PaymentState.FAILED,
            "payment.failed",
        ),
        (
            "payment_intent.canceled",
            "canceled",
            PaymentState.REQUIRES_CAPTURE,
            CaptureMethod.MANUAL,
            PaymentState.CANCELED,
            "payment.canceled",
        ),
        (
            "payment_intent.requires_action",
            "requires_action",
            PaymentState.PROCESSING,
            CaptureMethod.AUTOMATIC,
            PaymentState.REQUIRES_ACTION,
            "",
        ),
        (
            "payment_intent.amount_capturable_updated",
            "requires_capture",
            PaymentState.PROCESSING,
            CaptureMethod.MANUAL,
            PaymentState.REQUIRES_CAPTURE,
            "",
        ),
    ],
)
async def test_each_event_type_moves_the_payment(
    client: httpx.AsyncClient,
    stripe_deps: Dependencies,
    engine: AsyncEngine,
    truth: TruthProvider,
    event_type: str,
    status: str,
    start: PaymentState,
    capture: CaptureMethod,
    end: PaymentState,
    emitted: str,
) -> None:
    payment = await seed(stripe_deps, start, capture=capture)
    events_before = await outbox_types(engine, payment.id)
    decline_code = "insufficient_funds" if "failed" in event_type else ""
    reply = await deliver(client, event_for(payment, event_type, status, decline_code=decline_code))
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"received": True, "outcome": "applied"}
    after = await load(stripe_deps, payment.id)
    assert after.state is end
    if end is PaymentState.SUCCEEDED:
        assert after.amount_captured == 1000
    if end is PaymentState.FAILED:
        assert after.failure_code == "insufficient_funds"
        assert after.failure_message == "Your card has insufficient funds."
    # The same outbox events as the gRPC path, in the same transaction.
    new_events = (await outbox_types(engine, payment.id))[len(events_before) :]
    assert new_events
    if emitted:
        assert emitted in new_events
    [row] = await stored(engine)
    assert row["type"] == event_type
    assert row["status"] == "applied"
    assert row["payment_id"] == payment.id
    assert row["attempts"] == 1
    assert row["error"] == ""
    assert row["applied_time"] is not None
    assert json.loads(row["payload"])["data"]["object"]["id"] == payment.provider_payment_id
    assert truth.retrieved == []


async def test_payment_found_by_provider_id_without_metadata(
    client: httpx.AsyncClient, stripe_deps: Dependencies
) -> None:
    payment = await seed(stripe_deps, PaymentState.PROCESSING)
    body = event_for(payment, "payment_intent.succeeded", "succeeded", metadata=False)
    assert (await deliver(client, body)).json()["outcome"] == "applied"
    assert (await load(stripe_deps, payment.id)).state is PaymentState.SUCCEEDED


async def test_metadata_of_another_intent_is_not_trusted(
    client: httpx.AsyncClient, stripe_deps: Dependencies, engine: AsyncEngine
) -> None:
    payment = await seed(stripe_deps, PaymentState.PROCESSING)
    body = event_body(
        "payment_intent.succeeded",
        intent_object("pi_someone_else", "succeeded", payment_id=payment.id),
    )
    assert (await deliver(client, body)).json()["outcome"] == "ignored"
    assert (await load(stripe_deps, payment.id)).state is PaymentState.PROCESSING


async def test_rotated_secret_is_accepted(
    client: httpx.AsyncClient, stripe_deps: Dependencies
) -> None:
    payment = await seed(stripe_deps, PaymentState.PROCESSING)
    body = event_for(payment, "payment_intent.succeeded", "succeeded")
    assert (await deliver(client, body, secret=ROTATED)).status_code == 200
    assert (await load(stripe_deps, payment.id)).state is PaymentState.SUCCEEDED


async def test_duplicate_delivery_does_nothing(
    client: httpx.AsyncClient, stripe_deps: Dependencies, engine: AsyncEngine
) -> None:
    payment = await seed(stripe_deps, PaymentState.PROCESSING)
    body = event_for(payment, "payment_intent.succeeded", "succeeded")
    assert (await deliver(client, body)).json()["outcome"] == "applied"
    events = await outbox_types(engine, payment.id)
    first = await stored(engine)
    for _ in range(2):
        reply = await deliver(client, body)
        assert reply.status_code == 200
        assert reply.json()["outcome"] == "duplicate"
    assert await outbox_types(engine, payment.id) == events
    assert await stored(engine) == first


async def test_concurrent_duplicates_apply_once(
    client: httpx.AsyncClient, stripe_deps: Dependencies, engine: AsyncEngine
) -> None:
    payment = await seed(stripe_deps, PaymentState.PROCESSING)
    body = event_for(payment, "payment_intent.succeeded", "succeeded")
    replies = await asyncio.gather(*(deliver(client, body) for _ in range(5)))
    assert [r.status_code for r in replies] == [200] * 5
    assert sorted(r.json()["outcome"] for r in replies) == ["applied"] + ["duplicate"] * 4
    assert (await outbox_types(engine, payment.id)).count("payment.succeeded") == 1
    assert len(await stored(engine)) == 1


async def test_late_failure_after_success_is_stale(
    client: httpx.AsyncClient, stripe_deps: Dependencies, engine: AsyncEngine
) -> None:
    payment = await seed(stripe_deps, PaymentState.PROCESSING)
    await deliver(client, event_for(payment, "payment_intent.succeeded", "succeeded"))
    settled = await load(stripe_deps, payment.id)
    events = await outbox_types(engine, payment.id)
    for event_type, status in [
        ("payment_intent.payment_failed", "requires_payment_method"),
        ("payment_intent.requires_action", "requires_action"),
        ("payment_intent.canceled", "canceled"),
    ]:
        reply = await deliver(client, event_for(payment, event_type, status))
        assert reply.status_code == 200
        assert reply.json()["outcome"] == "stale"
    after = await load(stripe_deps, payment.id)
    assert after == settled
    assert after.state is PaymentState.SUCCEEDED
    assert await outbox_types(engine, payment.id) == events
    statuses = sorted(row["status"] for row in await stored(engine))
    assert statuses == ["applied", "stale", "stale", "stale"]


async def test_success_after_requires_action_moves_on(
    client: httpx.AsyncClient, stripe_deps: Dependencies
) -> None:
    payment = await seed(stripe_deps, PaymentState.PROCESSING)
    await deliver(client, event_for(payment, "payment_intent.requires_action", "requires_action"))
    assert (await load(stripe_deps, payment.id)).state is PaymentState.REQUIRES_ACTION
    await deliver(client, event_for(payment, "payment_intent.succeeded", "succeeded"))
    assert (await load(stripe_deps, payment.id)).state is PaymentState.SUCCEEDED


async def test_success_already_known_from_grpc_is_applied_without_change(
    client: httpx.AsyncClient, stripe_deps: Dependencies, engine: AsyncEngine
) -> None:
    payment = await seed(stripe_deps, PaymentState.SUCCEEDED)
    events = await outbox_types(engine, payment.id)
    reply = await deliver(client, event_for(payment, "payment_intent.succeeded", "succeeded"))
    assert reply.json()["outcome"] == "applied"
    assert await outbox_types(engine, payment.id) == events


async def test_confirmed_in_the_browser_is_checked_with_the_provider(
    client: httpx.AsyncClient, stripe_deps: Dependencies, truth: TruthProvider
) -> None:
    """We never confirmed it, yet Stripe says it succeeded: in doubt, ask, then apply."""
    payment = await seed(stripe_deps, PaymentState.REQUIRES_CONFIRMATION)
    reply = await deliver(client, event_for(payment, "payment_intent.succeeded", "succeeded"))
    assert reply.json()["outcome"] == "applied"
    assert truth.retrieved == [payment.provider_payment_id]
    assert (await load(stripe_deps, payment.id)).state is PaymentState.SUCCEEDED


async def test_doubt_resolved_by_the_provider_as_stale(
    client: httpx.AsyncClient, stripe_deps: Dependencies, truth: TruthProvider
) -> None:
    truth.truth = ProviderStatus.REQUIRES_CONFIRMATION
    payment = await seed(stripe_deps, PaymentState.REQUIRES_CONFIRMATION)
    reply = await deliver(client, event_for(payment, "payment_intent.succeeded", "succeeded"))
    assert reply.json()["outcome"] == "stale"
    assert (await load(stripe_deps, payment.id)).state is PaymentState.REQUIRES_CONFIRMATION


async def test_unknown_payment_and_type_are_stored_as_ignored(
    client: httpx.AsyncClient, engine: AsyncEngine, truth: TruthProvider
) -> None:
    bodies = [
        event_body(
            "payment_intent.succeeded",
            intent_object("pi_unknown", "succeeded", payment_id="pay_01JD0000000000000000000009"),
        ),
        event_body("charge.refunded", {"id": "ch_1", "object": "charge"}),
        event_body("customer.subscription.created", {"id": "sub_1", "object": "subscription"}),
        event_body("payment_intent.succeeded", {"id": "ch_1", "object": "charge"}),
    ]
    for body in bodies:
        reply = await deliver(client, body)
        assert reply.status_code == 200
        assert reply.json()["outcome"] == "ignored"
    rows = await stored(engine)
    assert [row["status"] for row in rows] == ["ignored"] * 4
    assert truth.retrieved == []


async def test_failing_application_answers_500_and_replay_applies_it(
    client: httpx.AsyncClient,
    stripe_deps: Dependencies,
    engine: AsyncEngine,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    payment = await seed(stripe_deps, PaymentState.PROCESSING)
    body = event_for(payment, "payment_intent.succeeded", "succeeded")

    async def broken_save(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"secret detail {SECRET} {body.decode()}")

    with monkeypatch.context() as patch:
        patch.setattr(SqlPaymentRepository, "save", broken_save)
        reply = await deliver(client, body)
        assert reply.status_code == 500
        assert SECRET not in reply.text
        assert payment.provider_payment_id not in reply.text
        # Stripe retries: still failing, still kept, one more attempt counted.
        assert (await deliver(client, body)).status_code == 500
    [row] = await stored(engine)
    assert row["status"] == "failed"
    assert row["error"] == "RuntimeError"
    assert row["attempts"] == 2
    assert row["applied_time"] is None
    assert (await load(stripe_deps, payment.id)).state is PaymentState.PROCESSING

    monkeypatch.setenv("PAYMENTS_DATABASE_URL", database_url)
    monkeypatch.setenv("PAYMENTS_PROVIDER", "mock")
    assert await asyncio.to_thread(main, ["webhooks", "replay"]) == 0
    assert "replayed 1 failed webhook events: 1 applied" in capsys.readouterr().out
    assert (await load(stripe_deps, payment.id)).state is PaymentState.SUCCEEDED
    [row] = await stored(engine)
    assert row["status"] == "applied"
    assert row["error"] == ""
    assert row["attempts"] == 3
    # Nothing left to replay; a redelivery is now a duplicate.
    assert await asyncio.to_thread(main, ["webhooks", "replay"]) == 0
    assert "replayed 0 failed webhook events" in capsys.readouterr().out
    assert (await deliver(client, body)).json()["outcome"] == "duplicate"


async def _chunks(size: int) -> AsyncIterator[bytes]:
    chunk = b" " * 65536
    sent = 0
    while sent < size:
        yield chunk
        sent += len(chunk)


async def test_refused_requests_store_nothing(
    client: httpx.AsyncClient, stripe_deps: Dependencies, engine: AsyncEngine
) -> None:
    payment = await seed(stripe_deps, PaymentState.PROCESSING)
    body = event_for(payment, "payment_intent.payment_failed", "requires_payment_method")
    good = signed_headers(body, SECRET)
    now = int(time.time())
    cases: list[tuple[int, dict[str, str], Any]] = [
        (415, {**good, "Content-Type": "text/plain"}, body),
        (415, {**good, "Content-Type": "application/x-www-form-urlencoded"}, body),
        (400, {"Content-Type": "application/json"}, body),
        (400, {**good, "Stripe-Signature": "t=1,v1=abc"}, body),
        (400, signed_headers(body, "whsec_wrong"), body),
        # A minute past the tolerance: a slow run must not bring a case back inside it.
        (400, signed_headers(body, SECRET, now - TOLERANCE_SECONDS - 60), body),
        (400, signed_headers(body, SECRET, now + TOLERANCE_SECONDS + 60), body),
        (400, good, body.replace(b"requires_payment_method", b"succeeded")),
        (413, signed_headers(b"x" * (MAX_BODY_BYTES + 1), SECRET), b"x" * (MAX_BODY_BYTES + 1)),
    ]
    for status, headers, content in cases:
        reply = await client.post(URL, content=content, headers=headers)
        assert reply.status_code == status, (status, headers)
        assert SECRET not in reply.text
        assert "evt_" not in reply.text
    # Streamed without Content-Length: cut off once past the limit.
    streamed = await client.post(
        URL,
        content=_chunks(MAX_BODY_BYTES + 65536),
        headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=0"},
    )
    assert streamed.status_code == 413
    # Signed, but not an event.
    for not_event in (b"not json", b"[1, 2]", b'{"id": "evt_1"}', b"\xff\xfe"):
        reply = await client.post(URL, content=not_event, headers=signed_headers(not_event, SECRET))
        assert reply.status_code == 400
    assert await stored(engine) == []
    assert (await load(stripe_deps, payment.id)).state is PaymentState.PROCESSING


async def test_health_and_readiness(client: httpx.AsyncClient, stripe_deps: Dependencies) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok"}
    assert (await client.get(URL)).status_code == 405
    down = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    app = create_app(stripe_deps, [SECRET], database_ready=partial(ping, down))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 503
    await down.dispose()


async def pending_refund(deps: Dependencies, payment: Payment, provider_refund_id: str) -> Refund:
    """A captured Stripe payment with one refund of 400 waiting on Stripe."""
    async with deps.uow() as uow:
        locked = await uow.payments.get(payment.id, for_update=True)
        assert locked is not None
        locked.amount_captured = 1000
        await uow.payments.save(locked, locked.event_sequence)
        refund = new_refund(
            refund_id=REFUND_ID.new(),
            payment_id=payment.id,
            amount=Money("USD", 400),
            provider="stripe",
            reason="",
            now=datetime.now(UTC),
        )
        refund.provider_refund_id = provider_refund_id
        await uow.refunds.add(refund)
        await uow.commit()
    return refund


def refund_object(refund_id: str, status: str, failure_reason: str = "") -> dict[str, Any]:
    return {
        "id": refund_id,
        "object": "refund",
        "amount": 400,
        "currency": "usd",
        "status": status,
        "failure_reason": failure_reason or None,
        "payment_intent": "pi_any",
    }


async def test_refund_succeeded_event_settles_a_pending_refund_once(
    client: httpx.AsyncClient, stripe_deps: Dependencies, engine: AsyncEngine
) -> None:
    payment = await seed(stripe_deps, PaymentState.SUCCEEDED)
    refund = await pending_refund(stripe_deps, payment, "re_webhook_1")
    body = event_body("refund.updated", refund_object("re_webhook_1", "succeeded"))
    assert (await deliver(client, body)).json()["outcome"] == "applied"
    assert (await deliver(client, body)).json()["outcome"] == "duplicate"
    again = event_body("charge.refund.updated", refund_object("re_webhook_1", "succeeded"))
    assert (await deliver(client, again)).json()["outcome"] == "stale"

    after = await load(stripe_deps, payment.id)
    assert after.state is PaymentState.PARTIALLY_REFUNDED
    assert after.amount_refunded == 400
    async with stripe_deps.uow() as uow:
        settled = await uow.refunds.get(refund.id)
    assert settled is not None
    assert settled.state is RefundState.SUCCEEDED
    assert (await outbox_types(engine, payment.id)).count("refund.issued") == 1
    assert [row["payment_id"] for row in await stored(engine)] == [payment.id] * 2


async def test_refund_failed_event_frees_the_amount(
    client: httpx.AsyncClient, stripe_deps: Dependencies, engine: AsyncEngine
) -> None:
    payment = await seed(stripe_deps, PaymentState.SUCCEEDED)
    refund = await pending_refund(stripe_deps, payment, "re_webhook_2")
    body = event_body(
        "refund.failed", refund_object("re_webhook_2", "failed", "expired_or_canceled_card")
    )
    assert (await deliver(client, body)).json()["outcome"] == "applied"
    async with stripe_deps.uow() as uow:
        failed = await uow.refunds.get(refund.id)
        reserved = await uow.refunds.reserved_amount(payment.id)
    assert failed is not None
    assert failed.state is RefundState.FAILED
    assert failed.failure_code == "expired_or_canceled_card"
    assert reserved == 0
    after = await load(stripe_deps, payment.id)
    assert (after.state, after.amount_refunded) == (PaymentState.SUCCEEDED, 0)
    assert (await outbox_types(engine, payment.id))[-1] == "refund.failed"


async def test_refund_event_for_an_unknown_refund_is_ignored(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for obj in (refund_object("re_nobody", "succeeded"), {"id": "ch_1", "object": "charge"}):
        reply = await deliver(client, event_body("refund.updated", obj))
        assert reply.json()["outcome"] == "ignored"
    assert [row["status"] for row in await stored(engine)] == ["ignored"] * 2


def _nul_event(payment: Payment, where: str) -> bytes:
    obj = intent_object(payment.provider_payment_id, "succeeded", payment_id=payment.id)
    event = json.loads(event_body("payment_intent.succeeded", obj))
    if where == "event id":
        event["id"] = "evt_\x00nul"
    elif where == "type":
        event["type"] = "payment_intent.succeeded\x00"
    else:
        event["data"]["object"]["id"] = "pi_\x00nul"
        event["data"]["object"]["metadata"] = {}
    return json.dumps(event).encode()


def _string_amount_event(payment: Payment) -> bytes:
    obj = intent_object(payment.provider_payment_id, "succeeded", payment_id=payment.id)
    obj["amount_received"] = "one thousand"
    return event_body("payment_intent.succeeded", obj)


def _nested_event(_payment: Payment) -> bytes:
    depth = 50_000
    return b'{"id": "evt_deep", "type": "x", "data": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (partial(_nul_event, where="event id"), "event id"),
        (partial(_nul_event, where="type"), "event type"),
        (partial(_nul_event, where="object id"), "NUL"),
        (_string_amount_event, "ValueError"),
        (_nested_event, "nests deeper"),
    ],
    ids=["nul-in-event-id", "nul-in-type", "nul-in-object-id", "string-amount", "deep-nesting"],
)
async def test_a_signed_event_that_can_never_be_applied_is_kept_and_acknowledged(
    client: httpx.AsyncClient,
    stripe_deps: Dependencies,
    engine: AsyncEngine,
    make: Any,
    reason: str,
) -> None:
    payment = await seed(stripe_deps, PaymentState.PROCESSING)
    body: bytes = make(payment)
    reply = await deliver(client, body)
    # 2xx: Stripe stops retrying what would fail the same way for three days.
    assert reply.status_code == 200, reply.text
    assert reply.json()["outcome"] == "rejected"
    [row] = await stored(engine)
    assert row["status"] == "rejected"
    assert reason in row["error"]
    assert row["payload"] == body.decode()
    assert (await load(stripe_deps, payment.id)).state is PaymentState.PROCESSING
    # A redelivery finds it kept: nothing more is stored.
    again = await deliver(client, body)
    assert again.status_code == 200
    assert len(await stored(engine)) == 1
    [row] = await stored(engine)
    if row["event_id"].startswith("unparsed_"):
        # Its own id could not be kept: another such body is kept apart, under its digest.
        other = body.replace(b'"', b' "', 1)
        assert (await deliver(client, other)).json()["outcome"] == "rejected"
        assert len({row["event_id"] for row in await stored(engine)}) == 2


async def test_a_capture_made_in_stripes_dashboard_is_applied_not_stale(
    client: httpx.AsyncClient, stripe_deps: Dependencies, engine: AsyncEngine, truth: TruthProvider
) -> None:
    payment = await seed(stripe_deps, PaymentState.REQUIRES_CAPTURE, capture=CaptureMethod.MANUAL)
    obj = intent_object(payment.provider_payment_id, "succeeded", payment_id=payment.id)
    obj["amount_received"] = 600  # captured in part, in the dashboard
    reply = await deliver(client, event_body("payment_intent.succeeded", obj))
    assert reply.status_code == 200
    assert reply.json()["outcome"] == "applied"
    captured = await load(stripe_deps, payment.id)
    assert captured.state is PaymentState.SUCCEEDED
    assert captured.amount_captured == 600
    assert (await outbox_types(engine, payment.id))[-2:] == [
        "payment.captured",
        "payment.succeeded",
    ]
    assert truth.retrieved == []


def dispute_body(payment: Payment, status: str, dispute_id: str = "dp_test_1") -> bytes:
    dispute = {
        "id": dispute_id,
        "object": "dispute",
        "amount": 1000,
        "currency": "usd",
        "status": status,
        "charge": "ch_test_1",
        "payment_intent": payment.provider_payment_id,
        "reason": "fraudulent",
    }
    return event_body("charge.dispute.closed", dispute)


async def test_a_lost_dispute_gives_its_amount_back_once(
    client: httpx.AsyncClient, stripe_deps: Dependencies, engine: AsyncEngine
) -> None:
    payment = await seed(stripe_deps, PaymentState.SUCCEEDED)
    won = await seed(stripe_deps, PaymentState.SUCCEEDED)
    async with engine.begin() as connection:
        await connection.execute(sa.text("UPDATE payments SET amount_captured = amount"))
    assert (await deliver(client, dispute_body(won, "won", "dp_won"))).json()["outcome"] == (
        "ignored"
    )
    assert (await deliver(client, dispute_body(payment, "lost"))).json()["outcome"] == "applied"
    assert (await deliver(client, dispute_body(payment, "lost"))).json()["outcome"] == "stale"
    lost = await load(stripe_deps, payment.id)
    assert lost.state is PaymentState.REFUNDED
    assert lost.amount_refunded == 1000
    assert (await outbox_types(engine, payment.id))[-1] == "refund.issued"
    async with engine.connect() as connection:
        reasons = (
            await connection.execute(
                sa.text("SELECT reason, amount, provider_refund_id FROM refunds")
            )
        ).all()
    assert [tuple(row) for row in reasons] == [("dispute lost", 1000, "dp_test_1")]
    assert (await load(stripe_deps, won.id)).amount_refunded == 0
