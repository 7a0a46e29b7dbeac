"""Stripe-style idempotency keys: claim, replay, reject reuse, or resume after a crash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from server.domain.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from server.observability.metrics import idempotent_replays
from server.service.request_fields import request_fields
from server.service.unit_of_work import KeyRecord, UnitOfWork

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


@dataclass(frozen=True, slots=True)
class IdempotencyPolicy:
    # How long a key and its outcome are kept: at least 24 h, the longest a caller's
    # retries may go on (Stripe keeps its keys as long), so a late retry still replays.
    retention: timedelta = timedelta(hours=24)
    # How long the first call holds the key before a retry may assume it died.
    lease: timedelta = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Scope:
    """One caller's request_id for one method and its parameters."""

    caller: str
    request_id: str
    method: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Claim:
    """What the key says to do: replay `replay`, or run (resuming `resource_id` if set).

    `replay` is the stored response exactly as first serialized; each use case decodes its own.
    """

    replay: bytes | None = None
    resource_id: str | None = None


def scope_of(caller: str, request_id: str, method: str, parameters: dict[str, Any]) -> Scope:
    return Scope(caller, request_id, method, fingerprint(method, parameters))


def optional_scope(
    caller: str, request_id: str, method: str, parameters: dict[str, Any]
) -> Scope | None:
    """The scope of an optional request_id: None when the caller sent none."""
    return scope_of(caller, request_id, method, parameters) if request_id else None


def parameters_of(request: DataclassInstance) -> dict[str, Any]:
    """What a request_id is bound to: every field of the request but the request_id."""
    parameters = request_fields(request)
    del parameters["request_id"]
    return parameters


def fingerprint(method: str, parameters: dict[str, Any]) -> str:
    canonical = json.dumps([method, parameters], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def fresh_key(
    scope: Scope, now: datetime, policy: IdempotencyPolicy, resource_id: str | None
) -> KeyRecord:
    """The key as a first call claims it: leased, no response yet."""
    return KeyRecord(
        caller=scope.caller,
        request_id=scope.request_id,
        method=scope.method,
        fingerprint=scope.fingerprint,
        resource_id=resource_id,
        response=None,
        locked_until=now + policy.lease,
    )


async def claim(
    uow: UnitOfWork,
    scope: Scope,
    now: datetime,
    policy: IdempotencyPolicy,
    resource_id: str | None = None,
) -> Claim:
    """Take the key inside the caller's transaction, or say why not.

    `resource_id`, when known up front, is stored with the claim, so a resumed
    attempt finds what the first one was working on.
    """
    fresh = fresh_key(scope, now, policy, resource_id)
    if await uow.idempotency_keys.insert_if_absent(fresh, now, now + policy.retention):
        return Claim()
    existing = await uow.idempotency_keys.get(scope.caller, scope.request_id)
    if existing is None:
        # Reaped between our insert and read; a retry will find it free.
        raise IdempotencyKeyInUse("request_id is being recycled; retry")
    if existing.method != scope.method or existing.fingerprint != scope.fingerprint:
        raise IdempotencyKeyReused(
            "request_id was already used with different parameters",
            metadata={"request_id": scope.request_id, "method": existing.method},
        )
    if existing.response is not None:
        idempotent_replays.add(1, {"method": scope.method})
        return Claim(replay=existing.response)
    lease_over = existing.locked_until is None or existing.locked_until <= now
    if lease_over and await uow.idempotency_keys.take_over(existing, now + policy.lease):
        return Claim(resource_id=existing.resource_id)
    raise IdempotencyKeyInUse(
        "a request with this request_id is still in progress; retry later",
        metadata={"request_id": scope.request_id},
    )
