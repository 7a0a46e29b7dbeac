"""How what the provider reports about a refund moves the refund and its payment."""

from __future__ import annotations

from datetime import datetime

from server.domain.payment import Payment
from server.domain.refund import Refund, RefundState
from server.service.provider import ProviderRefund, ProviderRefundStatus, ProviderRejected


def apply_refund_outcome(
    payment: Payment,
    refund: Refund,
    result: ProviderRefund,
    now: datetime,
    *,
    rejected: ProviderRejected | None = None,
) -> bool:
    """Bring a PENDING `refund` to what the provider says; whether anything changed.

    SUCCEEDED counts the money against the payment (refund.issued); FAILED and
    CANCELED free the reserved amount (refund.failed); still pending only
    records the provider's id. A refund already settled is left alone.
    """
    if refund.state is not RefundState.PENDING:
        return False
    if result.status is ProviderRefundStatus.SUCCEEDED:
        refund.succeed(result.provider_refund_id, now)
        payment.refund(refund.amount, now, refund=refund)
    elif result.status is ProviderRefundStatus.CANCELED:
        refund.cancel(result.provider_refund_id, now)
        payment.refund_failed(refund, now)
    elif result.status is ProviderRefundStatus.FAILED:
        if rejected is not None:
            code, message = rejected.code or "provider_rejected", rejected.message
        else:
            failure = result.failure
            code = failure.code if failure else "refund_failed"
            message = failure.message if failure else "The refund failed."
        refund.fail(result.provider_refund_id, code, message[:500], now)
        payment.refund_failed(refund, now)
    else:
        changed = refund.provider_refund_id != result.provider_refund_id
        refund.provider_refund_id = result.provider_refund_id or refund.provider_refund_id
        refund.update_time = now
        return changed
    return True
