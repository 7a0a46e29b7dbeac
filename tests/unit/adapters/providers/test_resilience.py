"""Retries, timeouts and the circuit breaker, with a scripted provider and a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from server.adapters.providers.resilience import (
    BreakerState,
    CircuitBreaker,
    ResilientProvider,
    TransientProviderError,
)
from server.config import ResiliencePolicy
from server.domain.errors import ProviderUnavailable
from server.service.provider import (
    CreateAtProvider,
    ProviderPayment,
    ProviderRejected,
    ProviderStatus,
)

OK = ProviderPayment("pi_1", ProviderStatus.SUCCEEDED, 100)
FAST = ResiliencePolicy(
    attempts=3, backoff_initial_s=0.001, backoff_max_s=0.002, call_timeout_s=0.2
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """A provider whose retrieve_payment follows a script of outcomes."""

    name = "scripted"
    issues_client_secrets = False

    def __init__(self, *script: BaseException | ProviderPayment | float) -> None:
        self.script = list(script)
        self.calls = 0

    def ensure_available(self) -> None:
        return None

    async def retrieve_payment(self, provider_payment_id: str) -> ProviderPayment:
        self.calls += 1
        step = self.script.pop(0) if self.script else OK
        if isinstance(step, float):
            await asyncio.sleep(step)
            return OK
        if isinstance(step, BaseException):
            raise step
        return step

    async def create_payment(self, request: CreateAtProvider, key: str) -> ProviderPayment:
        raise NotImplementedError

    async def confirm_payment(self, pid: str, method: str, key: str) -> ProviderPayment:
        raise NotImplementedError

    async def capture_payment(self, pid: str, amount: int, key: str) -> ProviderPayment:
        raise NotImplementedError

    async def cancel_payment(self, pid: str, key: str) -> ProviderPayment:
        raise NotImplementedError


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """Read afresh: a property mypy would otherwise narrow across the test."""
    return breaker.state


def resilient(
    inner: Scripted, threshold: int = 3, clock: Callable[[], float] | None = None
) -> ResilientProvider:
    breaker = CircuitBreaker(threshold, 30.0, clock or FakeClock())
    return ResilientProvider(inner, FAST, breaker)  # type: ignore[arg-type]


async def test_transient_errors_are_retried_until_success() -> None:
    inner = Scripted(TransientProviderError("503"), TransientProviderError("reset"), OK)
    assert await resilient(inner).retrieve_payment("pi_1") == OK
    assert inner.calls == 3


async def test_retries_are_bounded_then_unavailable() -> None:
    inner = Scripted(*(TransientProviderError("503") for _ in range(5)))
    with pytest.raises(ProviderUnavailable) as error:
        await resilient(inner).retrieve_payment("pi_1")
    assert inner.calls == 3
    assert error.value.reason == "PROVIDER_UNAVAILABLE"


async def test_a_slow_call_times_out_and_is_retried() -> None:
    inner = Scripted(5.0, OK)
    assert await resilient(inner).retrieve_payment("pi_1") == OK
    assert inner.calls == 2


async def test_refusals_are_not_retried_and_do_not_trip_the_breaker() -> None:
    inner = Scripted(*(ProviderRejected("no such payment") for _ in range(10)))
    provider = resilient(inner, threshold=2)
    for _ in range(4):
        with pytest.raises(ProviderRejected):
            await provider.retrieve_payment("pi_1")
    assert inner.calls == 4
    assert state_of(provider.breaker) is BreakerState.CLOSED


async def test_breaker_opens_fails_fast_then_probes_once() -> None:
    clock = FakeClock()
    inner = Scripted(*(TransientProviderError("down") for _ in range(6)))
    provider = resilient(inner, threshold=2, clock=clock)
    seen: list[BreakerState] = []
    provider.breaker.on_change(seen.append)
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            await provider.retrieve_payment("pi_1")
    assert state_of(provider.breaker) is BreakerState.OPEN
    calls = inner.calls
    with pytest.raises(ProviderUnavailable) as fast:
        await provider.retrieve_payment("pi_1")
    assert inner.calls == calls, "an open breaker does not call the provider"
    assert fast.value.metadata["retry_after_seconds"] == "30"
    with pytest.raises(ProviderUnavailable):
        provider.ensure_available()
    clock.now += 31
    assert state_of(provider.breaker) is BreakerState.HALF_OPEN
    provider.ensure_available()  # a look, not the probe
    provider.ensure_available()
    inner.script = [OK]
    assert await provider.retrieve_payment("pi_1") == OK
    assert state_of(provider.breaker) is BreakerState.CLOSED
    assert seen == [BreakerState.OPEN, BreakerState.CLOSED]


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 10.0, clock)
    breaker.record_failure()
    clock.now += 11
    breaker.ensure_closed()  # the probe
    with pytest.raises(ProviderUnavailable):
        breaker.ensure_closed()
    breaker.record_failure()  # the probe failed: open again for a full period
    assert state_of(breaker) is BreakerState.OPEN
    clock.now += 5
    with pytest.raises(ProviderUnavailable):
        breaker.ensure_closed()
    clock.now += 6
    breaker.ensure_closed()
    breaker.release_probe()
    breaker.ensure_closed()  # a released probe lets the next one through


def test_successes_reset_the_failure_count() -> None:
    breaker = CircuitBreaker(3, 10.0, FakeClock())
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()
    for _ in range(2):
        breaker.record_failure()
    assert state_of(breaker) is BreakerState.CLOSED
    breaker.record_failure()
    assert state_of(breaker) is BreakerState.OPEN
