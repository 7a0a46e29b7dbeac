"""How long the mock provider's calls take, with and without its simulated latency.

The unit tests only check that a latency makes every call wait; the figures live
here, where a loaded machine makes them slower instead of making a test fail.
Run: .venv/bin/python bench/mock_provider_latency.py
"""

from __future__ import annotations

import asyncio
import time

from server.adapters.providers.base import CreateAtProvider
from server.adapters.providers.mock import MockProvider
from server.domain.money import Money
from server.domain.payment import CaptureMethod

CHARGES = 200


def request(n: int) -> CreateAtProvider:
    return CreateAtProvider(
        f"pay-{n}", f"order-{n}", Money("USD", 1000), CaptureMethod.AUTOMATIC, "pm_card_visa"
    )


async def per_charge_ms(provider: MockProvider, charges: int) -> float:
    started = time.perf_counter()
    for n in range(charges):
        created = await provider.create_payment(request(n), f"create-{n}")
        await provider.confirm_payment(created.provider_payment_id, "", f"confirm-{n}")
    return (time.perf_counter() - started) * 1000 / charges


async def main() -> None:
    print(f"no latency:    {await per_charge_ms(MockProvider(), CHARGES):.3f} ms per charge")
    slow = MockProvider(latency_s=0.02)
    print(f"20 ms latency: {await per_charge_ms(slow, 10):.1f} ms per charge (two calls)")


if __name__ == "__main__":
    asyncio.run(main())
