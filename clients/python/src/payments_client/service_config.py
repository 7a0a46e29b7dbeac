"""The gRPC service config this service expects of its callers, as a dict.

It is plain JSON, so other languages can take it from `json.dumps(service_config())`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import payments.v1
from google.protobuf.descriptor import MethodDescriptor

# Seconds. A write may wait on the provider: the server tries it up to 3 times with a
# 10 s timeout each before answering UNAVAILABLE, so a write gets that long and a bit.
WRITE_SECONDS = 35.0
READ_SECONDS = 5.0
# Whole-range sums over many payments, and a reconciler pass over the provider.
SLOW_READS = {
    "payments.v1.AnalyticsService/GetPaymentStats": 30.0,
    "payments.v1.AnalyticsService/GetRevenueSeries": 30.0,
    "payments.v1.PaymentService/ReconcilePayments": 120.0,
    "payments.v1.AuditService/ListAuditEvents": 30.0,
    "payments.v1.AuditService/ListProviderExchanges": 30.0,
}


@dataclass(frozen=True)
class RetryPolicy:
    """gRPC's own retries: the same serialized request again, so the same request_id.

    UNAVAILABLE: the server could not be reached, was stopping, or the provider is
    away. ABORTED: the first call with this request_id is still running
    (IDEMPOTENCY_KEY_IN_USE). Both are safe to repeat *because* the bytes are equal.
    """

    max_attempts: int = 5  # gRPC caps it at 5
    initial_backoff_seconds: float = 0.2
    max_backoff_seconds: float = 3.0
    backoff_multiplier: float = 2.0
    codes: tuple[str, ...] = ("UNAVAILABLE", "ABORTED")

    def as_json(self) -> dict[str, Any]:
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": f"{self.initial_backoff_seconds}s",
            "maxBackoff": f"{self.max_backoff_seconds}s",
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": list(self.codes),
        }


def methods() -> Iterator[MethodDescriptor]:
    """Every method of every service in the stubs, new ones included."""
    for module in sorted(m.name for m in pkgutil.iter_modules(payments.v1.__path__)):
        if module.endswith("_pb2"):
            file = importlib.import_module(f"payments.v1.{module}").DESCRIPTOR
            for service in file.services_by_name.values():
                yield from service.methods


def is_write(method: MethodDescriptor) -> bool:
    """Writes are the methods whose request carries a request_id."""
    return "request_id" in method.input_type.fields_by_name


def full_name(method: MethodDescriptor) -> str:
    return f"{method.containing_service.full_name}/{method.name}"


def default_deadlines() -> dict[str, float]:
    """`service/Method` -> seconds, for every method of the API."""
    return {
        full_name(m): SLOW_READS.get(full_name(m), WRITE_SECONDS if is_write(m) else READ_SECONDS)
        for m in methods()
    }


def service_config(
    deadlines: Mapping[str, float] | None = None,
    retry: RetryPolicy | None = None,
    *,
    wait_for_ready: bool = True,
) -> dict[str, Any]:
    """round_robin over every resolved address; per method a deadline and the retry policy.

    `deadlines` overrides some of `default_deadlines()`. With `wait_for_ready` a call
    made while no server is reachable waits (within its deadline) instead of failing at
    once: a restart or a rolling update costs latency, not errors.
    """
    chosen = {**default_deadlines(), **(deadlines or {})}
    retry_json = (retry or RetryPolicy()).as_json()
    method_configs = []
    for name, seconds in sorted(chosen.items()):
        service, _, method = name.partition("/")
        method_configs.append(
            {
                "name": [{"service": service, "method": method}],
                "timeout": f"{seconds}s",
                "waitForReady": wait_for_ready,
                "retryPolicy": retry_json,
            }
        )
    return {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": method_configs,
        # Retries stop while most calls fail (a token bucket per channel: each failure
        # takes one token, each success gives a tenth back; below half, no retries), so
        # a service that is down is not hit with five times its load.
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
    }
