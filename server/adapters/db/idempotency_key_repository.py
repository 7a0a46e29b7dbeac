"""Idempotency keys in SQL: claim, lease, complete, reap."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from server.adapters.db.tables import idempotency_keys as keys
from server.service.unit_of_work import KeyRecord

# Built once: a statement made per call costs its cache key every time. Every
# statement addresses one key through the bind parameters b_caller, b_request_id.
_THIS_KEY = sa.and_(
    keys.c.caller == sa.bindparam("b_caller"), keys.c.request_id == sa.bindparam("b_request_id")
)
_CLAIM = {
    "postgresql": postgresql.insert(keys).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(keys).on_conflict_do_nothing(),
}
_GET = keys.select().where(_THIS_KEY)
_COMPLETE = (
    keys.update()
    .where(_THIS_KEY)
    .values(
        response=sa.bindparam("response"),
        resource_id=sa.bindparam("resource_id"),
        locked_until=None,
    )
)
_RELEASE = keys.update().where(_THIS_KEY).values(locked_until=None)
_DELETE = keys.delete().where(_THIS_KEY)


def _key(caller: str, request_id: str) -> dict[str, str]:
    return {"b_caller": caller, "b_request_id": request_id}


class SqlIdempotencyKeyRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._claim = _CLAIM[connection.dialect.name]

    async def insert_if_absent(
        self, record: KeyRecord, now: datetime, expire_time: datetime
    ) -> bool:
        # On PostgreSQL this waits for a concurrent inserter of the same key to
        # commit or roll back, so exactly one caller wins the key.
        result = await self._connection.execute(
            self._claim,
            {
                "caller": record.caller,
                "request_id": record.request_id,
                "method": record.method,
                "fingerprint": record.fingerprint,
                "resource_id": record.resource_id,
                "locked_until": record.locked_until,
                "create_time": now,
                "expire_time": expire_time,
            },
        )
        return bool(result.rowcount == 1)

    async def get(self, caller: str, request_id: str) -> KeyRecord | None:
        row = (await self._connection.execute(_GET, _key(caller, request_id))).first()
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
            .where(
                keys.c.caller == record.caller,
                keys.c.request_id == record.request_id,
                keys.c.response.is_(None),
                lease,
            )
            .values(locked_until=locked_until)
        )
        return bool(result.rowcount == 1)

    async def complete(
        self, caller: str, request_id: str, resource_id: str, response: bytes
    ) -> None:
        await self._connection.execute(
            _COMPLETE,
            {**_key(caller, request_id), "resource_id": resource_id, "response": response},
        )

    async def release(self, caller: str, request_id: str) -> None:
        await self._connection.execute(_RELEASE, _key(caller, request_id))

    async def delete(self, caller: str, request_id: str) -> None:
        await self._connection.execute(_DELETE, _key(caller, request_id))

    async def delete_expired(self, now: datetime, limit: int) -> int:
        doomed = (
            sa.select(keys.c.caller, keys.c.request_id).where(keys.c.expire_time < now).limit(limit)
        )
        result = await self._connection.execute(
            keys.delete().where(sa.tuple_(keys.c.caller, keys.c.request_id).in_(doomed))
        )
        return int(result.rowcount)
