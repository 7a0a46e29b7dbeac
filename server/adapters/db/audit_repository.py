"""The audit trail in SQL: appended by the unit of work, listed by admins, pruned by age."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.db.tables import audit_events
from server.domain.audit import AuditRecord
from server.service.audit.queries import AuditQuery

_INSERT = audit_events.insert()


def audit_row(record: AuditRecord) -> dict[str, Any]:
    """The record as its row's columns."""
    return {
        "id": record.id,
        "occur_time": record.occur_time,
        "channel": record.channel,
        "action": record.action,
        "subject": record.subject,
        "issuer": record.issuer,
        "roles": ",".join(record.roles),
        "calling_service": record.calling_service,
        "resource_type": record.resource_type,
        "resource_id": record.resource_id,
        "request_id": record.request_id,
        "outcome": record.outcome,
        "reason": record.reason[:64],
        "trace_id": record.trace_id,
        "details": record.details,
    }


def _from_row(row: sa.Row[Any]) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        occur_time=row.occur_time,
        channel=row.channel,
        action=row.action,
        subject=row.subject,
        issuer=row.issuer,
        roles=tuple(role for role in row.roles.split(",") if role),
        calling_service=row.calling_service,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        request_id=row.request_id,
        outcome=row.outcome,
        reason=row.reason,
        trace_id=row.trace_id,
        details=dict(row.details),
    )


async def append_audit_records(connection: AsyncConnection, records: Sequence[AuditRecord]) -> None:
    if records:
        rows = [audit_row(record) for record in records]
        await connection.execute(_INSERT, rows[0] if len(rows) == 1 else rows)


class SqlAuditRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def append(self, records: Sequence[AuditRecord]) -> None:
        await append_audit_records(self._connection, records)

    async def list(self, query: AuditQuery) -> list[AuditRecord]:
        """Newest first, after `query.before_id` when paging on."""
        statement = audit_events.select().order_by(audit_events.c.id.desc()).limit(query.limit)
        column_filters = {
            audit_events.c.resource_id: query.resource_id,
            audit_events.c.subject: query.subject,
            audit_events.c.action: query.action,
            audit_events.c.request_id: query.request_id,
            audit_events.c.outcome: query.outcome,
        }
        for column, value in column_filters.items():
            if value:
                statement = statement.where(column == value)
        if query.start_time is not None:
            statement = statement.where(audit_events.c.occur_time >= query.start_time)
        if query.end_time is not None:
            statement = statement.where(audit_events.c.occur_time < query.end_time)
        if query.before_id:
            statement = statement.where(audit_events.c.id < query.before_id)
        return [_from_row(row) for row in await self._connection.execute(statement)]

    async def delete_before(self, before: datetime, limit: int) -> int:
        oldest = (
            sa.select(audit_events.c.id)
            .where(audit_events.c.occur_time < before)
            .order_by(audit_events.c.occur_time)
            .limit(limit)
        )
        result = await self._connection.execute(
            audit_events.delete().where(audit_events.c.id.in_(oldest.scalar_subquery()))
        )
        return int(result.rowcount)
