"""A refused call's audit record, in a transaction of its own (nothing else was written)."""

from __future__ import annotations

import logging

from server.service.audit.context import AuditCall
from server.service.audit.records import refusal_record
from server.service.dependencies import Dependencies

_log = logging.getLogger(__name__)


async def record_refusal(deps: Dependencies, call: AuditCall, outcome: str, reason: str) -> None:
    """Best effort: the caller gets its error even when the database cannot take the record."""
    try:
        async with deps.uow() as uow:
            await uow.audit.append([refusal_record(call, outcome, reason, deps.clock.now())])
            await uow.commit()
    except Exception as error:
        _log.warning("audit record of a refused %s lost: %s", call.action, type(error).__name__)
