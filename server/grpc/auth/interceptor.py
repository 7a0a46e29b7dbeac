"""One interceptor: who is calling (token), may they (policy), not too often (rate limit)."""

from __future__ import annotations

import logging
from typing import Any

from grpc import aio

from server.adapters.rate_limit import RateLimiter
from server.domain.errors import DomainError, PermissionDenied, RateLimited
from server.domain.principal import ANONYMOUS, Principal
from server.grpc.auth.policy import RULES, Rule, is_open
from server.grpc.auth.tokens import TokenVerifier
from server.grpc.caller import CURRENT
from server.grpc.unary import Handler, UnaryInterceptor
from server.service.audit.context import note_caller

_log = logging.getLogger(__name__)


class AuthInterceptor(UnaryInterceptor):
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

    def hides(self, method: str) -> bool:
        return method in self._hidden

    def applies_to(self, method: str) -> bool:
        return not is_open(method)

    def wrap(self, method: str, handler: Handler) -> Handler:
        return self._guard(method, handler)

    async def close(self) -> None:
        """Release the rate limiter's connection (Redis), at shutdown."""
        if self._limiter is not None:
            await self._limiter.close()

    def _guard(self, method: str, handler: Handler) -> Handler:
        rule = RULES.get(method)

        async def guarded(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            try:
                principal = await self._authorize(method, rule, context)
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

    async def _authorize(
        self, method: str, rule: Rule | None, context: aio.ServicerContext[Any, Any]
    ) -> Principal:
        principal = ANONYMOUS
        if self._verifier is not None:
            principal = await self._verifier.principal(_authorization(context))
        note_caller(principal)
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
