"""Which of our resources a provider's report is about.

Ours first, by the id we sent the provider in its metadata: the provider may
report before our call recorded the provider's own id. Such a resource must be
of that provider and know the provider's id or none yet; otherwise, and when
the report names none of ours, by (provider, the provider's id). Both are read
locked, for the change the report brings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from server.service.unit_of_work import UnitOfWork


class AtProvider(Protocol):
    @property
    def provider(self) -> str: ...


T = TypeVar("T", bound=AtProvider)
T_co = TypeVar("T_co", covariant=True)


class Repository(Protocol[T_co]):
    async def get(self, resource_id: str, /, *, for_update: bool = False) -> T_co | None: ...

    async def find_by_provider_id(
        self, provider: str, provider_id: str, /, *, for_update: bool = False
    ) -> T_co | None: ...


@dataclass(frozen=True, slots=True)
class ReportedLookup(Generic[T]):
    repository: Callable[[UnitOfWork], Repository[T]]
    provider_id_of: Callable[[T], str]

    async def __call__(
        self, uow: UnitOfWork, provider: str, our_id: str, provider_id: str
    ) -> T | None:
        repository = self.repository(uow)
        if our_id:
            ours = await repository.get(our_id, for_update=True)
            if (
                ours is not None
                and ours.provider == provider
                and self.provider_id_of(ours) in ("", provider_id)
            ):
                return ours
        return await repository.find_by_provider_id(provider, provider_id, for_update=True)
