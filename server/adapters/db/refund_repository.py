"""Refunds in SQL; their events go to the outbox through the payment they belong to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.db.keyset import time_page
from server.adapters.db.tables import refunds
from server.domain.money import Money
from server.domain.refund import RESERVING_STATES, Refund, RefundState
from server.service.audit.context import note_effect
from server.service.paging import TimePage
from server.service.refunds.pages import RefundQuery

_INSERT = refunds.insert()
_SELECT = refunds.select().where(refunds.c.id == sa.bindparam("b_id"))
_SELECT_FOR_UPDATE = _SELECT.with_for_update()
_SAVE = (
    refunds.update()
    .where(refunds.c.id == sa.bindparam("b_id"))
    .values(
        state=sa.bindparam("state"),
        provider_refund_id=sa.bindparam("provider_refund_id"),
        failure_code=sa.bindparam("failure_code"),
        failure_message=sa.bindparam("failure_message"),
        update_time=sa.bindparam("update_time", type_=refunds.c.update_time.type),
    )
)
_RESERVED = sa.select(sa.func.coalesce(sa.func.sum(refunds.c.amount), 0)).where(
    refunds.c.payment_id == sa.bindparam("b_payment_id"),
    refunds.c.state.in_([s.value for s in sorted(RESERVING_STATES)]),
)

_BY_PROVIDER_ID = refunds.select().where(
    refunds.c.provider == sa.bindparam("b_provider"),
    refunds.c.provider_refund_id == sa.bindparam("b_provider_refund_id"),
)
_PENDING_BEFORE = (
    sa.select(refunds.c.id, refunds.c.payment_id)
    .where(
        refunds.c.state == RefundState.PENDING.value,
        refunds.c.update_time < sa.bindparam("b_before", type_=refunds.c.update_time.type),
    )
    .order_by(refunds.c.update_time)
    .limit(sa.bindparam("b_limit"))
)


def _row_values(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "payment_id": refund.payment_id,
        "currency_code": refund.amount.currency_code,
        "amount": refund.amount.minor_units,
        "state": refund.state.value,
        "reason": refund.reason,
        "provider": refund.provider,
        "provider_refund_id": refund.provider_refund_id,
        "failure_code": refund.failure_code,
        "failure_message": refund.failure_message,
        "window_override_reason": refund.window_override_reason,
        "create_time": refund.create_time,
        "update_time": refund.update_time,
    }


def _noted(refund: Refund) -> None:
    # An admin's override of the refund window is part of the audit record.
    override = refund.window_override_reason
    note_effect("refund", refund.id, refund.state.value, window_override_reason=override)


def _from_row(row: sa.Row[Any]) -> Refund:
    return Refund(
        id=row.id,
        payment_id=row.payment_id,
        amount=Money(row.currency_code, row.amount),
        state=RefundState(row.state),
        provider=row.provider,
        create_time=row.create_time,
        update_time=row.update_time,
        reason=row.reason,
        provider_refund_id=row.provider_refund_id,
        failure_code=row.failure_code,
        failure_message=row.failure_message,
        window_override_reason=row.window_override_reason,
    )


class SqlRefundRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, refund: Refund) -> None:
        await self._connection.execute(_INSERT, _row_values(refund))
        _noted(refund)

    async def get(self, refund_id: str, *, for_update: bool = False) -> Refund | None:
        statement = _SELECT_FOR_UPDATE if for_update else _SELECT
        row = (await self._connection.execute(statement, {"b_id": refund_id})).first()
        return _from_row(row) if row else None

    async def save(self, refund: Refund) -> None:
        _noted(refund)
        await self._connection.execute(
            _SAVE,
            {
                "b_id": refund.id,
                "state": refund.state.value,
                "provider_refund_id": refund.provider_refund_id,
                "failure_code": refund.failure_code,
                "failure_message": refund.failure_message,
                "update_time": refund.update_time,
            },
        )

    async def reserved_amount(self, payment_id: str) -> int:
        result = await self._connection.execute(_RESERVED, {"b_payment_id": payment_id})
        return int(result.scalar_one())

    async def find_by_provider_refund_id(
        self, provider: str, provider_refund_id: str
    ) -> Refund | None:
        row = (
            await self._connection.execute(
                _BY_PROVIDER_ID,
                {"b_provider": provider, "b_provider_refund_id": provider_refund_id},
            )
        ).first()
        return _from_row(row) if row else None

    async def pending_before(self, before: datetime, limit: int) -> Sequence[tuple[str, str]]:
        rows = await self._connection.execute(
            _PENDING_BEFORE, {"b_before": before, "b_limit": limit}
        )
        return [(row.id, row.payment_id) for row in rows]

    async def list(self, query: RefundQuery) -> TimePage[Refund]:
        statement = refunds.select().where(refunds.c.payment_id == query.payment_id)
        return await time_page(self._connection, statement, query, _from_row)
