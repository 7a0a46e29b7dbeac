"""The audit trail's repository port."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from server.domain.audit import AuditRecord

if TYPE_CHECKING:
    from server.service.audit.queries import AuditQuery


class AuditRepository(Protocol):
    async def append(self, records: Sequence[AuditRecord]) -> None: ...

    async def list(self, query: AuditQuery) -> list[AuditRecord]:
        """Newest first."""

    async def delete_before(self, before: datetime, limit: int) -> int: ...
