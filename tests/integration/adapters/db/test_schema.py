"""The schema itself refuses bad money, a second live payment per order and key reuse."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db.tables import idempotency_keys, payments

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def row(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": "pay_01JD0000000000000000000001",
        "order_id": "o-1",
        "user_id": "u-1",
        "currency_code": "USD",
        "amount": 100,
        "state": "SUCCEEDED",
        "provider": "mock",
        "capture_method": "AUTOMATIC",
        "metadata": {},
        "event_sequence": 1,
        "create_time": NOW,
        "update_time": NOW,
    }
    values.update(changes)
    return values


async def insert(engine: AsyncEngine, table: sa.Table, *rows: dict[str, Any]) -> None:
    async with engine.begin() as connection:
        for values in rows:
            await connection.execute(table.insert().values(values))


@pytest.mark.parametrize(
    "bad",
    [
        {"amount": 0},
        {"amount": -5},
        {"amount_captured": 101},
        {"amount_captured": 50, "amount_refunded": 51},
        {"state": "LOST"},
        {"capture_method": "SOMETIMES"},
    ],
)
async def test_check_constraints(engine: AsyncEngine, bad: dict[str, Any]) -> None:
    with pytest.raises(IntegrityError):
        await insert(engine, payments, row(**bad))


async def test_one_live_payment_per_order(engine: AsyncEngine) -> None:
    await insert(
        engine,
        payments,
        row(state="FAILED"),
        row(id="pay_01JD0000000000000000000002", state="CANCELED"),
    )
    await insert(engine, payments, row(id="pay_01JD0000000000000000000003", state="PROCESSING"))
    with pytest.raises(IntegrityError):
        await insert(engine, payments, row(id="pay_01JD0000000000000000000004"))


async def test_request_id_unique_per_caller(engine: AsyncEngine) -> None:
    key = {
        "caller": "svc",
        "request_id": "r-1",
        "method": "CreatePayment",
        "fingerprint": "f",
        "create_time": NOW,
        "expire_time": NOW,
    }
    await insert(engine, idempotency_keys, key, {**key, "caller": "other"})
    with pytest.raises(IntegrityError):
        await insert(engine, idempotency_keys, key)
