"""Request bytes that do not parse: INVALID_ARGUMENT, after authentication, never UNKNOWN.

grpc.aio deserializes a request before any interceptor's handler runs, and answers a
deserializer's exception with UNKNOWN, the exception's class in the message and an
ERROR traceback per call. Here the deserializer never raises: it hands on a marker,
and the call fails only when it reaches the method, so UNAUTHENTICATED and
PERMISSION_DENIED still come first.
"""

from __future__ import annotations

from typing import Any

from grpc import aio

from server.domain.errors import FieldViolation, InvalidArgument
from server.grpc.errors import abort, status_for
from server.grpc.unary import Deserializer, Handler, UnaryInterceptor


class Unparseable:
    """What the method receives instead of a request whose bytes did not parse."""


UNPARSEABLE = Unparseable()


def _never_raising(deserializer: Deserializer) -> Deserializer:
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


class RequestParsingInterceptor(UnaryInterceptor):
    """Put last, innermost: its marker then passes authentication before it is refused."""

    def reads_with(self, deserializer: Deserializer | None) -> Deserializer | None:
        return None if deserializer is None else _never_raising(deserializer)

    def wrap(self, method: str, handler: Handler) -> Handler:
        async def parsed(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            if request is UNPARSEABLE:
                await abort(context, status_for(unparseable_request(method)))
            return await handler(request, context)

        return parsed
