"""The one idempotent command pipeline every mutating use case runs through.

1. One transaction claims the request_id (or replays its first outcome) and
   persists the intent before the provider hears of it.
2. The provider call, keyed so that a retry can never do it twice.
3. One transaction records the provider's answer and stores the response for
   replays. A refusal is recorded and frees the request_id; an unknown outcome
   releases it so that a retry resumes at once.
Steps 2 and 3 run in a task the caller hanging up cannot cancel. When step 3
cannot reach the database, the recorder keeps what the provider said and
records it as soon as the database is back.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Generic, NoReturn, TypeVar

from server.domain.errors import (
    DatabaseUnavailable,
    DomainError,
    FieldViolation,
    InvalidArgument,
    TransactionConflict,
)
from server.faults import AFTER_PROVIDER_CALL, crash_point
from server.service.dependencies import Dependencies
from server.service.pipeline.idempotency import Scope, claim, fresh_key
from server.service.provider import ProviderRejected
from server.service.unit_of_work import Completion, KeyRecord, UnitOfWork

P = TypeVar("P")  # what step 1 prepares (usually the resource itself)
A = TypeVar("A")  # the provider's answer
R = TypeVar("R")  # the resource recorded and answered
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[R]):
    """What every command answers: the resource, and whether this was a replay."""

    resource: R
    replayed: bool = False
    # For a payment's owner only (Stripe.js); never stored, fetched again on replay.
    client_secret: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Kind(Generic[R]):
    """How the pipeline stores one kind of resource as a replayable response."""

    encode: Callable[[R], bytes]
    decode: Callable[[bytes], R]
    id_of: Callable[[R], str]


# What the request_id's stored response becomes once the resource is recorded.
Finishing = Callable[[R], Completion | None]


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a provider's refusal means for the resource.

    `keep` writes the refused state in the final transaction. `settled` is False
    when what the provider did is still open: the request_id is then released
    (a retry resumes) instead of forgotten (a retry starts afresh).
    """

    error: DomainError
    keep: Callable[[UnitOfWork], Awaitable[None]] | None = None
    settled: bool = True


class Refused(ProviderRejected):
    """Raised by a step that already knows what the caller is told of a refusal."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(error.message)
        self.error = error


# The final write could not be made now; the recorder tries again.
_OUTAGES = (DatabaseUnavailable, TransactionConflict)


async def _invalid(resource: object, rejected: ProviderRejected) -> Refusal:
    del resource
    return Refusal(
        InvalidArgument(
            [FieldViolation(rejected.field or "request", rejected.message)],
            reason="PROVIDER_REJECTED",
        )
    )


@dataclass(frozen=True, slots=True)
class Done(Generic[R]):
    """Returned by step 1 when there is nothing to ask the provider: the finished resource."""

    resource: R


def _no_secret(answer: object) -> str:
    del answer
    return ""


async def _never(*args: object) -> NoReturn:
    raise AssertionError("a command without a provider step returns Done from step 1")


def _silent(resource: object, stage: str) -> None:
    del resource, stage


@dataclass(frozen=True, slots=True, kw_only=True)
class Command(Generic[P, A, R]):
    """One use case, as the steps particular to it."""

    scope: Scope | None
    kind: Kind[R]
    # Stored with the claim: the id of the resource made or acted on.
    resource_id: str
    # Step 1, after the claim; `resume_id` names what a dead attempt left behind.
    prepare: Callable[[UnitOfWork, str | None], Awaitable[P | Done[R]]]
    # Step 2: ask the provider.
    act: Callable[[P], Awaitable[A]] = _never
    # Step 3, in its own transaction; runs again (on a fresh copy) after an outage.
    record: Callable[[UnitOfWork, P, A], Awaitable[R]] = _never
    refused: Callable[[P, ProviderRejected], Awaitable[Refusal]] = _invalid
    # Stripe.js's client secret from the provider's answer, or fetched again on replay.
    secret: Callable[[A], str] = _no_secret
    replay_secret: Callable[[R], Awaitable[str]] | None = None
    # Tells logs, spans and metrics where the resource is ("replayed", "prepared", outcomes).
    observe: Callable[[P | R, str], None] = _silent
    # The lean path, where the database offers it: step 1 for a new request_id as one
    # statement that claims the key and writes the attempt (None: the key is taken, so the
    # steps above run), and step 3 as one statement (None: the resource moved meanwhile).
    quick_start: Callable[[KeyRecord, datetime, datetime], Awaitable[P | None]] | None = None
    quick_record: Callable[[P, A, Finishing[R]], Awaitable[R | None]] | None = None


async def run(deps: Dependencies, command: Command[P, A, R]) -> Outcome[R]:
    started = await _quick_start(deps, command)
    if started is not None:
        return await deps.recorder.shielded(_settle(deps, command, started))
    scope = command.scope
    async with deps.uow() as uow:
        resume_id = None
        if scope is not None:
            now = deps.clock.now()
            claimed = await claim(uow, scope, now, deps.idempotency, command.resource_id)
            if claimed.replay is not None:
                return await _replay(command, command.kind.decode(claimed.replay))
            resume_id = claimed.resource_id
        prepared = await command.prepare(uow, resume_id)
        if isinstance(prepared, Done):
            await _complete(uow, command, prepared.resource)
            await uow.commit()
            return Outcome(prepared.resource)
        # Nothing is stored for a call that cannot reach the provider now.
        deps.provider.ensure_available()
        command.observe(prepared, "prepared")
        await uow.commit()
    return await deps.recorder.shielded(_settle(deps, command, prepared))


async def _quick_start(deps: Dependencies, command: Command[P, A, R]) -> P | None:
    scope, start = command.scope, command.quick_start
    if scope is None or start is None:
        return None
    # Nothing is stored for a call that cannot reach the provider now.
    deps.provider.ensure_available()
    now = deps.clock.now()
    key = fresh_key(scope, now, deps.idempotency, command.resource_id)
    started = await start(key, now, now + deps.idempotency.retention)
    if started is not None:
        command.observe(started, "prepared")
    return started


async def _replay(command: Command[P, A, R], resource: R) -> Outcome[R]:
    command.observe(resource, "replayed")
    secret = await command.replay_secret(resource) if command.replay_secret else ""
    return Outcome(resource, replayed=True, client_secret=secret)


async def _complete(uow: UnitOfWork, command: Command[P, A, R], resource: R) -> None:
    completion = _completion(command, resource)
    if completion is not None:
        await uow.idempotency_keys.complete(
            completion.caller,
            completion.request_id,
            command.kind.id_of(resource),
            completion.response,
        )


async def _settle(deps: Dependencies, command: Command[P, A, R], prepared: P) -> Outcome[R]:
    try:
        answer = await command.act(prepared)
    except ProviderRejected as rejected:
        await _refuse(deps, command, prepared, rejected)
        raise AssertionError("unreachable: _refuse raises") from None  # pragma: no cover
    except DomainError as error:
        command.observe(prepared, error.reason.lower())
        await _release(deps, command.scope)
        raise
    except BaseException:
        await _release(deps, command.scope)
        raise
    crash_point(AFTER_PROVIDER_CALL)
    try:
        recorded = await _write(deps, lambda: _record(deps, command, prepared, answer))
    except _OUTAGES:
        raise
    except DomainError:
        # The final transaction refused (the resource changed meanwhile): nothing was recorded.
        await _write(deps, lambda: _forget(deps, command.scope, None))
        raise
    command.observe(recorded, "recorded")
    return Outcome(recorded, client_secret=command.secret(answer))


async def _refuse(
    deps: Dependencies, command: Command[P, A, R], prepared: P, rejected: ProviderRejected
) -> None:
    try:
        if isinstance(rejected, Refused):
            refusal = Refusal(rejected.error)
        else:
            refusal = await command.refused(prepared, rejected)
    except BaseException:
        await _release(deps, command.scope)
        raise
    if not refusal.settled:
        await _release(deps, command.scope)
        raise refusal.error
    await _write(deps, lambda: _forget(deps, command.scope, refusal.keep))
    command.observe(prepared, "rejected")
    raise refusal.error


async def _write(deps: Dependencies, write: Callable[[], Awaitable[T]]) -> T:
    """Run one final transaction; if the database is down, leave it to the recorder."""
    try:
        return await write()
    except _OUTAGES:
        deps.recorder.keep(write)
        raise


async def _record(deps: Dependencies, command: Command[P, A, R], prepared: P, answer: A) -> R:
    # A copy: a failed transaction must leave the original (and its events) for a retry.
    if command.quick_record is not None:
        quick = copy.deepcopy(prepared)
        recorded = await command.quick_record(quick, answer, partial(_completion, command))
        if recorded is not None:
            return recorded
    working = copy.deepcopy(prepared)
    async with deps.uow() as uow:
        recorded = await command.record(uow, working, answer)
        await _complete(uow, command, recorded)
        await uow.commit()
    return recorded


def _completion(command: Command[P, A, R], resource: R) -> Completion | None:
    """The request_id's stored response once `resource` is recorded; None without one."""
    scope = command.scope
    if scope is None:
        return None
    return Completion(scope.caller, scope.request_id, command.kind.encode(resource))


async def _forget(
    deps: Dependencies, scope: Scope | None, keep: Callable[[UnitOfWork], Awaitable[None]] | None
) -> None:
    """Write the refusal and free the request_id: a retry starts afresh."""
    if scope is None and keep is None:
        return
    async with deps.uow() as uow:
        if keep is not None:
            await keep(uow)
        if scope is not None:
            await uow.idempotency_keys.delete(scope.caller, scope.request_id)
        await uow.commit()


async def _release(deps: Dependencies, scope: Scope | None) -> None:
    """Let a retry resume at once instead of waiting out the lease.

    If the database is down the lease runs out on its own: nothing is kept.
    """
    if scope is None:
        return
    try:
        async with deps.uow() as uow:
            await uow.idempotency_keys.release(scope.caller, scope.request_id)
            await uow.commit()
    except _OUTAGES:
        return
