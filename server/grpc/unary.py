"""The one way our interceptors wrap a unary handler: telemetry, auth and error mapping
each say only which methods they apply to and what they wrap around the call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

Handler = Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]

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
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
