"""How a Get and a List read what belongs to a user, written once for every resource.

A Get reads the primary (a caller must see what it just wrote) and answers
NOT_FOUND both for a missing resource and for another user's: a customer must
not learn that it exists. A List of one user's resources reads one keyset page,
from the replica when there is one, and answers the next page's token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from server.domain.errors import DomainError
from server.domain.ids import IdKind, require_id
from server.domain.principal import may_read
from server.service import paging
from server.service.unit_of_work import UnitOfWork, UnitOfWorkFactory


class Owned(Protocol):
    @property
    def user_id(self) -> str: ...


T = TypeVar("T", bound=Owned)
T_co = TypeVar("T_co", covariant=True)
R = TypeVar("R", bound=paging.Row)


class Found(Protocol[T_co]):
    """A repository, as far as a Get uses it."""

    async def get(self, resource_id: str, /) -> T_co | None: ...


@dataclass(frozen=True, slots=True)
class OwnedRead(Generic[T]):
    """GetX for one kind of resource that belongs to a user."""

    kind: IdKind
    repository: Callable[[UnitOfWork], Found[T]]
    not_found: Callable[[str], DomainError]

    async def __call__(
        self,
        uow_factory: UnitOfWorkFactory,
        resource_id: str,
        owner: str | None = None,
        direct: Found[T] | None = None,
    ) -> T:
        """The resource; NOT_FOUND also when `owner` is set and it is another user's.

        `direct` reads it without a unit of work where that is cheaper (one prepared
        statement, no transaction).
        """
        require_id(self.kind, resource_id)
        if direct is not None:
            found = await direct.get(resource_id)
        else:
            async with uow_factory(read_only=True) as uow:
                found = await self.repository(uow).get(resource_id)
        if found is None or not may_read(owner, found.user_id):
            raise self.not_found(resource_id)
        return found

    async def require_own(
        self, uow_factory: UnitOfWorkFactory, resource_id: str, owner: str | None
    ) -> None:
        """Before a command: NOT_FOUND when a customer names a resource that is not theirs.
        A resource's user never changes, so checking before the command claims its key is safe."""
        if owner is not None:
            await self(uow_factory, resource_id, owner)


@dataclass(frozen=True, slots=True)
class UserList(Generic[R]):
    """ListX of one user's resources, through the repository's keyset page."""

    kind: IdKind
    page: Callable[[UnitOfWork, paging.UserPage], Awaitable[paging.TimePage[R]]]

    async def __call__(
        self, uow_factory: UnitOfWorkFactory, user_id: str, page_size: int, page_token: str
    ) -> tuple[list[R], str]:
        """One page and the next page's token ("" on the last)."""
        query = paging.user_page(user_id, page_size, page_token, self.kind)
        async with uow_factory(read_only=True) as uow:
            found = await self.page(uow, query)
        return paging.rows_and_token(query.scope, found)
