"""A provider whose first call of one kind waits at the provider until the test releases it.

Orders concurrent steps without sleeping: the test waits for `reached`, does
what must happen while the call is in flight, then sets `release`. Later calls
of that kind go straight through, so a call that should never have reached the
provider shows up in its ledger instead of hanging the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

from server.adapters.providers.base import PaymentProvider

# How long a test waits for a held call to be reached or finished before it fails.
WITHIN_S = 10.0


class HeldFirstCall:
    def __init__(self, inner: PaymentProvider, method: str) -> None:
        self.inner = inner
        self.method = method
        self.reached = asyncio.Event()
        self.release = asyncio.Event()
        self._held = False

    def as_provider(self) -> PaymentProvider:
        return cast(PaymentProvider, self)

    def __getattr__(self, name: str) -> Any:
        call = getattr(self.inner, name)
        if name != self.method:
            return call
        return self._holding(call)

    def _holding(self, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def held(*args: Any, **kwargs: Any) -> Any:
            if not self._held:
                self._held = True
                self.reached.set()
                await self.release.wait()
            return await call(*args, **kwargs)

        return held
