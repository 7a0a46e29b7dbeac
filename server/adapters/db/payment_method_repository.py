"""Saved payment methods in SQL."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.db.keyset import time_page
from server.adapters.db.tables import payment_methods as methods
from server.domain.payment_method import (
    Address,
    BillingDetails,
    CardDetails,
    PaymentMethod,
    PaymentMethodType,
)
from server.service.paging import TimePage, UserPage


def billing_from_json(data: dict[str, Any]) -> BillingDetails:
    address = data.get("address") or {}
    return BillingDetails(
        name=data.get("name", ""),
        email=data.get("email", ""),
        phone=data.get("phone", ""),
        address=Address(**{key: str(value) for key, value in address.items()}),
    )


def _row_values(method: PaymentMethod) -> dict[str, Any]:
    return {
        "id": method.id,
        "user_id": method.user_id,
        "provider": method.provider,
        "provider_customer_id": method.provider_customer_id,
        "provider_payment_method_id": method.provider_payment_method_id,
        "type": method.type.value,
        "brand": method.card.brand,
        "last4": method.card.last4,
        "exp_month": method.card.exp_month,
        "exp_year": method.card.exp_year,
        "is_default": method.is_default,
        "billing_details": asdict(method.billing_details),
        "create_time": method.create_time,
        "update_time": method.update_time,
        "detach_time": method.detach_time,
    }


def _from_row(row: sa.Row[Any]) -> PaymentMethod:
    return PaymentMethod(
        id=row.id,
        user_id=row.user_id,
        provider=row.provider,
        provider_customer_id=row.provider_customer_id,
        provider_payment_method_id=row.provider_payment_method_id,
        type=PaymentMethodType(row.type),
        card=CardDetails(row.brand, row.last4, row.exp_month, row.exp_year),
        is_default=bool(row.is_default),
        billing_details=billing_from_json(dict(row.billing_details)),
        create_time=row.create_time,
        update_time=row.update_time,
        detach_time=row.detach_time,
    )


class SqlPaymentMethodRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, method: PaymentMethod) -> None:
        await self._connection.execute(methods.insert().values(_row_values(method)))

    async def get(self, method_id: str, *, for_update: bool = False) -> PaymentMethod | None:
        statement = methods.select().where(methods.c.id == method_id)
        if for_update:
            statement = statement.with_for_update()
        row = (await self._connection.execute(statement)).first()
        return _from_row(row) if row else None

    async def save(self, method: PaymentMethod) -> None:
        values = _row_values(method)
        del values["id"], values["create_time"]
        await self._connection.execute(
            methods.update().where(methods.c.id == method.id).values(values)
        )

    async def clear_default(self, user_id: str, now: datetime) -> None:
        await self._connection.execute(
            methods.update()
            .where(
                methods.c.user_id == user_id,
                methods.c.is_default.is_(True),
                methods.c.detach_time.is_(None),
            )
            .values(is_default=False, update_time=now)
        )

    async def list_attached(self, query: UserPage) -> TimePage[PaymentMethod]:
        statement = methods.select().where(
            methods.c.user_id == query.user_id, methods.c.detach_time.is_(None)
        )
        return await time_page(self._connection, statement, query, _from_row, newest_first=True)
