"""How what the provider reports moves our payment."""

from __future__ import annotations

from datetime import datetime

from server.adapters.providers.base import ProviderPayment, ProviderStatus
from server.domain.payment import Failure, Payment
from server.domain.payment_states import CHARGED_STATES, PaymentOp, PaymentState

# Never confirmed by us: the customer may have confirmed in the browser, or our
# record of the confirm was lost.
BEFORE_CONFIRMATION = frozenset(
    {PaymentState.REQUIRES_PAYMENT_METHOD, PaymentState.REQUIRES_CONFIRMATION}
)
# What the provider reports only once a payment was confirmed there.
CONFIRMED_AT_PROVIDER = frozenset(
    {
        ProviderStatus.PROCESSING,
        ProviderStatus.REQUIRES_ACTION,
        ProviderStatus.REQUIRES_CAPTURE,
        ProviderStatus.SUCCEEDED,
        ProviderStatus.FAILED,
    }
)
_UNKNOWN_FAILURE = Failure("processing_error", "The payment could not be processed.")
_OP_FOR_STATUS = {
    ProviderStatus.REQUIRES_ACTION: (
        PaymentOp.PROVIDER_REQUIRES_ACTION,
        PaymentState.REQUIRES_ACTION,
    ),
    ProviderStatus.REQUIRES_CAPTURE: (PaymentOp.PROVIDER_AUTHORIZED, PaymentState.REQUIRES_CAPTURE),
    ProviderStatus.CANCELED: (PaymentOp.PROVIDER_CANCELED, PaymentState.CANCELED),
}


def apply_provider_outcome(payment: Payment, result: ProviderPayment, now: datetime) -> None:
    """Bring `payment` to what the provider says; a no-op when it is already there.

    A status that leaves our state as it is (processing, or a payment not yet
    confirmed) only records the provider's id.
    """
    if not payment.provider_payment_id:
        payment.provider_payment_id = result.provider_payment_id
        payment.update_time = now
    if result.status is ProviderStatus.SUCCEEDED:
        if payment.state not in CHARGED_STATES:
            payment.succeed(now, result.amount_received)
    elif result.status is ProviderStatus.FAILED:
        if payment.state is not PaymentState.FAILED:
            payment.fail(now, result.failure or _UNKNOWN_FAILURE)
    elif result.status in _OP_FOR_STATUS:
        op, target = _OP_FOR_STATUS[result.status]
        if payment.state is not target:
            payment.apply(op, now)
