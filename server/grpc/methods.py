"""Servicer methods built from their parts: read the request, run the use case, answer.

Every RPC takes the same three steps, so a servicer is a table with one row a
method: how the proto becomes what the service layer takes, which use case runs,
and how its result becomes the answer. A mutating RPC's replay carries the
`idempotent-replayed` trailer; a customer acting on a resource that is not
theirs is NOT_FOUND before anything is claimed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from google.protobuf.message import Message
from grpc import aio

from server.domain.principal import Principal
from server.grpc.caller import principal_of
from server.service.dependencies import Dependencies
from server.service.ownership import user_id_for
from server.service.payments.requests import AmountInput
from server.service.pipeline.command import Outcome
from server.service.unit_of_work import UnitOfWorkFactory

Context = aio.ServicerContext[Any, Any]
REPLAYED = (("idempotent-replayed", "true"),)
Q = TypeVar("Q")  # the request message
C = TypeVar("C")  # the request as the service layer takes it
R = TypeVar("R")  # what the service layer answers
M = TypeVar("M")  # the answer message

# What grpc calls: (servicer, request, context) -> answer. The parameters are left open
# so that a row may stand where the generated base class declares the method; mypy still
# checks the request and answer types against that declaration.
Method = Callable[..., Awaitable[M]]
# A use case as a method runs it: the dependencies, the request, who is calling.
Step = Callable[[Dependencies, Q, Principal], Awaitable[R]]
# A list's answer from the service layer: one page and the next page's token.
Page = tuple[Sequence[R], str]


class Servicer:
    """What every method of a servicer needs; the methods are rows in its class body."""

    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps


class Targeted(Protocol):
    """A request that acts on one resource, named by its id."""

    @property
    def id(self) -> str: ...


def answered(step: Step[Q, M]) -> Method[M]:
    """The method that answers what `step` returns."""

    async def method(servicer: Servicer, request: Q, context: Context) -> M:
        return await step(servicer.deps, request, principal_of(context))

    return method


def read(step: Step[Q, R], answer: Callable[[R], M]) -> Method[M]:
    """A method that reads through `step` and turns what it found into the answer."""

    async def answering(deps: Dependencies, request: Q, principal: Principal) -> M:
        return answer(await step(deps, request, principal))

    return answered(answering)


def command(
    parse: Callable[[Q, Principal], C],
    run: Callable[[Dependencies, str, C], Awaitable[Outcome[R]]],
    answer: Callable[[Outcome[R], Principal], M],
    own: Step[C, None] | None = None,
) -> Method[M]:
    """A mutating method: the request parsed, checked by `own`, run in the caller's scope."""

    async def method(servicer: Servicer, request: Q, context: Context) -> M:
        principal = principal_of(context)
        asked = parse(request, principal)
        if own is not None:
            await own(servicer.deps, asked, principal)
        outcome = await run(servicer.deps, principal.scope, asked)
        if outcome.replayed:
            context.set_trailing_metadata(REPLAYED)
        return answer(outcome, principal)

    return method


def resource(to_proto: Callable[[R], M]) -> Callable[[Outcome[R], Principal], M]:
    """A command's answer: the resource as it is now, the same for every caller."""
    return lambda outcome, principal: to_proto(outcome.resource)


def owner_only(
    require: Callable[[UnitOfWorkFactory, str, str | None], Awaitable[None]],
) -> Step[Targeted, None]:
    """A customer acts only on their own resource; another's is NOT_FOUND, like a missing one."""
    return lambda deps, asked, principal: require(deps.uow, asked.id, principal.owner)


def by_id(get: Callable[[UnitOfWorkFactory, str, str | None], Awaitable[R]]) -> Step[Any, R]:
    """The resource the request names by `id`, if the caller may see it (from the primary)."""
    return lambda deps, request, principal: get(deps.uow, request.id, principal.owner)


def users_page(
    list_page: Callable[[UnitOfWorkFactory, str, int, str], Awaitable[Page[R]]],
) -> Step[Any, Page[R]]:
    """One page of a user's resources: a customer's own, whatever user_id they send."""
    return lambda deps, request, principal: list_page(
        deps.lagging_reads,
        user_id_for(principal.owner, request.user_id),
        request.page_size,
        request.page_token,
    )


def page(
    response: Callable[..., M], field: str, to_proto: Callable[[R], Message | Mapping[str, Any]]
) -> Callable[[Page[R]], M]:
    """A List answer: the page's items in `field`, and the next page's token.

    `to_proto` may give each item's fields instead of its message: the answer then builds
    the item in place, where a message would be built and then copied into it.
    """
    return lambda found: response(
        **{field: [to_proto(item) for item in found[0]]}, next_page_token=found[1]
    )


def optional_amount(request: Any, field: str) -> AmountInput | None:
    """A Money field as the caller sent it, None when unset (validated by the use case)."""
    if not request.HasField(field):
        return None
    money = getattr(request, field)
    return AmountInput(money.currency_code, money.minor_units)
