"""The port that keeps the provider's exchanges."""

from __future__ import annotations

from typing import Protocol

from server.domain.provider_exchange import ProviderExchange


class ExchangeLog(Protocol):
    async def record(self, exchange: ProviderExchange) -> None:
        """Seal and store one exchange, in a transaction of its own."""

    async def for_payment(
        self, payment_id: str, provider_payment_id: str
    ) -> list[ProviderExchange]:
        """Oldest first, opened; a body whose key is gone reads as empty."""
