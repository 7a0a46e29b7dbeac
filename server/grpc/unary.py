"""The one way our interceptors wrap a unary handler: telemetry, auth, error mapping and
request parsing each say only which methods they apply to and what they wrap around the
call (and, for parsing, how the request's bytes are read)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

Handler = Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]
Deserializer = Callable[[bytes], Any]

if TYPE_CHECKING:
    _Interceptor = aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = aio.ServerInterceptor


class UnaryInterceptor(_Interceptor):
    def hides(self, method: str) -> bool:
        """Whether `method` is not served at all: gRPC answers UNIMPLEMENTED, as for any
        method it does not know."""
        del method
        return False

    def applies_to(self, method: str) -> bool:
        """Whether `wrap` applies to `method`; others pass through untouched."""
        del method
        return True

    def wrap(self, method: str, handler: Handler) -> Handler:
        raise NotImplementedError

    def reads_with(self, deserializer: Deserializer | None) -> Deserializer | None:
        """How the wrapped method reads its request bytes; the handler's own way by default."""
        return deserializer

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method
        if self.hides(method):
            return None  # type: ignore[return-value]
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or not self.applies_to(method):
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self.wrap(method, handler.unary_unary),  # type: ignore[arg-type]
            request_deserializer=self.reads_with(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
