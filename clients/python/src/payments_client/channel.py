"""`connect()`: an aio channel configured the way this service expects to be called."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import grpc
from grpc import aio
from payments.v1 import (
    analytics_pb2_grpc,
    audit_pb2_grpc,
    payment_methods_pb2_grpc,
    payments_pb2_grpc,
    receipts_pb2_grpc,
    refunds_pb2_grpc,
    subscriptions_pb2_grpc,
)

from payments_client.interceptors import BearerTokenInterceptor, RequestIdInterceptor, TokenSource
from payments_client.service_config import RetryPolicy, service_config

# Ping an idle-looking connection every minute while calls are open, so a peer that
# vanished (a killed pod, a dropped NAT entry) is noticed in 20 s, not at the deadline.
# The server accepts pings this often (gRPC's default minimum is 5 minutes only for
# connections without calls; none are sent then).
KEEPALIVE_SECONDS = 60
KEEPALIVE_TIMEOUT_SECONDS = 20


def target_of(address: str) -> str:
    """`host:port` becomes `dns:///host:port`: every A/AAAA record is a backend.

    A gRPC target with a scheme (`dns:///...`, `ipv4:10.0.0.1:50051,10.0.0.2:50051`,
    `unix:...`) is kept as it is.
    """
    _, colon, rest = address.partition(":")
    has_scheme = bool(colon) and not address.startswith("[") and not rest.isdigit()
    return address if has_scheme else f"dns:///{address}"


def channel_options(
    deadlines: Mapping[str, float] | None = None, retry: RetryPolicy | None = None
) -> list[tuple[str, str | int]]:
    return [
        ("grpc.service_config", json.dumps(service_config(deadlines, retry))),
        ("grpc.enable_retries", 1),
        ("grpc.keepalive_time_ms", KEEPALIVE_SECONDS * 1000),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_SECONDS * 1000),
        ("grpc.keepalive_permit_without_calls", 0),
    ]


def connect(
    address: str,
    *,
    token: TokenSource | None = None,
    credentials: grpc.ChannelCredentials | None = None,
    deadlines: Mapping[str, float] | None = None,
    retry: RetryPolicy | None = None,
) -> aio.Channel:
    """An aio channel to `address` (`host:port` or a gRPC target such as `dns:///...`).

    `token` is called before every call (sync or async) for the bearer token;
    `credentials` makes it TLS (plaintext without). Writes sent without a request_id
    get one (see `payments_client.interceptors`).
    """
    interceptors: list[Any] = [RequestIdInterceptor()]
    if token is not None:
        interceptors.append(BearerTokenInterceptor(token))
    options = channel_options(deadlines, retry)
    if credentials is None:
        return aio.insecure_channel(target_of(address), options, interceptors=interceptors)
    return aio.secure_channel(target_of(address), credentials, options, interceptors=interceptors)


class PaymentsClient:
    """Every service's stub on one channel: `client.payments.CreatePayment(...)`."""

    def __init__(self, channel: aio.Channel) -> None:
        self.channel = channel
        self.payments = payments_pb2_grpc.PaymentServiceStub(channel)
        self.payment_methods = payment_methods_pb2_grpc.PaymentMethodServiceStub(channel)
        self.refunds = refunds_pb2_grpc.RefundServiceStub(channel)
        self.subscriptions = subscriptions_pb2_grpc.SubscriptionServiceStub(channel)
        self.analytics = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        self.receipts = receipts_pb2_grpc.ReceiptServiceStub(channel)
        self.audit = audit_pb2_grpc.AuditServiceStub(channel)

    async def close(self) -> None:
        await self.channel.close(None)

    async def __aenter__(self) -> PaymentsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
