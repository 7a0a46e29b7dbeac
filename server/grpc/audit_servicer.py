"""AuditService over gRPC: the audit trail for admins."""

from __future__ import annotations

from typing import Any

from grpc import aio
from payments.v1 import audit_pb2, audit_pb2_grpc

from server.adapters.codec import timestamp
from server.domain.audit import AuditRecord
from server.grpc.timestamps import optional_time
from server.service.audit.provider_exchanges import list_provider_exchanges
from server.service.audit.queries import audit_query, list_audit_events
from server.service.dependencies import Dependencies

Context = aio.ServicerContext[Any, Any]


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


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    async def ListAuditEvents(
        self, request: audit_pb2.ListAuditEventsRequest, context: Context
    ) -> audit_pb2.ListAuditEventsResponse:
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
        found, token = await list_audit_events(self._deps, query, request.page_token)
        return audit_pb2.ListAuditEventsResponse(
            audit_events=[audit_event_to_proto(r) for r in found], next_page_token=token
        )

    async def ListProviderExchanges(
        self, request: audit_pb2.ListProviderExchangesRequest, context: Context
    ) -> audit_pb2.ListProviderExchangesResponse:
        found = await list_provider_exchanges(self._deps, request.payment_id)
        return audit_pb2.ListProviderExchangesResponse(
            provider_exchanges=[
                audit_pb2.ProviderExchange(
                    id=e.id,
                    create_time=timestamp(e.create_time),
                    provider=e.provider,
                    method=e.method,
                    path=e.path,
                    status_code=e.status_code,
                    provider_payment_id=e.provider_payment_id,
                    provider_refund_id=e.provider_refund_id,
                    request_body=e.request_body,
                    response_body=e.response_body,
                )
                for e in found
            ]
        )
