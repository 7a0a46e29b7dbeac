"""Each user's customer at each provider, in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.db.tables import provider_customers as customers


class SqlCustomerRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        dialect = connection.dialect.name
        self._insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert

    async def get(self, user_id: str, provider: str, *, for_update: bool = False) -> str | None:
        statement = customers.select().where(
            customers.c.user_id == user_id, customers.c.provider == provider
        )
        if for_update:
            statement = statement.with_for_update()
        row = (await self._connection.execute(statement)).first()
        return str(row.provider_customer_id) if row else None

    async def add_if_absent(
        self, user_id: str, provider: str, provider_customer_id: str, now: datetime
    ) -> str:
        # On PostgreSQL this waits for a concurrent insert of the same user to settle.
        await self._connection.execute(
            self._insert(customers)
            .values(
                user_id=user_id,
                provider=provider,
                provider_customer_id=provider_customer_id,
                create_time=now,
            )
            .on_conflict_do_nothing(index_elements=["user_id", "provider"])
        )
        recorded = await self.get(user_id, provider)
        assert recorded is not None
        return recorded
