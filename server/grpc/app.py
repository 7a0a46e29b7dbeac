"""The gRPC server: our services, health per service, reflection, graceful drain."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from grpc import aio
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from payments.v1 import (
    analytics_pb2,
    analytics_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    payment_methods_pb2,
    payment_methods_pb2_grpc,
    payments_pb2,
    payments_pb2_grpc,
    receipts_pb2,
    receipts_pb2_grpc,
    refunds_pb2,
    refunds_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
)

from server.adapters.providers.resilience import BreakerState, CircuitBreaker
from server.config import TlsSettings
from server.grpc.analytics_servicer import AnalyticsServicer
from server.grpc.audit_interceptor import AuditInterceptor
from server.grpc.audit_servicer import AuditServicer
from server.grpc.auth.interceptor import AuthInterceptor
from server.grpc.errors import ErrorMappingInterceptor
from server.grpc.payment_method_servicer import PaymentMethodServicer
from server.grpc.payment_servicer import PaymentServicer
from server.grpc.receipt_servicer import ReceiptServicer
from server.grpc.refund_servicer import RefundServicer
from server.grpc.request_parsing import RequestParsingInterceptor
from server.grpc.subscription_servicer import SubscriptionServicer
from server.grpc.telemetry import TelemetryInterceptor
from server.grpc.unary import Chain
from server.observability.metrics import BREAKER_VALUES, gauges
from server.service.dependencies import Dependencies

_log = logging.getLogger(__name__)
SERVICE_NAMES = (
    payments_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name,
    payment_methods_pb2.DESCRIPTOR.services_by_name["PaymentMethodService"].full_name,
    refunds_pb2.DESCRIPTOR.services_by_name["RefundService"].full_name,
    subscriptions_pb2.DESCRIPTOR.services_by_name["SubscriptionService"].full_name,
    analytics_pb2.DESCRIPTOR.services_by_name["AnalyticsService"].full_name,
    receipts_pb2.DESCRIPTOR.services_by_name["ReceiptService"].full_name,
    audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
)
# Health entry that follows the provider's circuit breaker; the overall status
# does not, since every instance shares the provider and draining would not help.
PROVIDER_HEALTH = "payments.provider"
# Health entry that follows the outbox relay: NOT_SERVING while the broker is down
# (events wait in the outbox; payments go on). Overall status unaffected.
EVENTS_HEALTH = "payments.events"
# Health entry that follows the database probe. Unlike the two above, a database
# outage also turns the overall and per-service entries NOT_SERVING: no call can work.
DATABASE_HEALTH = "payments.database"
# Health entry that follows Redis when PAYMENTS_REDIS_URL is set. Overall unaffected:
# without Redis each instance limits rates on its own.
REDIS_HEALTH = "payments.redis"
# Health entry for liveness probes: SERVING while the event loop answers, whatever the
# database says, so that an outage of a dependency never restarts every pod.
LIVENESS_HEALTH = "payments.liveness"


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    """TLS; mutual TLS (a client certificate signed by the CA is required) with a client CA."""
    return grpc.ssl_server_credentials(
        [(tls.private_key, tls.certificate)],
        root_certificates=tls.client_ca,
        require_client_auth=tls.client_ca is not None,
    )


class GrpcServer:
    def __init__(
        self,
        deps: Dependencies,
        address: str,
        auth: AuthInterceptor | None = None,
        tls: TlsSettings | None = None,
        *,
        reuse_port: bool = False,
    ) -> None:
        # so_reuseport off: a second server on a taken port must fail, not share it. On
        # only for the processes of one group (server/process_group.py), whose supervisor
        # checked that the port was free before starting them.
        # Auth runs inside the error mapping, so that its refusals are rich statuses too;
        # request parsing inside auth, so that a caller without a token learns nothing more.
        self.server = aio.server(
            interceptors=[
                Chain(
                    [
                        TelemetryInterceptor(),
                        ErrorMappingInterceptor(),
                        AuditInterceptor(deps),
                        auth or AuthInterceptor(None),
                        RequestParsingInterceptor(),
                    ]
                )
            ],
            options=[("grpc.so_reuseport", int(reuse_port))],
        )
        payments_pb2_grpc.add_PaymentServiceServicer_to_server(PaymentServicer(deps), self.server)
        payment_methods_pb2_grpc.add_PaymentMethodServiceServicer_to_server(
            PaymentMethodServicer(deps), self.server
        )
        refunds_pb2_grpc.add_RefundServiceServicer_to_server(RefundServicer(deps), self.server)
        subscriptions_pb2_grpc.add_SubscriptionServiceServicer_to_server(
            SubscriptionServicer(deps), self.server
        )
        analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server(
            AnalyticsServicer(deps), self.server
        )
        audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(deps), self.server)
        receipts_pb2_grpc.add_ReceiptServiceServicer_to_server(ReceiptServicer(deps), self.server)
        self.health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = (
            self.server.add_secure_port(address, server_credentials(tls))
            if tls
            else self.server.add_insecure_port(address)
        )
        if self.port == 0:
            raise OSError(f"cannot listen on {address}")
        self.address = address.rsplit(":", 1)[0] + f":{self.port}"
        self._breaker: CircuitBreaker | None = None
        self._pending: set[asyncio.Future[None]] = set()

    async def start(self) -> None:
        await self.server.start()
        names = ("", *SERVICE_NAMES, DATABASE_HEALTH, LIVENESS_HEALTH)
        for name in (*names, *((PROVIDER_HEALTH,) if self._breaker else ())):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def follow_breaker(self, breaker: CircuitBreaker, provider: str) -> None:
        """Report the breaker as the PROVIDER_HEALTH entry: NOT_SERVING while it is open."""
        gauges.breaker_state[provider] = BREAKER_VALUES[breaker.state.value]

        def changed(state: BreakerState) -> None:
            gauges.breaker_state[provider] = BREAKER_VALUES[state.value]
            status = (
                health_pb2.HealthCheckResponse.NOT_SERVING
                if state is BreakerState.OPEN
                else health_pb2.HealthCheckResponse.SERVING
            )
            self._pending.add(asyncio.ensure_future(self.health.set(PROVIDER_HEALTH, status)))
            self._pending = {task for task in self._pending if not task.done()}

        breaker.on_change(changed)
        self._breaker = breaker

    def report(self, name: str, serving: bool) -> None:
        """Set the health entry `name` from a callback (no await needed)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        self._pending.add(asyncio.ensure_future(self.health.set(name, status)))
        self._pending = {task for task in self._pending if not task.done()}

    def report_database(self, reachable: bool) -> None:
        """The database probe's verdict: overall, every service and DATABASE_HEALTH follow it."""
        for name in ("", *SERVICE_NAMES, DATABASE_HEALTH):
            self.report(name, reachable)

    async def drain_and_stop(self, drain_seconds: float, grace_seconds: float = 10) -> None:
        """Report NOT_SERVING so balancers move away, then let calls in flight finish."""
        await self.health.enter_graceful_shutdown()
        _log.info("draining: NOT_SERVING for %.1f s before stopping", drain_seconds)
        await asyncio.sleep(drain_seconds)
        await self.server.stop(grace_seconds)

    async def stop_now(self) -> None:
        """Ctrl-C at a developer's terminal: no balancer to drain from, no grace."""
        await self.server.stop(0)


class StopSignal:
    """Set by SIGTERM or SIGINT; says which, since they stop differently."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.received: signal.Signals | None = None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._set, sig)

    def _set(self, sig: signal.Signals) -> None:
        self.received = self.received or sig
        self._event.set()

    async def wait(self) -> signal.Signals | None:
        await self._event.wait()
        return self.received
