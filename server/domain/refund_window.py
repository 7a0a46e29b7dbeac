"""How long after the capture a payment may still be refunded."""

from __future__ import annotations

from datetime import datetime, timedelta

from server.domain.errors import FailedPrecondition

DEFAULT_REFUND_WINDOW = timedelta(days=90)


def check_refund_window(
    capture_time: datetime | None, now: datetime, window: timedelta, *, overridden: bool
) -> None:
    """FailedPrecondition REFUND_WINDOW_CLOSED once `window` has passed since the capture.

    A payment without a capture time took no money, and the state table refuses
    its refund anyway; an admin's explicit override lets a late refund through.
    """
    if capture_time is None or overridden:
        return
    closes = capture_time + window
    days = f"{window / timedelta(days=1):g}"
    if now >= closes:
        raise FailedPrecondition(
            f"the refund window closed at {closes.isoformat()}, {days} days after the capture",
            reason="REFUND_WINDOW_CLOSED",
            metadata={
                "capture_time": capture_time.isoformat(),
                "window_closed_at": closes.isoformat(),
                "window_days": days,
            },
        )
