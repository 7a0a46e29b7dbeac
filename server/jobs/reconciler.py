"""The reconciliation pass as a background job."""

from __future__ import annotations

from server.service.dependencies import Dependencies
from server.service.reconcile_payments import ReconcileReport, reconcile_payments


async def reconcile_due_payments(deps: Dependencies) -> ReconcileReport:
    return await reconcile_payments(deps)
