"""Receipts to protobuf: the GetReceipt answer and the receipt.issued event."""

from __future__ import annotations

import uuid
from datetime import datetime

from babel import Locale
from payments.v1 import events_pb2, receipts_pb2

from server.adapters.codec import money_to_proto, timestamp
from server.adapters.money_format import DEFAULT_LOCALE, format_money, parse_locale
from server.domain.receipt import Receipt, ReceiptKind

RECEIPT_ISSUED = "receipt.issued"
_KIND_TO_PROTO = {
    ReceiptKind.PAYMENT: receipts_pb2.RECEIPT_KIND_PAYMENT,
    ReceiptKind.REFUND: receipts_pb2.RECEIPT_KIND_REFUND,
}
# Parsed once: the numbering job writes an event per receipt, and parsing was a fifth of it.
_EVENT_LOCALE = parse_locale(DEFAULT_LOCALE)


def receipt_to_proto(receipt: Receipt, locale: Locale, pdf: bytes = b"") -> receipts_pb2.Receipt:
    card = receipt.card
    return receipts_pb2.Receipt(
        id=receipt.id,
        number=receipt.number,
        kind=_KIND_TO_PROTO[receipt.kind],
        payment_id=receipt.payment_id,
        user_id=receipt.user_id,
        order_id=receipt.order_id,
        description=receipt.description,
        merchant=receipt.merchant,
        amount=money_to_proto(receipt.amount),
        formatted_amount=format_money(receipt.amount, locale),
        card_brand=card.brand if card else "",
        card_last4=card.last4 if card else "",
        issue_time=timestamp(receipt.issue_time),
        number_time=timestamp(receipt.number_time) if receipt.number_time else None,
        locale=str(locale),
        pdf=pdf,
    )


def receipt_issued_envelope(receipt: Receipt, now: datetime) -> events_pb2.EventEnvelope:
    """A receipt's only event: its aggregate is the receipt, numbered by its number."""
    envelope = events_pb2.EventEnvelope(
        event_id=str(uuid.uuid4()),
        type=RECEIPT_ISSUED,
        occurred_at=timestamp(now),
        aggregate_type="receipt",
        aggregate_id=receipt.number,
        sequence=1,
    )
    envelope.receipt_issued.receipt.CopyFrom(receipt_to_proto(receipt, _EVENT_LOCALE))
    envelope.receipt_issued.customer_email = receipt.customer_email
    return envelope
