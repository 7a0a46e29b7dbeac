"""claim's answers that only a race reaches, with a key store that plays the race out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import cast

import pytest

from server.domain.errors import IdempotencyKeyInUse
from server.service.pipeline.idempotency import (
    Claim,
    IdempotencyPolicy,
    claim,
    fresh_key,
    scope_of,
)
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


NOW = datetime(2026, 1, 1, tzinfo=UTC)
SCOPE = scope_of("svc", "r-1", "CreatePayment", {"order_id": "o-1"})


class HeldBy:
    """The key is held by an earlier call whose lease ends at `locked_until`."""

    def __init__(self, locked_until: datetime) -> None:
        first = fresh_key(SCOPE, NOW - timedelta(minutes=1), IdempotencyPolicy(), "pay_1")
        self.key = replace(first, locked_until=locked_until)
        self.leased_until: datetime | None = None

    async def insert_if_absent(self, key: KeyRecord, now: datetime, expire: datetime) -> bool:
        del key, now, expire
        return False

    async def get(self, caller: str, request_id: str) -> KeyRecord | None:
        del caller, request_id
        return self.key

    async def take_over(self, existing: KeyRecord, locked_until: datetime) -> bool:
        del existing
        self.leased_until = locked_until
        return True


async def test_a_lease_that_ends_now_is_over_and_its_key_leased_again() -> None:
    keys = HeldBy(locked_until=NOW)
    uow = cast(UnitOfWork, SimpleNamespace(idempotency_keys=keys))
    policy = IdempotencyPolicy()

    claimed = await claim(uow, SCOPE, NOW, policy)

    assert claimed == Claim(resource_id="pay_1")  # resumes what the first call worked on
    # For a whole lease again: another retry meanwhile waits instead of taking it too.
    assert keys.leased_until == NOW + policy.lease


async def test_a_lease_that_ends_later_keeps_the_key_in_use() -> None:
    keys = HeldBy(locked_until=NOW + timedelta(microseconds=1))
    uow = cast(UnitOfWork, SimpleNamespace(idempotency_keys=keys))

    with pytest.raises(IdempotencyKeyInUse) as raised:
        await claim(uow, SCOPE, NOW, IdempotencyPolicy())

    assert (
        raised.value.message == "a request with this request_id is still in progress; retry later"
    )
    assert dict(raised.value.metadata) == {"request_id": "r-1"}
    assert keys.leased_until is None
