"""Idempotency keys in SQL: claim, lease, complete, reap."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.db.tables import idempotency_keys as keys
from server.service.unit_of_work import KeyRecord


def _key(caller: str, request_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(keys.c.caller == caller, keys.c.request_id == request_id)


class SqlIdempotencyKeyRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        dialect = connection.dialect.name
        self._insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert

    async def insert_if_absent(
        self, record: KeyRecord, now: datetime, expire_time: datetime
    ) -> bool:
        # On PostgreSQL this waits for a concurrent inserter of the same key to
        # commit or roll back, so exactly one caller wins the key.
        statement = (
            self._insert(keys)
            .values(
                caller=record.caller,
                request_id=record.request_id,
                method=record.method,
                fingerprint=record.fingerprint,
                resource_id=record.resource_id,
                locked_until=record.locked_until,
                create_time=now,
                expire_time=expire_time,
            )
            .on_conflict_do_nothing()
        )
        result = await self._connection.execute(statement)
        return bool(result.rowcount == 1)

    async def get(self, caller: str, request_id: str) -> KeyRecord | None:
        row = (
            await self._connection.execute(keys.select().where(_key(caller, request_id)))
        ).first()
        if row is None:
            return None
        return KeyRecord(
            caller=row.caller,
            request_id=row.request_id,
            method=row.method,
            fingerprint=row.fingerprint,
            resource_id=row.resource_id,
            response=bytes(row.response) if row.response is not None else None,
            locked_until=row.locked_until,
        )

    async def take_over(self, record: KeyRecord, locked_until: datetime) -> bool:
        lease = (
            keys.c.locked_until.is_(None)
            if record.locked_until is None
            else keys.c.locked_until == record.locked_until
        )
        result = await self._connection.execute(
            keys.update()
            .where(_key(record.caller, record.request_id), keys.c.response.is_(None), lease)
            .values(locked_until=locked_until)
        )
        return bool(result.rowcount == 1)

    async def attach(self, caller: str, request_id: str, resource_id: str) -> None:
        await self._connection.execute(
            keys.update().where(_key(caller, request_id)).values(resource_id=resource_id)
        )

    async def complete(
        self, caller: str, request_id: str, resource_id: str, response: bytes
    ) -> None:
        await self._connection.execute(
            keys.update()
            .where(_key(caller, request_id))
            .values(response=response, resource_id=resource_id, locked_until=None)
        )

    async def release(self, caller: str, request_id: str) -> None:
        await self._connection.execute(
            keys.update().where(_key(caller, request_id)).values(locked_until=None)
        )

    async def delete(self, caller: str, request_id: str) -> None:
        await self._connection.execute(keys.delete().where(_key(caller, request_id)))

    async def delete_expired(self, now: datetime, limit: int) -> int:
        doomed = (
            sa.select(keys.c.caller, keys.c.request_id).where(keys.c.expire_time < now).limit(limit)
        )
        result = await self._connection.execute(
            keys.delete().where(sa.tuple_(keys.c.caller, keys.c.request_id).in_(doomed))
        )
        return int(result.rowcount)
