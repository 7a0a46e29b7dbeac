"""What the current request is about, for log lines and the current span."""

from __future__ import annotations

from contextvars import ContextVar

from opentelemetry import trace

payment_id: ContextVar[str] = ContextVar("payment_id", default="")


def about_payment(
    payment: str, *, order_id: str = "", provider: str = "", outcome: str = ""
) -> None:
    """Tag the current span and the log lines that follow with one payment's story."""
    payment_id.set(payment)
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute("payments.payment_id", payment)
    if order_id:
        span.set_attribute("payments.order_id", order_id)
    if provider:
        span.set_attribute("payments.provider", provider)
    if outcome:
        span.set_attribute("payments.outcome", outcome)
