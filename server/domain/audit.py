"""An audit record: who did what to which resource, with what outcome, when."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from server.domain.ids import IdKind

AUDIT_EVENT_ID = IdKind("aud")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: str
    occur_time: datetime
    # "grpc" or "queue".
    channel: str
    # The RPC ("PaymentService/CreatePayment") or the queued command ("command CreatePayment").
    action: str
    subject: str
    issuer: str
    roles: tuple[str, ...]
    # The service that called (a service caller's subject; a queued command's sender).
    calling_service: str
    # "payment", "refund", ...; empty for a refusal before any resource was known.
    resource_type: str
    resource_id: str
    request_id: str
    # "OK" for an effect; the gRPC status code name for a refusal ("PERMISSION_DENIED").
    outcome: str
    # The ErrorInfo reason of a refusal; the resource's state after an effect.
    reason: str
    trace_id: str
    # Further facts, e.g. the reason an admin gave to override the refund window.
    details: dict[str, str] = field(default_factory=dict)
