"""Who is acting, carried beside the call, and the effects of the open transaction.

The gRPC audit interceptor and the command consumer open an `AuditCall` for each
call; the auth interceptor names the caller in it. Repositories report what they
write (`note_effect`) to the transaction's effect list, and the unit of work
writes one audit record per effect just before it commits, in that transaction:
an effect and its record commit together or not at all. None of this is the
money pipeline's business.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field

from server.domain.principal import Principal


@dataclass(slots=True)
class AuditCall:
    channel: str
    action: str
    request_id: str = ""
    resource_id: str = ""
    trace_id: str = ""
    principal: Principal | None = None
    calling_service: str = ""


@dataclass(frozen=True, slots=True)
class Effect:
    resource_type: str
    resource_id: str
    state: str
    details: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class _Effects:
    items: list[Effect] = field(default_factory=list)


_CALL: ContextVar[AuditCall | None] = ContextVar("audit_call", default=None)
_EFFECTS: ContextVar[_Effects | None] = ContextVar("audit_effects", default=None)


def begin_call(call: AuditCall) -> Token[AuditCall | None]:
    return _CALL.set(call)


def end_call(token: Token[AuditCall | None]) -> None:
    _CALL.reset(token)


def current_call() -> AuditCall | None:
    return _CALL.get()


def note_caller(principal: Principal) -> None:
    """The verified caller, as soon as it is known (also when the policy then refuses)."""
    call = _CALL.get()
    if call is not None:
        call.principal = principal


def open_effects() -> Token[_Effects | None]:
    """A transaction begins: its own list of effects."""
    return _EFFECTS.set(_Effects())


def close_effects(token: Token[_Effects | None]) -> None:
    _EFFECTS.reset(token)


def note_effect(resource_type: str, resource_id: str, state: str, **details: str) -> None:
    """A repository wrote this resource in the open transaction."""
    effects = _EFFECTS.get()
    if effects is not None and _CALL.get() is not None:
        kept = tuple((key, value) for key, value in details.items() if value)
        effects.items.append(Effect(resource_type, resource_id, state, kept))


def take_effects() -> list[Effect]:
    """The transaction's effects, once: called right before its commit."""
    effects = _EFFECTS.get()
    if effects is None:
        return []
    taken, effects.items = effects.items, []
    return taken
