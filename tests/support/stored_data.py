"""Everything a database holds, as text, to prove what it does not hold."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db.engine import create_engine
from server.adapters.db.tables import metadata, outbox, webhook_events
from tests.support.databases import run_in_thread

# 13 to 19 digits, perhaps grouped with spaces or dashes: what a card number looks like.
CARD_NUMBER = re.compile(r"\d(?:[ -]?\d){12,18}")
# Random hex that is not card data but can hold long digit runs by chance: outbox
# event ids (UUIDs) and idempotency fingerprints (SHA-256). They are masked first.
_RANDOM_HEX = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-f]{64}\b"
)


async def dump_database(engine: AsyncEngine) -> str:
    """Every row of every table, one value a line; bytes as Latin-1 so ASCII digits show."""
    lines = []
    async with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in (await connection.execute(table.select())).all():
                for value in row:
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    lines.append(f"{table.name}: {text}")
    return "\n".join(lines)


def card_numbers_in(dump: str) -> list[str]:
    return CARD_NUMBER.findall(_RANDOM_HEX.sub("<random hex>", dump))


def secrets_in(dump: str) -> list[str]:
    """Stripe API keys (sk_...) and client secrets (..._secret_...)."""
    return re.findall(r"\S*(?:sk_|_secret_)\S*", dump)


def webhook_event_rows(database_url: str) -> list[dict[str, Any]]:
    """The stored webhook events, oldest first, read from outside the process under test."""

    async def read() -> list[dict[str, Any]]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                result = await connection.execute(
                    webhook_events.select().order_by(webhook_events.c.id)
                )
                return [dict(row) for row in result.mappings().all()]
        finally:
            await engine.dispose()

    return run_in_thread(read)


async def outbox_types(engine: AsyncEngine, payment_id: str) -> list[str]:
    """The event types the outbox holds for one payment, in its sequence."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(outbox.c.event_type)
            .where(outbox.c.aggregate_id == payment_id)
            .order_by(outbox.c.sequence)
        )
        return list(rows.scalars())
