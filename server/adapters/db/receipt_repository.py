"""Receipts in SQL: written with the money's movement, numbered afterwards."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.db.outbox_rows import append_rows
from server.adapters.db.tables import payment_methods as methods
from server.adapters.db.tables import payments, receipt_counters, receipts
from server.adapters.receipt_codec import receipt_issued_envelope
from server.domain.events import PAYMENT_SUCCEEDED, REFUND_ISSUED, PaymentEvent
from server.domain.money import Money
from server.domain.payment import Payment
from server.domain.receipt import Card, Receipt, ReceiptKind
from server.observability.tracing import current_trace_headers

_SELECT = receipts.select().where(receipts.c.id == sa.bindparam("b_id"))
# The oldest receipts waiting for a number, with what they will show of the saved card
# (`pmt_...`) their payment used, if it used one: a single query for the whole batch.
_WAITING = (
    sa.select(
        receipts,
        methods.c.brand.label("method_brand"),
        methods.c.last4.label("method_last4"),
        methods.c.billing_details.label("method_billing"),
    )
    .join_from(receipts, payments, payments.c.id == receipts.c.payment_id)
    .outerjoin(methods, methods.c.id == payments.c.payment_method_id)
    .where(receipts.c.number.is_(None))
    .order_by(receipts.c.issue_time, receipts.c.id)
    .limit(sa.bindparam("b_limit"))
    # Two numbering passes never take the same receipt; neither waits for the other.
    # Only the receipts are locked: the payments and saved cards stay free for writers.
    .with_for_update(of=receipts, skip_locked=True)
)
_NUMBER = (
    receipts.update()
    .where(receipts.c.id == sa.bindparam("b_id"), receipts.c.number.is_(None))
    .values(
        number=sa.bindparam("number"),
        year=sa.bindparam("year"),
        sequence=sa.bindparam("sequence"),
        merchant=sa.bindparam("merchant"),
        card_brand=sa.bindparam("card_brand"),
        card_last4=sa.bindparam("card_last4"),
        customer_email=sa.bindparam("customer_email"),
        number_time=sa.bindparam("number_time", type_=receipts.c.number_time.type),
    )
)


def _taken_on_postgres() -> sa.Select[Any]:
    """_WAITING, and each year's counter advanced by its count there: one statement.

    The counters are written in year order, so that passes lock them in one order.
    """
    waiting = _WAITING.cte("waiting")
    # The UTC year, as Receipt.year has it; a literal, so GROUP BY matches the select.
    year = sa.cast(
        sa.extract("year", sa.func.timezone(sa.literal_column("'UTC'"), waiting.c.issue_time)),
        sa.Integer,
    )
    counts = sa.select(year, sa.func.count()).group_by(year).order_by(year)
    insert = postgresql.insert(receipt_counters).from_select(["year", "last_sequence"], counts)
    taken = (
        insert.on_conflict_do_update(
            index_elements=[receipt_counters.c.year],
            set_={
                "last_sequence": receipt_counters.c.last_sequence + insert.excluded.last_sequence
            },
        )
        .returning(receipt_counters.c.year, receipt_counters.c.last_sequence)
        .cte("taken")
    )
    return (
        sa.select(
            waiting,
            taken.c.year.label("taken_year"),
            taken.c.last_sequence.label("taken_last"),
        )
        .join_from(waiting, taken, taken.c.year == year)
        .order_by(waiting.c.issue_time, waiting.c.id)
    )


_TAKE_ON_POSTGRES = _taken_on_postgres()
# The receipts' numbers and their receipt.issued rows, from parallel arrays (one element
# per receipt): one statement whatever the batch size; the count of receipts numbered.
_NUMBER_ON_POSTGRES = sa.text(
    """
WITH numbered AS (
    UPDATE receipts
    SET number = v.number, year = v.year, sequence = v.sequence, merchant = v.merchant,
        card_brand = v.card_brand, card_last4 = v.card_last4,
        customer_email = v.customer_email, number_time = CAST(:number_time AS timestamptz)
    FROM unnest(CAST(:ids AS text[]), CAST(:numbers AS text[]), CAST(:years AS int[]),
                CAST(:sequences AS bigint[]), CAST(:merchants AS text[]),
                CAST(:card_brands AS text[]), CAST(:card_last4s AS text[]),
                CAST(:customer_emails AS text[]))
         AS v(id, number, year, sequence, merchant, card_brand, card_last4, customer_email)
    WHERE receipts.id = v.id AND receipts.number IS NULL
    RETURNING receipts.id
),
issued AS (
    INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, sequence, payload,
                        occurred_at, traceparent, tracestate)
    SELECT e.event_id, e.event_type, e.aggregate_type, e.aggregate_id, e.sequence, e.payload,
           CAST(:number_time AS timestamptz), CAST(:traceparent AS text),
           CAST(:tracestate AS text)
    FROM unnest(CAST(:event_ids AS text[]), CAST(:event_types AS text[]),
                CAST(:aggregate_types AS text[]), CAST(:aggregate_ids AS text[]),
                CAST(:event_sequences AS bigint[]), CAST(:payloads AS bytea[]))
         WITH ORDINALITY AS e(event_id, event_type, aggregate_type, aggregate_id, sequence,
                              payload, n)
    -- In the batch's order, as the outbox relays them.
    ORDER BY e.n
)
SELECT count(*) FROM numbered"""
)


def _dialect(connection: AsyncConnection) -> Any:
    """The dialect module whose insert() has ON CONFLICT."""
    return postgresql if connection.dialect.name == "postgresql" else sqlite


def _insert_ignoring_duplicates(connection: AsyncConnection, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect at hand."""
    return _dialect(connection).insert(table).on_conflict_do_nothing()


def receipt_rows(payment: Payment, events: Sequence[PaymentEvent]) -> list[dict[str, Any]]:
    rows = []
    for event in events:
        if event.type == PAYMENT_SUCCEEDED and payment.amount_captured > 0:
            rows.append(_row(payment.id, ReceiptKind.PAYMENT, payment, payment.captured, event))
        elif event.type == REFUND_ISSUED and event.refund is not None:
            refund = event.refund
            rows.append(_row(refund.id, ReceiptKind.REFUND, payment, refund.amount, event))
    return rows


def _row(
    receipt_id: str, kind: ReceiptKind, payment: Payment, amount: Money, event: PaymentEvent
) -> dict[str, Any]:
    return {
        "id": receipt_id,
        "kind": kind.value,
        "payment_id": payment.id,
        "user_id": payment.user_id,
        "order_id": payment.order_id,
        "description": payment.description,
        "currency_code": amount.currency_code,
        "amount": amount.minor_units,
        "issue_time": event.occurred_at,
    }


async def record_receipts(
    connection: AsyncConnection, payment: Payment, events: Sequence[PaymentEvent]
) -> None:
    """Called where a payment's events are written: a receipt for money that moved.

    An insert of new rows only, so the payment's transaction waits on nothing shared.
    """
    rows = receipt_rows(payment, events)
    if rows:
        await connection.execute(_insert_ignoring_duplicates(connection, receipts), rows)


def _from_row(row: sa.Row[Any]) -> Receipt:
    card = Card(row.card_brand, row.card_last4) if row.card_last4 else None
    return Receipt(
        id=row.id,
        kind=ReceiptKind(row.kind),
        payment_id=row.payment_id,
        user_id=row.user_id,
        order_id=row.order_id,
        description=row.description,
        amount=Money(row.currency_code, row.amount),
        issue_time=row.issue_time,
        number=row.number or "",
        merchant=row.merchant,
        card=card,
        customer_email=row.customer_email,
        number_time=row.number_time,
    )


class SqlReceiptRepository:
    """A numbering pass is a fixed number of statements whatever its size: on
    PostgreSQL two (data-modifying CTEs), on SQLite four."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"

    async def get(self, receipt_id: str) -> Receipt | None:
        row = (await self._connection.execute(_SELECT, {"b_id": receipt_id})).first()
        return _from_row(row) if row else None

    async def take(self, limit: int) -> tuple[list[Receipt], dict[int, int]]:
        """The oldest receipts without a number, locked for this transaction, with what
        they show of the saved card; and each of their years' counter advanced by their
        count, as {year: the last sequence taken}.

        The counter rows stay locked until this transaction ends: numbering passes take
        turns, and a rolled-back pass gives its sequences back.
        """
        if self._postgres:
            return await self._take_on_postgres(limit)
        return await self._take_portably(limit)

    async def _take_portably(self, limit: int) -> tuple[list[Receipt], dict[int, int]]:
        rows = await self._connection.execute(_WAITING, {"b_limit": limit})
        waiting = [_waiting_from(row) for row in rows]
        counts = sorted(Counter(receipt.year for receipt in waiting).items())
        if not counts:
            return waiting, {}
        insert = _dialect(self._connection).insert(receipt_counters)
        taken = (
            insert.values([{"year": year, "last_sequence": n} for year, n in counts])
            .on_conflict_do_update(
                index_elements=[receipt_counters.c.year],
                set_={
                    "last_sequence": receipt_counters.c.last_sequence
                    + insert.excluded.last_sequence
                },
            )
            .returning(receipt_counters.c.year, receipt_counters.c.last_sequence)
        )
        last = {year: sequence for year, sequence in await self._connection.execute(taken)}
        return waiting, last

    async def _take_on_postgres(self, limit: int) -> tuple[list[Receipt], dict[int, int]]:
        rows = await self._connection.execute(_TAKE_ON_POSTGRES, {"b_limit": limit})
        waiting, last = [], {}
        for row in rows:
            receipt = _waiting_from(row)
            if row.taken_year != receipt.year:
                raise RuntimeError(f"receipt {receipt.id} counted in {row.taken_year}")
            waiting.append(receipt)
            last[row.taken_year] = row.taken_last
        return waiting, last

    async def number(self, numbered: Sequence[tuple[Receipt, int, int]], now: datetime) -> None:
        """Store the numbers and what the receipts show, and announce them (receipt.issued)."""
        issued = _issued_rows([receipt for receipt, _, _ in numbered], now)
        if self._postgres:
            count = await self._number_on_postgres(numbered, now, issued)
        else:
            count = await self._number_portably(numbered, now, issued)
        if count != len(numbered):
            raise RuntimeError(f"{len(numbered) - count} receipts were numbered meanwhile")

    async def _number_on_postgres(
        self,
        numbered: Sequence[tuple[Receipt, int, int]],
        now: datetime,
        issued: Sequence[Mapping[str, Any]],
    ) -> int:
        cards = [receipt.card or Card("", "") for receipt, _, _ in numbered]
        result = await self._connection.execute(
            _NUMBER_ON_POSTGRES,
            {
                "ids": [receipt.id for receipt, _, _ in numbered],
                "numbers": [receipt.number for receipt, _, _ in numbered],
                "years": [year for _, year, _ in numbered],
                "sequences": [sequence for _, _, sequence in numbered],
                "merchants": [receipt.merchant for receipt, _, _ in numbered],
                "card_brands": [card.brand for card in cards],
                "card_last4s": [card.last4 for card in cards],
                "customer_emails": [receipt.customer_email for receipt, _, _ in numbered],
                "number_time": now,
                "event_ids": [row["event_id"] for row in issued],
                "event_types": [row["event_type"] for row in issued],
                "aggregate_types": [row["aggregate_type"] for row in issued],
                "aggregate_ids": [row["aggregate_id"] for row in issued],
                "event_sequences": [row["sequence"] for row in issued],
                "payloads": [row["payload"] for row in issued],
                # The same on every row: the numbering pass's own trace.
                "traceparent": issued[0]["traceparent"] if issued else None,
                "tracestate": issued[0]["tracestate"] if issued else None,
            },
        )
        count: int = result.scalar_one()
        return count

    async def _number_portably(
        self,
        numbered: Sequence[tuple[Receipt, int, int]],
        now: datetime,
        issued: Sequence[Mapping[str, Any]],
    ) -> int:
        cards = [receipt.card or Card("", "") for receipt, _, _ in numbered]
        result = await self._connection.execute(
            _NUMBER,
            [
                {
                    "b_id": receipt.id,
                    "number": receipt.number,
                    "year": year,
                    "sequence": sequence,
                    "merchant": receipt.merchant,
                    "card_brand": card.brand,
                    "card_last4": card.last4,
                    "customer_email": receipt.customer_email,
                    "number_time": now,
                }
                for (receipt, year, sequence), card in zip(numbered, cards, strict=True)
            ],
        )
        if issued:
            await append_rows(self._connection, issued)
        return result.rowcount


def _waiting_from(row: sa.Row[Any]) -> Receipt:
    """A waiting receipt with the saved card's brand, last four digits and billing email."""
    receipt = _from_row(row)
    if row.method_last4 is None:
        return receipt  # paid with a provider's payment method id: no saved card
    card = Card(row.method_brand, row.method_last4)
    email = str((row.method_billing or {}).get("email") or "")
    return replace(receipt, card=card, customer_email=email)


def _issued_rows(numbered: Sequence[Receipt], now: datetime) -> list[dict[str, Any]]:
    """The outbox rows of the receipts' receipt.issued events, in the same order."""
    trace = current_trace_headers()
    context = {"traceparent": trace.get("traceparent"), "tracestate": trace.get("tracestate")}
    rows = []
    for receipt in numbered:
        envelope = receipt_issued_envelope(receipt, now)
        rows.append(
            {
                "event_id": envelope.event_id,
                "event_type": envelope.type,
                "aggregate_type": envelope.aggregate_type,
                "aggregate_id": envelope.aggregate_id,
                "sequence": envelope.sequence,
                "payload": envelope.SerializeToString(deterministic=True),
                "occurred_at": now,
                **context,
            }
        )
    return rows
