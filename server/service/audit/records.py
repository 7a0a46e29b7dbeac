"""Audit records from an audited call: one per effect, or one for a refusal."""

from __future__ import annotations

from datetime import datetime

from server.domain.audit import AUDIT_EVENT_ID, AuditRecord
from server.domain.principal import Principal, Role
from server.observability.tracing import current_trace_headers
from server.service.audit.context import AuditCall, Effect


def _service_of(principal: Principal | None) -> str:
    return principal.subject if principal and Role.SERVICE in principal.roles else ""


def _trace_id(call: AuditCall) -> str:
    if call.trace_id:
        return call.trace_id
    parts = current_trace_headers().get("traceparent", "").split("-")
    return parts[1] if len(parts) == 4 else ""


def _record(
    call: AuditCall,
    now: datetime,
    *,
    resource_type: str,
    resource_id: str,
    outcome: str,
    reason: str,
    details: dict[str, str],
) -> AuditRecord:
    principal = call.principal
    return AuditRecord(
        id=AUDIT_EVENT_ID.new(),
        occur_time=now,
        channel=call.channel,
        action=call.action,
        subject=principal.subject if principal else "",
        issuer=principal.issuer if principal else "",
        roles=tuple(sorted(principal.roles)) if principal else (),
        calling_service=call.calling_service or _service_of(principal),
        resource_type=resource_type,
        resource_id=resource_id,
        request_id=call.request_id,
        outcome=outcome,
        reason=reason,
        trace_id=_trace_id(call),
        details=details,
    )


def effect_records(call: AuditCall, effects: list[Effect], now: datetime) -> list[AuditRecord]:
    return [
        _record(
            call,
            now,
            resource_type=effect.resource_type,
            resource_id=effect.resource_id,
            outcome="OK",
            reason=effect.state,
            details=dict(effect.details),
        )
        for effect in effects
    ]


def refusal_record(call: AuditCall, outcome: str, reason: str, now: datetime) -> AuditRecord:
    """A call refused (denied, invalid, precondition...): written on its own."""
    return _record(
        call,
        now,
        resource_type="",
        resource_id=call.resource_id,
        outcome=outcome,
        reason=reason,
        details={},
    )
