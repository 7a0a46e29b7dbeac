"""The schema itself keeps one default per user, short card fields and one customer per user."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db.tables import payment_methods, provider_customers

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def method(n: int, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": f"pmt_01JD000000000000000000000{n}",
        "user_id": "u-1",
        "provider": "mock",
        "provider_customer_id": "cus_1",
        "provider_payment_method_id": "pm_card_visa",
        "type": "card",
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2030,
        "is_default": False,
        "billing_details": {},
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
        {"last4": "4242424242424242"},
        {"exp_month": 0},
        {"exp_month": 13},
        {"exp_year": 30},
        {"type": "sepa_debit"},
        {"is_default": True, "detach_time": NOW},
    ],
    ids=repr,
)
async def test_check_constraints(engine: AsyncEngine, bad: dict[str, Any]) -> None:
    with pytest.raises(sa.exc.DBAPIError):  # IntegrityError, or DataError for a long last4
        await insert(engine, payment_methods, method(1, **bad))


async def test_one_default_per_user_among_attached_methods(engine: AsyncEngine) -> None:
    await insert(
        engine,
        payment_methods,
        method(1, is_default=True),
        method(2),
        method(3, detach_time=NOW),
        method(4, user_id="u-2", is_default=True),
    )
    with pytest.raises(IntegrityError):
        await insert(engine, payment_methods, method(5, is_default=True))


async def test_one_customer_per_user_and_provider(engine: AsyncEngine) -> None:
    row = {"user_id": "u-1", "provider": "stripe", "provider_customer_id": "cus_1"}
    await insert(
        engine,
        provider_customers,
        {**row, "create_time": NOW},
        {**row, "provider": "mock", "provider_customer_id": "mock_cus_1", "create_time": NOW},
    )
    with pytest.raises(IntegrityError):
        await insert(
            engine, provider_customers, {**row, "provider_customer_id": "cus_2", "create_time": NOW}
        )
    with pytest.raises(IntegrityError):
        await insert(engine, provider_customers, {**row, "user_id": "u-2", "create_time": NOW})
