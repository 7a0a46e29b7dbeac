"""One keyset page in (create_time, id) order: the SQL of every List but ListPayments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.service.paging import Row, TimeCursor, TimePage

R = TypeVar("R", bound=Row)


class Paged(Protocol):
    @property
    def page_size(self) -> int: ...

    @property
    def after(self) -> TimeCursor | None: ...


async def time_page(
    connection: AsyncConnection,
    statement: sa.Select[Any],
    query: Paged,
    from_row: Callable[[sa.Row[Any]], R],
    *,
    newest_first: bool = False,
) -> TimePage[R]:
    """The rows of `statement` after the query's cursor; one more is read to tell if more follow."""
    # The table's own columns, as the statement selects them.
    table = statement.selected_columns
    key = sa.tuple_(table.create_time, table.id)
    if query.after is not None:
        bound = sa.tuple_(
            sa.literal(query.after.create_time, table.create_time.type), sa.literal(query.after.id)
        )
        statement = statement.where(key < bound if newest_first else key > bound)
    order = [table.create_time, table.id]
    if newest_first:
        order = [column.desc() for column in order]
    statement = statement.order_by(*order).limit(query.page_size + 1)
    rows = (await connection.execute(statement)).all()
    return TimePage([from_row(row) for row in rows[: query.page_size]], len(rows) > query.page_size)
