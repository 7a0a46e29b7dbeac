"""The ports the service layer writes through: repositories inside one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from server.domain.payment import Payment
from server.service.payment_queries import PaymentPage, PaymentQuery


class LiveOrderConflict(Exception):
    """The order already has a live payment (the partial unique index said so)."""


class StaleWrite(Exception):
    """Someone else changed the payment since it was read."""


class PaymentRepository(Protocol):
    async def add(self, payment: Payment) -> None:
        """Insert the payment and its pending events; LiveOrderConflict on a live order."""

    async def get(
        self, payment_id: str, *, for_update: bool = False, skip_locked: bool = False
    ) -> Payment | None:
        """With `skip_locked`, None also when another transaction holds the row."""

    async def due_for_reconciliation(self, now: datetime | None, limit: int) -> list[str]: ...

    async def save(self, payment: Payment, expected_sequence: int) -> None:
        """Write changes and pending events if the row is still at `expected_sequence`.

        StaleWrite otherwise.
        """

    async def find_live_by_order(self, order_id: str) -> Payment | None: ...

    async def list(self, query: PaymentQuery) -> PaymentPage: ...


@dataclass(frozen=True, slots=True)
class KeyRecord:
    caller: str
    request_id: str
    method: str
    fingerprint: str
    resource_id: str | None
    response: Payment | None
    locked_until: datetime | None


class IdempotencyKeyRepository(Protocol):
    async def insert_if_absent(
        self, record: KeyRecord, now: datetime, expire_time: datetime
    ) -> bool: ...

    async def get(self, caller: str, request_id: str) -> KeyRecord | None: ...

    async def take_over(self, record: KeyRecord, locked_until: datetime) -> bool:
        """Compare-and-set the lease of a key whose first caller is gone."""

    async def attach(self, caller: str, request_id: str, resource_id: str) -> None: ...

    async def complete(self, caller: str, request_id: str, response: Payment) -> None: ...

    async def release(self, caller: str, request_id: str) -> None: ...

    async def delete(self, caller: str, request_id: str) -> None: ...

    async def delete_expired(self, now: datetime, limit: int) -> int: ...


class UnitOfWork(Protocol):
    @property
    def payments(self) -> PaymentRepository: ...

    @property
    def idempotency_keys(self) -> IdempotencyKeyRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed."""

    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
