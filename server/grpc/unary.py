"""The one way our interceptors wrap a unary handler: telemetry, auth, error mapping and
request parsing each say only which methods they apply to and what they wrap around the
call (and, for parsing, how the request's bytes are read)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

Handler = Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]
Deserializer = Callable[[bytes], Any]

if TYPE_CHECKING:
    _Interceptor = aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = aio.ServerInterceptor


class UnaryInterceptor:
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


class Chain(_Interceptor):
    """Our interceptors as one, each method's wrapped handler built once.

    gRPC runs an interceptor's `intercept_service` on every call; the wrapping only
    depends on the method, so the chain keeps what the first call built. The first
    interceptor is the outermost.
    """

    def __init__(self, interceptors: Sequence[UnaryInterceptor]) -> None:
        self._interceptors = tuple(interceptors)
        self._built: dict[str, tuple[object, grpc.RpcMethodHandler[Any, Any] | None]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        built = self._built.get(method)
        if built is None or built[0] is not handler:
            built = (handler, self._build(method, handler))
            self._built[method] = built
        return built[1]  # type: ignore[return-value]

    def _build(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any] | None
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if any(interceptor.hides(method) for interceptor in self._interceptors):
            return None
        if handler is None or handler.unary_unary is None:
            return handler
        unary: Handler = handler.unary_unary  # type: ignore[assignment]
        deserializer = handler.request_deserializer
        for interceptor in reversed(self._interceptors):
            if interceptor.applies_to(method):
                unary = interceptor.wrap(method, unary)
                deserializer = interceptor.reads_with(deserializer)
        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
