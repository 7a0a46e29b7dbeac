"""The provider's own record of money moved, read the way an auditor would.

Tests check the service's database against these, never against the service
itself. `MockLedger` reads the mock's ledger file (one JSON line per money
movement, with its `kind` and `provider_payment_id`); `StripeLedger` asks
localstripe. Both can also act at the provider behind the service's back, as
an operator in Stripe's dashboard would. When the mock's ledger format
changes, only this module needs to follow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol, cast

import stripe

from server.adapters.providers.mock import MockProvider


class ProviderLedger(Protocol):
    async def refunds(self, provider_payment_id: str) -> int:
        """How many refunds of this payment moved money at the provider."""
        ...

    async def money_taken(self, provider_payment_id: str) -> bool:
        """Whether the provider charged or captured this payment."""
        ...

    async def captures(self, provider_payment_id: str) -> int:
        """How many captures of this (manually captured) payment the provider made."""
        ...

    async def cancel_behind_our_back(self, provider_payment_id: str) -> None: ...

    async def capture_behind_our_back(self, provider_payment_id: str, amount: int) -> None: ...

    async def refund_behind_our_back(self, provider_payment_id: str, amount: int) -> None: ...


def mock_ledger_lines(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class MockLedger:
    def __init__(self, provider: MockProvider, path: Path) -> None:
        self.provider = provider
        self.path = path

    def _count(self, provider_payment_id: str, *kinds: str) -> int:
        return sum(
            line["kind"] in kinds and line["provider_payment_id"] == provider_payment_id
            for line in mock_ledger_lines(self.path)
        )

    async def refunds(self, provider_payment_id: str) -> int:
        return self._count(provider_payment_id, "refund")

    async def money_taken(self, provider_payment_id: str) -> bool:
        return self._count(provider_payment_id, "charge", "capture") > 0

    async def captures(self, provider_payment_id: str) -> int:
        return self._count(provider_payment_id, "capture")

    async def cancel_behind_our_back(self, provider_payment_id: str) -> None:
        await self.provider.cancel_payment(provider_payment_id, f"dashboard-{provider_payment_id}")

    async def capture_behind_our_back(self, provider_payment_id: str, amount: int) -> None:
        key = f"dashboard-capture-{provider_payment_id}"
        await self.provider.capture_payment(provider_payment_id, amount, key)

    async def refund_behind_our_back(self, provider_payment_id: str, amount: int) -> None:
        key = f"dashboard-refund-{provider_payment_id}"
        await self.provider.refund_payment(provider_payment_id, amount, key)


class StripeLedger:
    def __init__(self, client: stripe.StripeClient) -> None:
        self.client = client

    async def refunds(self, provider_payment_id: str) -> int:
        found = await self.client.v1.refunds.list_async({"payment_intent": provider_payment_id})
        return sum(refund.status == "succeeded" for refund in found.data)

    async def money_taken(self, provider_payment_id: str) -> bool:
        intent = await self.client.v1.payment_intents.retrieve_async(provider_payment_id)
        return bool(intent.amount_received)

    async def captures(self, provider_payment_id: str) -> int:
        intent = await self.client.v1.payment_intents.retrieve_async(
            provider_payment_id, {"expand": ["latest_charge"]}
        )
        charge = cast(stripe.Charge | None, intent.latest_charge)
        return int(charge is not None and charge.captured)

    async def cancel_behind_our_back(self, provider_payment_id: str) -> None:
        await self.client.v1.payment_intents.cancel_async(provider_payment_id)

    async def capture_behind_our_back(self, provider_payment_id: str, amount: int) -> None:
        await self.client.v1.payment_intents.capture_async(
            provider_payment_id, {"amount_to_capture": amount}
        )

    async def refund_behind_our_back(self, provider_payment_id: str, amount: int) -> None:
        await self.client.v1.refunds.create_async(
            {"payment_intent": provider_payment_id, "amount": amount}
        )
