"""Clean-up jobs work in short transactions, a batch of rows each, until a batch comes back
short: locks stay short, and a large backlog never becomes one long transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from server.service.unit_of_work import UnitOfWork, UnitOfWorkFactory


async def in_batches(
    uow: UnitOfWorkFactory, batch: int, step: Callable[[UnitOfWork, int], Awaitable[int]]
) -> int:
    """Run `step(work, batch)` in transactions of its own; the rows it did in all."""
    total = 0
    while True:
        async with uow() as work:
            done = await step(work, batch)
            await work.commit()
        total += done
        if done < batch:
            return total
