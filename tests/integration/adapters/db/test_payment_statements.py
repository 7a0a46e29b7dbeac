"""The payment pipeline's one-statement writes write what the unit of work would, or nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial

import asyncpg
import pytest
import sqlalchemy as sa
from payments.v1.events_pb2 import EventEnvelope
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.codec import payment_event_envelopes
from server.adapters.db.direct_pool import DirectPool
from server.adapters.db.engine import create_engine
from server.adapters.db.payment_statements import PgPaymentStatements
from server.adapters.db.tables import audit_events, idempotency_keys, outbox, payments, receipts
from server.adapters.db.unit_of_work import SqlUnitOfWork
from server.domain.errors import DatabaseUnavailable
from server.domain.money import Money
from server.domain.payment import CaptureMethod, Failure, Payment, new_payment
from server.domain.payment_states import PaymentOp
from server.domain.principal import Principal
from server.service.audit.context import AuditCall, begin_call, end_call
from server.service.payments.pages import PaymentQuery
from server.service.payments.queries import list_payments
from server.service.unit_of_work import Completion, KeyRecord, LiveOrderConflict, ValueRefused
from tests.support.databases import TABLES

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    async with engine.begin() as connection:
        await connection.execute(sa.text(f"TRUNCATE {', '.join(TABLES)}"))
    yield engine
    await engine.dispose()


@pytest.fixture
def statements(engine: AsyncEngine) -> PgPaymentStatements:
    return PgPaymentStatements(DirectPool(engine))  # closed with the engine


def payment(n: int, *, order: str = "") -> Payment:
    made = new_payment(
        payment_id=f"pay_01JSTMT{n:019d}",
        order_id=order or f"order-{n}",
        user_id="user-1",
        amount=Money("EUR", 1250),
        provider="mock",
        capture_method=CaptureMethod.AUTOMATIC,
        payment_method_id="pm_card_visa",
        description="two tickets",
        metadata={"cart": "c-1", "nested": "ü"},
        now=NOW,
    )
    made.apply(PaymentOp.CONFIRM, NOW)
    return made


def key(n: int, resource_id: str) -> KeyRecord:
    return KeyRecord(
        caller="svc",
        request_id=f"req-{n}",
        method="CreatePayment",
        fingerprint="f" * 64,
        resource_id=resource_id,
        response=None,
        locked_until=NOW + timedelta(seconds=30),
    )


async def rows(engine: AsyncEngine, table: sa.Table) -> list[sa.Row[object]]:
    async with engine.connect() as connection:
        return list((await connection.execute(table.select())).all())


async def start(statements: PgPaymentStatements, n: int, made: Payment) -> bool:
    return await statements.start(key(n, made.id), NOW, NOW + timedelta(hours=24), made)


async def test_start_claims_the_key_and_writes_the_payment_with_its_events(
    statements: PgPaymentStatements, engine: AsyncEngine
) -> None:
    made = payment(1)
    expected = [(event.type, event.sequence) for event in made.pending_events]
    token = begin_call(AuditCall(channel="grpc", action="CreatePayment", request_id="req-1"))
    try:
        assert await start(statements, 1, made)
    finally:
        end_call(token)

    assert made.pending_events == []  # taken: they are in the outbox now
    assert await statements.get(made.id) == made
    [claimed] = await rows(engine, idempotency_keys)
    assert (claimed.caller, claimed.request_id, claimed.resource_id) == ("svc", "req-1", made.id)
    assert claimed.response is None
    events = sorted((row.event_type, row.sequence) for row in await rows(engine, outbox))
    assert events == sorted(expected)
    [audited] = await rows(engine, audit_events)
    assert (audited.resource_id, audited.reason, audited.outcome) == (made.id, "PROCESSING", "OK")


async def test_the_followers_arrive_exactly_as_built(
    statements: PgPaymentStatements, engine: AsyncEngine
) -> None:
    made = payment(1)
    assert await start(statements, 1, made)
    odd = NOW + timedelta(seconds=1, microseconds=123457)  # microseconds survive the trip
    made.succeed(odd, 1250)
    envelopes = {
        event.type: payment_event_envelopes([event], made)[0].SerializeToString(deterministic=True)
        for event in made.pending_events
    }
    expected = made.event_sequence - len(made.pending_events)
    principal = Principal(subject='zoë 🙂 "quoted"', issuer="https://iss", roles=frozenset())
    call = AuditCall(
        channel="grpc", action="CreatePayment", request_id="req-1", principal=principal
    )
    token = begin_call(call)
    try:
        assert await statements.save(made, expected)
    finally:
        end_call(token)

    written = {row.event_type: row for row in await rows(engine, outbox)}
    for event_type, payload in envelopes.items():
        stored = EventEnvelope.FromString(bytes(written[event_type].payload))
        built = EventEnvelope.FromString(payload)
        assert stored.event_id == written[event_type].event_id
        stored.ClearField("event_id")  # a fresh id each build
        built.ClearField("event_id")
        assert stored == built
        assert written[event_type].occurred_at == odd
    [receipt] = await rows(engine, receipts)
    assert (receipt.id, receipt.kind, receipt.currency_code, receipt.amount) == (
        made.id,
        "PAYMENT",
        "EUR",
        1250,
    )
    assert (receipt.issue_time, receipt.description) == (odd, "two tickets")
    [audited] = [row for row in await rows(engine, audit_events) if row.reason == "SUCCEEDED"]
    assert (audited.subject, audited.issuer, audited.details) == (
        principal.subject,
        "https://iss",
        {},
    )


async def test_a_taken_key_writes_nothing(
    statements: PgPaymentStatements, engine: AsyncEngine
) -> None:
    assert await start(statements, 1, payment(1))
    assert not await start(statements, 1, payment(2))
    assert [row.id for row in await rows(engine, payments)] == [payment(1).id]
    assert len(await rows(engine, outbox)) == len(payment(1).pending_events)


async def test_a_live_order_refuses_the_whole_statement(
    statements: PgPaymentStatements, engine: AsyncEngine
) -> None:
    assert await start(statements, 1, payment(1, order="order-x"))
    with pytest.raises(LiveOrderConflict):
        await start(statements, 2, payment(2, order="order-x"))
    assert len(await rows(engine, idempotency_keys)) == 1  # the second key was not kept


async def test_save_moves_the_payment_only_from_the_expected_sequence(
    statements: PgPaymentStatements, engine: AsyncEngine
) -> None:
    made = payment(1)
    assert await start(statements, 1, made)
    stale = await statements.get(made.id)
    assert stale is not None
    made.succeed(NOW + timedelta(seconds=1), 1250)
    expected = made.event_sequence - len(made.pending_events)
    response = b"the reply, as first serialized"
    assert await statements.save(made, expected, Completion("svc", "req-1", response))

    assert await statements.get(made.id) == made
    [claimed] = await rows(engine, idempotency_keys)
    assert (bytes(claimed.response), claimed.locked_until) == (response, None)
    stale.fail(NOW + timedelta(seconds=2), Failure("card_declined", "declined"))
    before = len(await rows(engine, outbox))
    assert not await statements.save(stale, stale.event_sequence - len(stale.pending_events))
    assert len(await rows(engine, outbox)) == before
    assert await statements.get(made.id) == made


async def test_metadata_reads_back_as_its_own_dict_empty_or_not(
    statements: PgPaymentStatements,
) -> None:
    bare, full = payment(1), payment(2)
    bare.metadata = {}
    for n, made in ((1, bare), (2, full)):
        assert await start(statements, n, made)
    first, second = await statements.get(bare.id), await statements.get(bare.id)
    assert first is not None
    assert second is not None
    assert first.metadata == {}
    first.metadata["changed"] = "yes"  # no read shares its dict with another
    assert second.metadata == {}
    assert (await statements.get(full.id)) == full


async def test_a_missing_payment_reads_as_none(statements: PgPaymentStatements) -> None:
    assert await statements.get("pay_01JNOSUCHPAYMENT00000000000") is None


async def test_a_refused_value_is_a_bug_not_an_outage(statements: PgPaymentStatements) -> None:
    made = payment(1)
    made.amount_captured = made.amount.minor_units + 1  # the table's check refuses it
    with pytest.raises(asyncpg.CheckViolationError):
        await start(statements, 1, made)


async def test_a_database_that_is_away_is_unavailable() -> None:
    nowhere = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    try:
        with pytest.raises(DatabaseUnavailable):
            await PgPaymentStatements(DirectPool(nowhere)).get("pay_01JNOSUCHPAYMENT00000000000")
    finally:
        await nowhere.dispose()


async def test_a_value_too_long_is_refused_as_in_a_unit_of_work(
    statements: PgPaymentStatements,
) -> None:
    made = payment(1)
    made.failure_code = "x" * 65  # the column holds 64
    with pytest.raises(ValueRefused):
        await start(statements, 1, made)


async def test_a_call_cancelled_mid_statement_leaves_no_broken_connection(
    engine: AsyncEngine,
) -> None:
    pool = DirectPool(engine, size=1)  # one connection: the next call gets the same one
    statements = PgPaymentStatements(pool)
    await start(statements, 1, payment(1))

    async def hangs() -> None:
        async with pool.connection() as connection:
            await connection.fetchval("SELECT pg_sleep(30)")

    hanging = asyncio.create_task(hangs())
    await until_running(engine, "SELECT pg_sleep(30)")
    hanging.cancel()  # as when the caller hangs up
    with pytest.raises(asyncio.CancelledError):
        await hanging

    assert await statements.get(payment(1).id) == await statements.get(payment(1).id)
    assert await start(statements, 2, payment(2))


async def until_running(engine: AsyncEngine, query: str, seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        async with engine.connect() as connection:
            running = await connection.scalar(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE query = :query"),
                {"query": query},
            )
        if running:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{query!r} never ran")


async def test_a_users_pages_read_as_the_unit_of_work_reads_them(
    statements: PgPaymentStatements, engine: AsyncEngine
) -> None:
    for n in range(7):
        made = payment(n)
        made.create_time = made.update_time = NOW - timedelta(minutes=n % 3)  # ties too
        if n == 3:
            made.user_id = "user-2"
        assert await start(statements, n, made)
    units = partial(SqlUnitOfWork, engine)
    for owner in ("user-1", "user-2", "user-3"):
        direct, by_unit, token_a, token_b = [], [], "", ""
        while True:
            page, token_a = await list_payments(
                units, PaymentQuery(user_id=owner, page_size=2), token_a, None, statements
            )
            direct += page
            if not token_a:
                break
        while True:
            page, token_b = await list_payments(
                units, PaymentQuery(user_id=owner, page_size=2), token_b
            )
            by_unit += page
            if not token_b:
                break
        assert [p.id for p in direct] == [p.id for p in by_unit]
        assert direct == by_unit
    assert direct == []  # user-3 has none


async def test_other_queries_are_left_to_the_unit_of_work(
    statements: PgPaymentStatements,
) -> None:
    assert await statements.page(PaymentQuery(user_id="user-1", descending=False)) is None
    assert await statements.page(PaymentQuery(user_id="user-1", order_id="o")) is None
    assert await statements.page(PaymentQuery()) is None
