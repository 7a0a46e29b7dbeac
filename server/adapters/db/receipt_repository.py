"""Receipts in SQL: written with the money's movement, numbered afterwards."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.db.outbox_rows import append_rows
from server.adapters.db.tables import payments, receipt_counters, receipts
from server.adapters.receipt_codec import receipt_issued_envelope
from server.domain.events import PAYMENT_SUCCEEDED, REFUND_ISSUED, PaymentEvent
from server.domain.money import Money
from server.domain.payment import Payment
from server.domain.receipt import Card, Receipt, ReceiptKind
from server.observability.tracing import current_trace_headers

_SELECT = receipts.select().where(receipts.c.id == sa.bindparam("b_id"))
_UNNUMBERED = (
    receipts.select()
    .where(receipts.c.number.is_(None))
    .order_by(receipts.c.issue_time, receipts.c.id)
    .limit(sa.bindparam("b_limit"))
    # Two numbering passes never take the same receipt; neither waits for the other.
    .with_for_update(skip_locked=True)
)
_TAKE = (
    receipt_counters.update()
    .where(receipt_counters.c.year == sa.bindparam("b_year"))
    .values(last_sequence=receipt_counters.c.last_sequence + sa.bindparam("b_count"))
    .returning(receipt_counters.c.last_sequence)
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


def _insert_ignoring_duplicates(connection: AsyncConnection, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect at hand."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


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
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, receipt_id: str) -> Receipt | None:
        row = (await self._connection.execute(_SELECT, {"b_id": receipt_id})).first()
        return _from_row(row) if row else None

    async def unnumbered(self, limit: int) -> list[Receipt]:
        """The oldest receipts without a number, locked for this transaction."""
        result = await self._connection.execute(_UNNUMBERED, {"b_limit": limit})
        return [_from_row(row) for row in result]

    async def take_sequences(self, year: int, count: int) -> int:
        """Advance `year`'s counter by `count`; the last sequence taken.

        The counter row stays locked until this transaction ends: numbering passes
        take turns, and a rolled-back pass gives its sequences back.
        """
        insert = _insert_ignoring_duplicates(self._connection, receipt_counters)
        await self._connection.execute(insert, {"year": year, "last_sequence": 0})
        result = await self._connection.execute(_TAKE, {"b_year": year, "b_count": count})
        last: int = result.scalar_one()
        return last

    async def number(self, numbered: Sequence[tuple[Receipt, int, int]], now: datetime) -> None:
        """Store the numbers and what the receipts show, and announce them (receipt.issued)."""
        envelopes = []
        for receipt, year, sequence in numbered:
            card = receipt.card or Card("", "")
            result = await self._connection.execute(
                _NUMBER,
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
                },
            )
            if result.rowcount != 1:
                raise RuntimeError(f"receipt {receipt.id} was numbered meanwhile")
            envelopes.append(receipt_issued_envelope(receipt, now))
        trace = current_trace_headers()
        context = {"traceparent": trace.get("traceparent"), "tracestate": trace.get("tracestate")}
        await append_rows(
            self._connection,
            [
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
                for envelope in envelopes
            ],
        )

    async def payment_methods(self, payment_ids: Collection[str]) -> dict[str, str]:
        if not payment_ids:
            return {}
        statement = sa.select(payments.c.id, payments.c.payment_method_id).where(
            payments.c.id.in_(sorted(payment_ids))
        )
        rows = await self._connection.execute(statement)
        return {str(payment_id): str(method_id) for payment_id, method_id in rows}
