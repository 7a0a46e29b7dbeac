"""One interceptor: who is calling (token), may they (policy), not too often (rate limit)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from server.adapters.rate_limit import RateLimiter
from server.domain.errors import DomainError, PermissionDenied, RateLimited
from server.domain.principal import ANONYMOUS, Principal
from server.grpc.auth.policy import RULES, is_open
from server.grpc.auth.tokens import TokenVerifier
from server.grpc.caller import CURRENT
from server.grpc.errors import Handler
from server.service.audit.context import note_caller

_log = logging.getLogger(__name__)

if TYPE_CHECKING:
    _Interceptor = aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = aio.ServerInterceptor


class AuthInterceptor(_Interceptor):
    """Put after ErrorMappingInterceptor, so that its errors become rich statuses.

    Without a verifier (open development mode) every caller is ANONYMOUS.
    """

    def __init__(
        self,
        verifier: TokenVerifier | None,
        limiter: RateLimiter | None = None,
        hidden: frozenset[str] = frozenset(),
    ) -> None:
        self._verifier = verifier
        self._limiter = limiter
        # Methods that do not exist in this deployment (SimulatePayment in production).
        self._hidden = hidden

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method
        if method in self._hidden:
            # No handler: grpc answers UNIMPLEMENTED, as for any method it does not know.
            return None  # type: ignore[return-value]
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or is_open(method):
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self._guard(method, handler.unary_unary),  # type: ignore[arg-type]
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def close(self) -> None:
        """Release the rate limiter's connection (Redis), at shutdown."""
        if self._limiter is not None:
            await self._limiter.close()

    def _guard(self, method: str, handler: Handler) -> Handler:
        async def guarded(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            try:
                principal = await self._authorize(method, context)
            except DomainError as error:
                # Says why, never with the token: messages never quote it.
                _log.info("refused %s: %s", method, error.message)
                raise
            if _log.isEnabledFor(logging.DEBUG):
                _log.debug(
                    "%s by %s (%s)", method, principal.scope, ",".join(sorted(principal.roles))
                )
            token = CURRENT.set(principal)
            try:
                return await handler(request, context)
            finally:
                CURRENT.reset(token)

        return guarded

    async def _authorize(self, method: str, context: aio.ServicerContext[Any, Any]) -> Principal:
        principal = ANONYMOUS
        if self._verifier is not None:
            principal = await self._verifier.principal(_authorization(context))
        note_caller(principal)
        rule = RULES.get(method)
        if rule is None or not rule.roles & principal.roles:
            raise PermissionDenied(f"{method.rsplit('/', 1)[-1]} is not allowed for this caller")
        if rule.mutating and self._limiter is not None:
            wait = await self._limiter.take(principal.scope)
            if wait > 0:
                raise RateLimited(f"too many requests: retry in {wait:.3f} s", retry_after=wait)
        return principal


def _authorization(context: aio.ServicerContext[Any, Any]) -> list[str]:
    # At run time the metadata is a tuple of (key, value) pairs, whatever the stubs say.
    metadata: Any = context.invocation_metadata() or ()
    return [str(value) for key, value in metadata if key == "authorization"]
