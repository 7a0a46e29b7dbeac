"""A receipt as a one-page PDF (fpdf2), written for the reader's locale."""

from __future__ import annotations

from babel import Locale
from babel.dates import format_datetime
from fpdf import FPDF

from server.adapters.money_format import format_money
from server.domain.receipt import Receipt, ReceiptKind

_TITLES = {ReceiptKind.PAYMENT: "Receipt", ReceiptKind.REFUND: "Refund receipt"}


# The core PDF fonts: Windows-1252 has the euro and pound signs; what it lacks
# (other scripts, rarer currency signs) shows as "?", never silently dropped.
_ENCODING = "windows-1252"


def _text(text: str) -> str:
    return text.encode(_ENCODING, "replace").decode(_ENCODING)


def render_receipt_pdf(receipt: Receipt, locale: Locale) -> bytes:
    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = _ENCODING
    pdf.set_title(f"{_TITLES[receipt.kind]} {receipt.number}")
    pdf.set_creator("payments")
    pdf.add_page()
    pdf.set_font("helvetica", "B", 18)
    pdf.cell(0, 12, _text(receipt.merchant or "Receipt"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 14)
    title = f"{_TITLES[receipt.kind]} {receipt.number}"
    pdf.cell(0, 10, _text(title), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("helvetica", "", 11)
    lines = [
        ("Date", format_datetime(receipt.issue_time, "medium", tzinfo=None, locale=locale)),
        ("Order", receipt.order_id),
        ("Item", receipt.description or receipt.order_id),
        ("Payment", receipt.payment_id),
    ]
    if receipt.kind is ReceiptKind.REFUND:
        lines.append(("Refund", receipt.id))
    if receipt.card is not None:
        lines.append(("Card", f"{receipt.card.brand.upper()} **** {receipt.card.last4}"))
    amount_label = "Amount refunded" if receipt.kind is ReceiptKind.REFUND else "Amount paid"
    lines.append((amount_label, format_money(receipt.amount, locale)))
    for label, value in lines:
        pdf.set_font("helvetica", "B", 11)
        pdf.cell(45, 8, _text(label))
        pdf.set_font("helvetica", "", 11)
        pdf.multi_cell(0, 8, _text(value), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
