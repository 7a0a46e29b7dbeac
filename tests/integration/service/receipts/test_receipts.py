"""Receipts on real databases: recorded with the money's movement, numbered without gaps
per year (also under concurrency and after a rolled-back numbering pass), read back as
a PDF, announced by receipt.issued."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from babel import Locale
from payments.v1 import events_pb2, receipts_pb2
from pypdf import PdfReader
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.clock import ManualClock
from server.adapters.db.receipt_repository import SqlReceiptRepository
from server.adapters.db.tables import outbox, payment_methods, payments, receipt_counters, receipts
from server.adapters.receipt_pdf import render_receipt_pdf
from server.domain.errors import DatabaseUnavailable, InvalidArgument, NotFound
from server.domain.money import Money
from server.domain.receipt import Card, Receipt, ReceiptKind, parse_receipt_number
from server.service.dependencies import Dependencies
from server.service.payment_methods.commands import attach_payment_method
from server.service.payments.commands import create_payment
from server.service.payments.requests import AmountInput, CreatePayment
from server.service.receipts.numbering import number_all_receipts, number_receipts
from server.service.receipts.queries import get_receipt
from server.service.refunds.commands import create_refund
from tests.integration.service.payment_methods.test_commands import BILLING, attach
from tests.integration.service.refunds.test_commands import CALLER, paid, refund
from tests.support.held_calls import WITHIN_S
from tests.support.polling import until

MERCHANT = "Acme Books GmbH"


@pytest.fixture
def shop(deps: Dependencies) -> Dependencies:
    return replace(deps, merchant_name=MERCHANT)


async def _numbers(engine: AsyncEngine) -> list[str | None]:
    async with engine.connect() as connection:
        rows = await connection.execute(sa.select(receipts.c.number).order_by(receipts.c.number))
        return [row.number for row in rows]


async def _counters(engine: AsyncEngine) -> dict[int, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(sa.select(receipt_counters))
        return {row.year: row.last_sequence for row in rows}


async def _issued_events(engine: AsyncEngine) -> list[events_pb2.EventEnvelope]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(outbox.c.payload)
            .where(outbox.c.event_type == "receipt.issued")
            .order_by(outbox.c.id)
        )
        return [events_pb2.EventEnvelope.FromString(row.payload) for row in rows]


async def test_a_payment_and_its_refund_get_numbered_receipts(
    shop: Dependencies, engine: AsyncEngine
) -> None:
    method = (await attach_payment_method(shop, CALLER, attach())).resource
    outcome = await create_payment(
        shop,
        CALLER,
        CreatePayment(
            request_id="pay-receipt",
            order_id="order-receipt",
            user_id="user-1",
            amount=AmountInput("EUR", 123450),
            payment_method_id=method.id,
            confirm=True,
            description="The Art of Computer Programming, vol. 1-4",
        ),
    )
    payment = outcome.resource
    # Written with the payment, numbered afterwards.
    assert await _numbers(engine) == [None]
    assert await number_receipts(shop) == 1
    year = payment.update_time.year
    assert await _numbers(engine) == [f"R-{year}-000001"]

    receipt = await get_receipt(shop, payment.id)
    assert receipt.number == f"R-{year}-000001"
    assert receipt.kind is ReceiptKind.PAYMENT
    assert receipt.merchant == MERCHANT
    assert receipt.card == Card("visa", "4242")
    assert receipt.amount.minor_units == 123450
    assert receipt.order_id == "order-receipt"
    assert receipt.description == "The Art of Computer Programming, vol. 1-4"

    # A refund's receipt is numbered on demand when read before the job ran.
    refunded = (await create_refund(shop, CALLER, refund(payment.id, "r-1", 2050, "EUR"))).resource
    refund_receipt = await get_receipt(shop, refunded.id)
    assert refund_receipt.number == f"R-{year}-000002"
    assert refund_receipt.kind is ReceiptKind.REFUND
    assert refund_receipt.amount.minor_units == 2050
    assert refund_receipt.payment_id == payment.id

    issued = await _issued_events(engine)
    assert [e.receipt_issued.receipt.number for e in issued] == [
        f"R-{year}-000001",
        f"R-{year}-000002",
    ]
    first = issued[0]
    assert (first.aggregate_type, first.aggregate_id, first.sequence) == (
        "receipt",
        f"R-{year}-000001",
        1,
    )
    assert first.receipt_issued.customer_email == "ada@example.com"
    assert first.receipt_issued.receipt.user_id == "user-1"
    assert first.receipt_issued.receipt.formatted_amount == "€1,234.50"
    assert first.receipt_issued.receipt.kind == receipts_pb2.RECEIPT_KIND_PAYMENT


async def test_only_the_owner_reads_a_receipt_and_failed_payments_have_none(
    shop: Dependencies,
) -> None:
    payment_id = await paid(shop)
    assert (await get_receipt(shop, payment_id, owner="user-1")).number
    with pytest.raises(NotFound) as other:
        await get_receipt(shop, payment_id, owner="user-2")
    assert other.value.reason == "RECEIPT_NOT_FOUND"
    with pytest.raises(NotFound):
        await get_receipt(shop, "pay_01JZZZZZZZZZZZZZZZZZZZZZZZ")
    with pytest.raises(InvalidArgument):
        await get_receipt(shop, "R-2026-000001")


async def test_a_rolled_back_numbering_pass_leaves_no_gap(
    shop: Dependencies, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        await paid(shop)
    original = SqlReceiptRepository.number

    async def dies_after_the_first(
        self: SqlReceiptRepository, numbered: Sequence[tuple[Receipt, int, int]], now: datetime
    ) -> None:
        await original(self, numbered[:1], now)
        raise ConnectionError("the database went away mid-pass")

    monkeypatch.setattr(SqlReceiptRepository, "number", dies_after_the_first)
    # The unit of work reports a lost connection as the outage it is.
    with pytest.raises(DatabaseUnavailable):
        await number_receipts(shop)
    assert await _numbers(engine) == [None, None, None]
    assert await _counters(engine) == {}
    monkeypatch.setattr(SqlReceiptRepository, "number", original)
    assert await number_all_receipts(shop) == 3
    sequences = sorted(parse_receipt_number(n or "")[1] for n in await _numbers(engine))  # type: ignore[index]
    assert sequences == [1, 2, 3]


async def test_each_year_counts_from_one(shop: Dependencies, engine: AsyncEngine) -> None:
    clock = ManualClock(datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC))
    dated = replace(shop, clock=clock)
    await paid(dated)
    clock.advance(timedelta(minutes=1))
    await paid(dated)
    await paid(dated)
    await number_all_receipts(dated)
    assert await _numbers(engine) == ["R-2026-000001", "R-2027-000001", "R-2027-000002"]


async def test_numbers_taken_by_a_pass_that_fails_are_given_back(
    shop: Dependencies, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await paid(shop)
    assert await number_receipts(shop) == 1
    for _ in range(2):
        await paid(shop)

    async def dies(
        self: SqlReceiptRepository, numbered: Sequence[tuple[Receipt, int, int]], now: datetime
    ) -> None:
        raise ConnectionError("the database went away after the sequences were taken")

    original = SqlReceiptRepository.number
    monkeypatch.setattr(SqlReceiptRepository, "number", dies)
    with pytest.raises(DatabaseUnavailable):
        await number_receipts(shop)
    year = datetime.now(UTC).year
    assert await _counters(engine) == {year: 1}
    monkeypatch.setattr(SqlReceiptRepository, "number", original)
    assert await number_receipts(shop) == 2
    assert await _numbers(engine) == [f"R-{year}-{n:06d}" for n in (1, 2, 3)]
    assert await _counters(engine) == {year: 3}


async def test_one_pass_over_two_years_continues_each_years_count(
    shop: Dependencies, engine: AsyncEngine
) -> None:
    clock = ManualClock(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    dated = replace(shop, clock=clock)
    await paid(dated)
    assert await number_receipts(dated) == 1
    clock.advance(timedelta(seconds=10))
    await paid(dated)
    clock.advance(timedelta(minutes=1))
    await paid(dated)
    await paid(dated)
    # One pass: the 2026 counter goes on, the 2027 one is created.
    assert await number_receipts(dated) == 3
    assert await _numbers(engine) == [
        "R-2026-000001",
        "R-2026-000002",
        "R-2027-000001",
        "R-2027-000002",
    ]
    assert await _counters(engine) == {2026: 2, 2027: 2}
    issued = await _issued_events(engine)
    assert [e.aggregate_id for e in issued] == await _numbers(engine)


async def test_one_pass_shows_each_saved_cards_brand_and_email(
    shop: Dependencies, engine: AsyncEngine
) -> None:
    visa = (await attach_payment_method(shop, CALLER, attach("a-1"))).resource
    grace = replace(BILLING, email="grace@example.com")
    mastercard = (
        await attach_payment_method(
            shop, CALLER, attach("a-2", "pm_card_mastercard", billing=grace)
        )
    ).resource
    paid_with = [
        await paid(shop, visa.id),
        await paid(shop),  # a provider's payment method id: no saved card
        await paid(shop, mastercard.id),
        await paid(shop, visa.id),
    ]
    assert await number_receipts(shop) == 4

    shown = [await get_receipt(shop, payment_id) for payment_id in paid_with]
    assert [(r.card, r.customer_email) for r in shown] == [
        (Card("visa", "4242"), "ada@example.com"),
        (None, ""),
        (Card("mastercard", "4444"), "grace@example.com"),
        (Card("visa", "4242"), "ada@example.com"),
    ]
    issued = {e.receipt_issued.receipt.id: e.receipt_issued for e in await _issued_events(engine)}
    assert [
        (
            issued[r.id].receipt.card_brand,
            issued[r.id].receipt.card_last4,
            issued[r.id].customer_email,
            issued[r.id].receipt.number,
            issued[r.id].receipt.merchant,
        )
        for r in shown
    ] == [
        (
            r.card.brand if r.card else "",
            r.card.last4 if r.card else "",
            r.customer_email,
            r.number,
            MERCHANT,
        )
        for r in shown
    ]


async def test_a_pass_is_the_same_few_statements_whatever_its_size(
    shop: Dependencies, engine: AsyncEngine
) -> None:
    """Not one statement per receipt: numbering 1 receipt or 6 costs the same."""
    method = (await attach_payment_method(shop, CALLER, attach())).resource
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    async def statements_of_a_pass() -> int:
        statements.clear()
        sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            await number_receipts(shop)
        finally:
            sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
        return len(statements)

    await paid(shop, method.id)
    one = await statements_of_a_pass()
    for n in range(6):
        await paid(shop, method.id if n % 2 else "pm_card_visa")
    six = await statements_of_a_pass()
    assert await _numbers(engine) == [f"R-{datetime.now(UTC).year}-{n:06d}" for n in range(1, 8)]
    assert one == six
    # PostgreSQL: take (lock, join, count) and number (update, outbox), BEGIN/COMMIT aside.
    assert six == (2 if engine.dialect.name == "postgresql" else 4)


class _HeldPass:
    """SqlReceiptRepository.number held until released: a pass that has taken its
    receipts and sequences, its transaction open."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()
        original = SqlReceiptRepository.number

        async def held(
            repository: SqlReceiptRepository,
            numbered: Sequence[tuple[Receipt, int, int]],
            now: datetime,
        ) -> None:
            self.reached.set()
            await self.release.wait()
            await original(repository, numbered, now)

        monkeypatch.setattr(SqlReceiptRepository, "number", held)


async def _waiting_for_a_lock(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        waiting = await connection.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return bool(waiting.scalar_one())


async def _unlocked_receipts(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        free = sa.select(receipts.c.id).with_for_update(skip_locked=True)
        return len((await connection.execute(free)).all())


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_passes_at_once_take_different_receipts_and_turns_on_the_counter(
    shop: Dependencies, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(5):
        await paid(shop)
    held = _HeldPass(monkeypatch)
    async with asyncio.timeout(WITHIN_S):
        first = asyncio.create_task(number_receipts(shop, batch=2))
        await held.reached.wait()
        # The first pass holds its two receipts and the year's counter: the second takes
        # the other three and waits for the counter.
        second = asyncio.create_task(number_receipts(shop, batch=5))
        try:
            await until(lambda: _waiting_for_a_lock(engine), within=WITHIN_S)
            assert await _unlocked_receipts(engine) == 0
        finally:
            held.release.set()
        assert (await first, await second) == (2, 3)
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(receipts.c.sequence).order_by(receipts.c.issue_time, receipts.c.id)
        )
        assert [row.sequence for row in rows] == [1, 2, 3, 4, 5]
    assert len(await _issued_events(engine)) == 5


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_pass_locks_its_receipts_but_not_their_payments_or_saved_cards(
    shop: Dependencies, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    method = (await attach_payment_method(shop, CALLER, attach())).resource
    payment_id = await paid(shop, method.id)
    held = _HeldPass(monkeypatch)
    async with asyncio.timeout(WITHIN_S):
        numbering = asyncio.create_task(number_receipts(shop))
        await held.reached.wait()
        try:
            async with engine.connect() as other:
                for table, row_id in ((payments, payment_id), (payment_methods, method.id)):
                    locked = sa.select(table.c.id).where(table.c.id == row_id)
                    await other.execute(locked.with_for_update(nowait=True))
                await other.rollback()
                receipt = sa.select(receipts.c.id).where(receipts.c.id == payment_id)
                with pytest.raises(sa.exc.DBAPIError, match="could not obtain lock"):
                    await other.execute(receipt.with_for_update(nowait=True))
        finally:
            held.release.set()
        assert await numbering == 1


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_32_concurrent_payments_get_gapless_numbers(
    shop: Dependencies, engine: AsyncEngine
) -> None:
    """Payments and numbering passes race; every number is taken once, none skipped."""
    start = asyncio.Event()

    async def pay(n: int) -> None:
        await start.wait()
        await create_payment(
            shop,
            CALLER,
            CreatePayment(
                request_id=f"pay-{n}-{uuid.uuid4().hex[:6]}",
                order_id=f"order-{n}",
                user_id="user-1",
                amount=AmountInput("USD", 100 + n),
                payment_method_id="pm_card_visa",
                confirm=True,
            ),
        )

    async def numbering_passes() -> None:
        await start.wait()
        for _ in range(20):
            await number_receipts(shop, batch=5)
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(pay(n)) for n in range(32)]
    tasks += [asyncio.create_task(numbering_passes()) for _ in range(3)]
    start.set()
    await asyncio.gather(*tasks)
    await number_all_receipts(shop)

    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                sa.select(receipts.c.year, receipts.c.sequence, receipts.c.number)
            )
        ).all()
    assert len(rows) == 32
    by_year: dict[int, list[int]] = {}
    for row in rows:
        assert parse_receipt_number(row.number) == (row.year, row.sequence)
        by_year.setdefault(row.year, []).append(row.sequence)
    for sequences in by_year.values():
        assert sorted(sequences) == list(range(1, len(sequences) + 1))
    assert len(await _issued_events(engine)) == 32


def test_the_pdf_reads_back_with_the_amount_in_the_callers_locale() -> None:
    receipt = Receipt(
        id="pay_01JABCDEFGHJKMNPQRSTVWXYZ0",
        kind=ReceiptKind.PAYMENT,
        payment_id="pay_01JABCDEFGHJKMNPQRSTVWXYZ0",
        user_id="user-1",
        order_id="order-42",
        description="Kaffeemühle",
        amount=Money("EUR", 123450),
        issue_time=datetime(2026, 3, 14, 15, 9, tzinfo=UTC),
        number="R-2026-000123",
        merchant=MERCHANT,
        card=Card("visa", "4242"),
    )
    text = _pdf_text(render_receipt_pdf(receipt, Locale.parse("de_DE")))
    assert "R-2026-000123" in text
    assert MERCHANT in text
    assert "Kaffeemühle" in text
    assert "VISA **** 4242" in text
    assert "1.234,50 €" in text
    assert "order-42" in text
    english = _pdf_text(render_receipt_pdf(receipt, Locale.parse("en_US")))
    assert "€1,234.50" in english


def _pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    # CLDR separates amount and symbol with a no-break space.
    return "\n".join(page.extract_text() for page in reader.pages).replace("\xa0", " ")
