"""Listing the audit trail (admins), newest first, and pruning it by age."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from server.domain.audit import AUDIT_EVENT_ID, AuditRecord
from server.domain.errors import FieldViolation, InvalidArgument
from server.domain.text import UNSAFE_TEXT, is_safe_text
from server.service import page_tokens

if TYPE_CHECKING:
    from server.service.dependencies import Dependencies

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
PRUNE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class AuditQuery:
    limit: int = DEFAULT_PAGE_SIZE
    resource_id: str = ""
    subject: str = ""
    action: str = ""
    request_id: str = ""
    outcome: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None
    before_id: str = ""

    @property
    def scope(self) -> str:
        """What a page token is bound to: the filters, not the page size or position."""
        return "audit|" + "|".join(
            str(value)
            for value in (
                self.resource_id,
                self.subject,
                self.action,
                self.request_id,
                self.outcome,
                self.start_time,
                self.end_time,
            )
        )


def audit_query(page_size: int, **filters: str | datetime | None) -> AuditQuery:
    violations = [
        FieldViolation(name, UNSAFE_TEXT)
        for name, value in sorted(filters.items())
        if isinstance(value, str) and not is_safe_text(value)
    ]
    if page_size < 0:
        violations.append(FieldViolation("page_size", "must not be negative"))
    if violations:
        raise InvalidArgument(violations)
    return AuditQuery(limit=min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE), **filters)  # type: ignore[arg-type]


async def list_audit_events(
    deps: Dependencies, query: AuditQuery, page_token: str = ""
) -> tuple[list[AuditRecord], str]:
    if page_token:
        _, last_id = page_tokens.decode(query.scope, page_token, AUDIT_EVENT_ID)
        query = replace(query, before_id=last_id)
    async with deps.uow(read_only=True) as uow:
        found = await uow.audit.list(replace(query, limit=query.limit + 1))
    if len(found) <= query.limit:
        return found, ""
    page = found[: query.limit]
    return page, page_tokens.encode(query.scope, 0, page[-1].id)


async def prune_audit_events(deps: Dependencies, retention: timedelta) -> int:
    """The retention job: records older than `retention` go, in batches."""
    before = deps.clock.now() - retention
    total = 0
    while True:
        async with deps.uow() as uow:
            deleted = await uow.audit.delete_before(before, PRUNE_BATCH)
            await uow.commit()
        total += deleted
        if deleted < PRUNE_BATCH:
            return total
