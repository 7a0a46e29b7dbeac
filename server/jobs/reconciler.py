"""The reconciliation passes (payments, refunds) as background jobs."""

from __future__ import annotations

from server.service.dependencies import Dependencies
from server.service.payments.reconcile import ReconcileReport, reconcile_payments
from server.service.refunds.reconcile import RefundReconcileReport, reconcile_refunds


async def reconcile_due_payments(deps: Dependencies) -> ReconcileReport:
    return await reconcile_payments(deps)


async def reconcile_pending_refunds(deps: Dependencies) -> RefundReconcileReport:
    return await reconcile_refunds(deps)
