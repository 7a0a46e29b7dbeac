"""Opens the audit record of each call: who (named by the auth interceptor), which RPC,
request id and resource; refusals are written here, effects by the unit of work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from server.domain.errors import DomainError
from server.grpc.auth.policy import RULES, is_open
from server.grpc.errors import Handler, status_code_for
from server.service.audit.context import AuditCall, begin_call, end_call
from server.service.audit.refusals import record_refusal
from server.service.dependencies import Dependencies

if TYPE_CHECKING:
    _Interceptor = aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = aio.ServerInterceptor

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


class AuditInterceptor(_Interceptor):
    """Put between the error mapping and the auth interceptor."""

    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or is_open(method):
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self._audited(method, handler.unary_unary),  # type: ignore[arg-type]
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _audited(self, method: str, handler: Handler) -> Handler:
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
