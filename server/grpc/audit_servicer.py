"""AuditService over gRPC: the audit trail for admins."""

from __future__ import annotations

from collections.abc import Awaitable

from payments.v1 import audit_pb2, audit_pb2_grpc

from server.adapters.codec import timestamp
from server.domain.audit import AuditRecord
from server.domain.principal import Principal
from server.domain.provider_exchange import ProviderExchange
from server.grpc import methods as rpc
from server.grpc.timestamps import optional_time
from server.service.audit.provider_exchanges import list_provider_exchanges
from server.service.audit.queries import audit_query, list_audit_events
from server.service.dependencies import Dependencies


def audit_event_to_proto(record: AuditRecord) -> audit_pb2.AuditEvent:
    return audit_pb2.AuditEvent(
        id=record.id,
        occur_time=timestamp(record.occur_time),
        channel=record.channel,
        action=record.action,
        subject=record.subject,
        issuer=record.issuer,
        roles=list(record.roles),
        calling_service=record.calling_service,
        resource_type=record.resource_type,
        resource_id=record.resource_id,
        request_id=record.request_id,
        outcome=record.outcome,
        reason=record.reason,
        trace_id=record.trace_id,
        details=record.details,
    )


def exchange_to_proto(exchange: ProviderExchange) -> audit_pb2.ProviderExchange:
    return audit_pb2.ProviderExchange(
        id=exchange.id,
        create_time=timestamp(exchange.create_time),
        provider=exchange.provider,
        method=exchange.method,
        path=exchange.path,
        status_code=exchange.status_code,
        provider_payment_id=exchange.provider_payment_id,
        provider_refund_id=exchange.provider_refund_id,
        request_body=exchange.request_body,
        response_body=exchange.response_body,
    )


def _list_events(
    deps: Dependencies, request: audit_pb2.ListAuditEventsRequest, _: Principal
) -> Awaitable[rpc.Page[AuditRecord]]:
    query = audit_query(
        request.page_size,
        resource_id=request.resource_id,
        subject=request.subject,
        action=request.action,
        request_id=request.request_id,
        outcome=request.outcome,
        start_time=optional_time(request, "start_time"),
        end_time=optional_time(request, "end_time"),
    )
    return list_audit_events(deps, query, request.page_token)


def _list_exchanges(
    deps: Dependencies, request: audit_pb2.ListProviderExchangesRequest, _: Principal
) -> Awaitable[list[ProviderExchange]]:
    return list_provider_exchanges(deps, request.payment_id)


def _exchanges(found: list[ProviderExchange]) -> audit_pb2.ListProviderExchangesResponse:
    return audit_pb2.ListProviderExchangesResponse(
        provider_exchanges=[exchange_to_proto(exchange) for exchange in found]
    )


class AuditServicer(rpc.Servicer, audit_pb2_grpc.AuditServiceServicer):
    ListAuditEvents = rpc.read(
        _list_events,
        rpc.page(audit_pb2.ListAuditEventsResponse, "audit_events", audit_event_to_proto),
    )
    ListProviderExchanges = rpc.read(_list_exchanges, _exchanges)
