"""Request bytes that do not parse: INVALID_ARGUMENT, after authentication, never UNKNOWN.

grpc.aio deserializes a request before any interceptor's handler runs, and answers a
deserializer's exception with UNKNOWN, the exception's class in the message and an
ERROR traceback per call. Here the deserializer never raises: it hands on a marker,
and the call fails only when it reaches the method, so UNAUTHENTICATED and
PERMISSION_DENIED still come first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from server.domain.errors import FieldViolation, InvalidArgument
from server.grpc.errors import abort, status_for

if TYPE_CHECKING:
    _Interceptor = aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = aio.ServerInterceptor


class Unparseable:
    """What the method receives instead of a request whose bytes did not parse."""


UNPARSEABLE = Unparseable()


def _never_raising(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def deserialize(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except Exception:  # any failure to read the bytes is the client's, whatever its class
            return UNPARSEABLE

    return deserialize


def unparseable_request(method: str) -> InvalidArgument:
    return InvalidArgument(
        [FieldViolation("request", f"is not a valid {method.rsplit('/', 1)[-1]} request")],
        reason="MALFORMED_REQUEST",
    )


class RequestParsingInterceptor(_Interceptor):
    """Put last, innermost: its marker then passes authentication before it is refused."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        method = handler_call_details.method
        behavior: Any = handler.unary_unary

        async def parsed(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            if request is UNPARSEABLE:
                await abort(context, status_for(unparseable_request(method)))
            return await behavior(request, context)

        return grpc.unary_unary_rpc_method_handler(
            parsed,
            request_deserializer=_never_raising(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
