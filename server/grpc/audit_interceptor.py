"""Opens the audit record of each call: who (named by the auth interceptor), which RPC,
request id and resource; refusals are written here, effects by the unit of work."""

from __future__ import annotations

from typing import Any

import grpc
from grpc import aio

from server.domain.errors import DomainError
from server.grpc.auth.policy import RULES, is_open
from server.grpc.errors import status_code_for
from server.grpc.unary import Handler, UnaryInterceptor
from server.service.audit.context import AuditCall, begin_call, end_call
from server.service.audit.refusals import record_refusal
from server.service.dependencies import Dependencies

# Refusals of reads are audited too when they are about who may call.
DENIALS = frozenset({grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED})
_PREFIX = "/payments.v1."


def resource_id_of(request: Any) -> str:
    """The resource a request names, where it names one."""
    for name in _naming(type(request))[1]:
        value = getattr(request, name, "")
        if isinstance(value, str) and value:
            return value
    return ""


def request_id_of(request: Any) -> str:
    return str(getattr(request, "request_id", "")) if _naming(type(request))[0] else ""


_REQUEST_ID, _RESOURCE_IDS = ("request_id",), ("id", "payment_id")
_NAMING: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _naming(kind: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Of request_id and the fields that name a resource, those a request of this type
    may have, found once per type: asking a message for a field it lacks raises inside."""
    found = _NAMING.get(kind)
    if found is None:
        fields = getattr(getattr(kind, "DESCRIPTOR", None), "fields_by_name", None)
        if fields is None:  # not a message: ask it
            found = (_REQUEST_ID, _RESOURCE_IDS)
        else:
            found = (
                tuple(name for name in _REQUEST_ID if name in fields),
                tuple(name for name in _RESOURCE_IDS if name in fields),
            )
        _NAMING[kind] = found
    return found


class AuditInterceptor(UnaryInterceptor):
    """Put between the error mapping and the auth interceptor."""

    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    def applies_to(self, method: str) -> bool:
        return not is_open(method)

    def wrap(self, method: str, handler: Handler) -> Handler:
        rule = RULES.get(method)
        mutating = rule is not None and rule.mutating
        action = method.removeprefix(_PREFIX)

        async def audited(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            call = AuditCall(
                channel="grpc",
                action=action,
                request_id=request_id_of(request),
                resource_id=resource_id_of(request),
            )
            token = begin_call(call)
            try:
                return await handler(request, context)
            except DomainError as error:
                code = status_code_for(error)
                if mutating or code in DENIALS:
                    await record_refusal(self._deps, call, code.name, error.reason)
                raise
            finally:
                end_call(token)

        return audited
