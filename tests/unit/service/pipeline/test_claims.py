"""claim's answers that only a race reaches, with a key store that plays the race out."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import cast

import pytest

from server.domain.errors import IdempotencyKeyInUse
from server.service.pipeline.idempotency import IdempotencyPolicy, claim, scope_of
from server.service.unit_of_work import KeyRecord, UnitOfWork


class ReapedMeanwhile:
    """The key was there when the insert ran and gone when it was read back."""

    async def insert_if_absent(self, key: KeyRecord, now: datetime, expire: datetime) -> bool:
        del key, now, expire
        return False

    async def get(self, caller: str, request_id: str) -> KeyRecord | None:
        del caller, request_id
        return None


async def test_a_key_reaped_between_insert_and_read_asks_for_a_retry() -> None:
    uow = cast(UnitOfWork, SimpleNamespace(idempotency_keys=ReapedMeanwhile()))
    scope = scope_of("svc", "r-1", "CreatePayment", {"order_id": "o-1"})

    with pytest.raises(IdempotencyKeyInUse) as raised:
        await claim(uow, scope, datetime(2026, 1, 1, tzinfo=UTC), IdempotencyPolicy())

    assert raised.value.message == "request_id is being recycled; retry"
    assert raised.value.reason == "IDEMPOTENCY_KEY_IN_USE"
    assert raised.value.retry_after == 1.0
