"""Timeouts, bounded retries with jittered backoff, and a circuit breaker around a provider.

Every write we send carries an idempotency key, so repeating it after a
timeout or a 5xx cannot charge twice; reads are safe anyway.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, TypeVar

from opentelemetry.trace import SpanKind
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from server.config import ResiliencePolicy
from server.domain.errors import ProviderUnavailable
from server.observability.metrics import provider_duration, provider_errors
from server.observability.tracing import tracer, tracing_enabled
from server.service.provider import (
    PaymentMethodDeclined,
    PaymentProvider,
    ProviderRejected,
)

T = TypeVar("T")
_log = logging.getLogger(__name__)


class TransientProviderError(Exception):
    """A failure worth repeating: the connection broke, the provider was busy or erred."""


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after `threshold` failures in a row; after `reset_after_s` lets one probe through."""

    def __init__(
        self,
        threshold: int,
        reset_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = threshold
        self._reset_after_s = reset_after_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._listeners: list[Callable[[BreakerState], None]] = []

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._reset_after_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def on_change(self, listener: Callable[[BreakerState], None]) -> None:
        self._listeners.append(listener)

    def check(self) -> None:
        """Fail fast if a call now would be refused; takes nothing (see `ensure_closed`)."""
        state = self.state
        if state is BreakerState.OPEN or (state is BreakerState.HALF_OPEN and self._probing):
            self._refuse()

    def ensure_closed(self) -> None:
        """Fail fast while open; in half-open let exactly one probe through."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return
        self._refuse()

    def _refuse(self) -> None:
        assert self._opened_at is not None
        wait = max(0.0, self._reset_after_s - (self._clock() - self._opened_at))
        raise ProviderUnavailable(
            f"the payment provider is failing; calls resume in {wait:.0f} s",
            metadata={"retry_after_seconds": f"{wait:.0f}"},
        )

    def record_success(self) -> None:
        before = self.state
        self._failures, self._opened_at, self._probing = 0, None, False
        self._notify(before)

    def record_failure(self) -> None:
        before = self.state
        self._failures += 1
        if self._probing or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._probing = False
        self._notify(before)

    def release_probe(self) -> None:
        """The probe ended without a verdict (cancelled, or a bug): let another one try."""
        self._probing = False

    def _notify(self, before: BreakerState) -> None:
        after = self.state
        if after is not before:
            _log.warning("provider circuit breaker %s -> %s", before.value, after.value)
            for listener in self._listeners:
                listener(after)


# What another attempt may fix: the provider's answer never came, or came as "try again".
_RETRYABLE = (TransientProviderError, TimeoutError, ProviderUnavailable)


class ResilientProvider:
    """Wraps any provider; a call fails with ProviderUnavailable once it cannot succeed.

    Typed as the PaymentProvider port wherever it is used (Dependencies.provider).
    """

    def __init__(
        self, inner: PaymentProvider, policy: ResiliencePolicy, breaker: CircuitBreaker
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.issues_client_secrets = inner.issues_client_secrets
        self.policy = policy
        self.breaker = breaker

    def ensure_available(self) -> None:
        self.breaker.check()

    def __getattr__(self, name: str) -> Any:
        """Every operation of the wrapped provider, under the policy; other attributes as is.

        Generic on purpose: a new provider operation needs no pass-through here.
        """
        attribute = getattr(self.inner, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(attribute):
            return attribute

        async def operation(*args: Any, **kwargs: Any) -> Any:
            return await self._call(name, lambda: attribute(*args, **kwargs))

        return operation

    async def _attempt(self, operation: Callable[[], Awaitable[T]]) -> T:
        async with asyncio.timeout(self.policy.call_timeout_s):
            return await operation()

    async def _retried(self, operation: Callable[[], Awaitable[T]]) -> T:
        """The attempts after a first that failed, with backoff.

        The first attempt goes without tenacity's machinery, which costs more than the
        rest of a call's overhead; the waits are those tenacity would have made from the
        first attempt on (the first here, then doubling under the cap).
        """
        policy = self.policy
        await asyncio.sleep(random.uniform(0, min(policy.backoff_max_s, policy.backoff_initial_s)))
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(policy.attempts - 1),
            wait=wait_random_exponential(
                multiplier=policy.backoff_initial_s * 2, max=policy.backoff_max_s
            ),
            retry=retry_if_exception_type(_RETRYABLE),
            reraise=True,
        ):
            with attempt:
                result = await self._attempt(operation)
        return result

    async def run(self, operation: Callable[[], Awaitable[T]], name: str = "billing") -> T:
        """One provider call under the same retries, timeout and breaker as the payment calls."""
        return await self._call(name, operation)

    async def _call(self, name: str, operation: Callable[[], Awaitable[T]]) -> T:
        """`operation` under the policy, as one span and one latency sample named `name`."""
        if not tracing_enabled():
            return await self._measured(name, operation)
        with tracer().start_as_current_span(
            f"provider {name}",
            kind=SpanKind.CLIENT,
            attributes={"payments.provider": self.name, "payments.provider.operation": name},
        ):
            return await self._measured(name, operation)

    async def _measured(self, name: str, operation: Callable[[], Awaitable[T]]) -> T:
        started, result_label = time.perf_counter(), "error"
        try:
            result = await self._resilient(operation)
            result_label = "ok"
            return result
        except (ProviderRejected, PaymentMethodDeclined):
            result_label = "refused"
            raise
        except ProviderUnavailable:
            provider_errors.add(1, {"provider": self.name, "operation": name})
            raise
        finally:
            provider_duration.record(
                time.perf_counter() - started,
                {"provider": self.name, "operation": name, "result": result_label},
            )

    async def _resilient(self, operation: Callable[[], Awaitable[T]]) -> T:
        self.breaker.ensure_closed()
        try:
            try:
                result = await self._attempt(operation)
            except _RETRYABLE:
                if self.policy.attempts < 2:
                    raise
                result = await self._retried(operation)
        except _RETRYABLE as error:
            self.breaker.record_failure()
            raise ProviderUnavailable(
                "the payment provider did not answer; the outcome is not known yet"
            ) from error
        except (ProviderRejected, PaymentMethodDeclined):
            # A refusal or a decline is an answer: the provider is up.
            self.breaker.record_success()
            raise
        except BaseException:
            self.breaker.release_probe()
            raise
        self.breaker.record_success()
        return result
