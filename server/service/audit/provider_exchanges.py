"""What the provider was asked and answered about a payment and its refunds (admins)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.domain.errors import FailedPrecondition
from server.domain.provider_exchange import ProviderExchange
from server.service.payments.commands import require_payment_id
from server.service.payments.queries import get_payment

if TYPE_CHECKING:
    from server.service.dependencies import Dependencies


async def list_provider_exchanges(deps: Dependencies, payment_id: str) -> list[ProviderExchange]:
    require_payment_id(payment_id)
    if deps.exchange_log is None:
        raise FailedPrecondition(
            "provider exchanges are not kept: PAYMENTS_PROVIDER_LOG_KEYS is not set",
            reason="PROVIDER_LOG_DISABLED",
        )
    payment = await get_payment(deps.uow, payment_id)
    return await deps.exchange_log.for_payment(payment.id, payment.provider_payment_id)
