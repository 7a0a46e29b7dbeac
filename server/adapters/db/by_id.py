"""One row by its id, plain or locked (FOR UPDATE, or FOR UPDATE SKIP LOCKED for a job that
must not wait on a row another transaction holds); the statements are built once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")


class ById(Generic[T]):
    __slots__ = ("_from_row", "_locked", "_plain", "_skip_locked")

    def __init__(self, table: sa.Table, from_row: Callable[[sa.Row[Any]], T]) -> None:
        self._plain = table.select().where(table.c.id == sa.bindparam("b_id"))
        self._locked = self._plain.with_for_update()
        self._skip_locked = self._plain.with_for_update(skip_locked=True)
        self._from_row = from_row

    async def get(
        self, connection: AsyncConnection, resource_id: str, for_update: bool, skip_locked: bool
    ) -> T | None:
        """With `skip_locked`, None also when another transaction holds the row."""
        statement = self._plain
        if for_update:
            statement = self._skip_locked if skip_locked else self._locked
        row = (await connection.execute(statement, {"b_id": resource_id})).first()
        return self._from_row(row) if row else None
