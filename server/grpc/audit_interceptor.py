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
    for name in ("id", "payment_id"):
        value = getattr(request, name, "")
        if isinstance(value, str) and value:
            return value
    return ""


class AuditInterceptor(UnaryInterceptor):
    """Put between the error mapping and the auth interceptor."""

    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    def applies_to(self, method: str) -> bool:
        return not is_open(method)

    def wrap(self, method: str, handler: Handler) -> Handler:
        rule = RULES.get(method)
        mutating = rule is not None and rule.mutating

        async def audited(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            call = AuditCall(
                channel="grpc",
                action=method.removeprefix(_PREFIX),
                request_id=str(getattr(request, "request_id", "")),
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
