"""Seed a PostgreSQL database with a year of synthetic payments, for the analytics benchmark.

    .venv/bin/python bench/seed_payments.py [--payments 1000000] [--database-url URL]

Creates the database if it is missing and migrates it. When it already holds exactly
--payments seeded payments it is reused as it is; otherwise its payments and refunds are
deleted and seeded again, in one INSERT ... SELECT over generate_series (no row goes
through Python), then VACUUM ANALYZE so index-only scans work. The database's name must
contain "bench": this tool deletes its payments.

The data (deterministic, setseed(0.42)): create_time uniform over the year before
2026-11-22T00:00Z; 10,000 users (about 100 payments each); USD 50 %, EUR 25 %, GBP 10 %,
JPY 10 %, BHD 5 %; providers stripe 70 %, mock 30 %; states SUCCEEDED 70 %, FAILED 10 %,
CANCELED 5 %, PARTIALLY_REFUNDED 4 %, REFUNDED 4 %, and 7 % spread over the in-progress
states. Refunded payments get one SUCCEEDED refund row for their amount_refunded.
The triggers of migration 0007 record their revenue as the rows go in; the seed then
rolls it up into payment_revenue_hours as the service's job would.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.grpc_load import BenchError, bench_database, migrate  # noqa: E402
from server.adapters.db.analytics_repository import SqlAnalyticsRepository  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/payments_bench_1m"
SEED_END = datetime(2026, 11, 22, tzinfo=UTC)
USERS = 10_000
SEED_USER_PREFIX = "u_seed_"
ROLL_UP_BATCH = 1_000_000

# r1..r5 are independent uniform draws per payment; the CASE ladders turn them into
# the mix described in the module docstring. amount_captured <= amount and
# amount_refunded <= amount_captured hold for every row (the table's CHECKs).
_SEED_PAYMENTS = """
INSERT INTO payments (
    id, order_id, user_id, currency_code, amount, state, provider, provider_payment_id,
    payment_method_id, capture_method, amount_captured, amount_refunded, failure_code,
    failure_message, description, metadata, event_sequence, reconcile_attempts,
    create_time, update_time)
SELECT
    'pay_' || lpad(upper(to_hex(g)), 26, '0'),
    'seed-order-' || g,
    :user_prefix || lpad(floor(r1 * :users)::int::text, 5, '0'),
    currency,
    amount,
    state,
    provider,
    CASE WHEN provider = 'stripe' THEN 'pi_seed_' || g ELSE 'mock_' || g END,
    'pm_card_visa',
    CASE WHEN state = 'REQUIRES_CAPTURE' THEN 'MANUAL' ELSE 'AUTOMATIC' END,
    captured,
    CASE state
        WHEN 'REFUNDED' THEN captured
        WHEN 'PARTIALLY_REFUNDED' THEN greatest(1, floor(captured * (0.1 + 0.8 * r5))::bigint)
        ELSE 0
    END,
    CASE WHEN state = 'FAILED' THEN 'card_declined' ELSE '' END,
    CASE WHEN state = 'FAILED' THEN 'Your card was declined.' ELSE '' END,
    '',
    '{}',
    1,
    0,
    created,
    created + interval '2 seconds'
FROM (
    SELECT g, r1, r5, created, currency, state,
        CASE WHEN r3 < 0.7 THEN 'stripe' ELSE 'mock' END AS provider,
        amount,
        CASE WHEN state IN ('SUCCEEDED', 'PARTIALLY_REFUNDED', 'REFUNDED') THEN amount
             ELSE 0 END AS captured
    FROM (
        SELECT g, r1, r3, r5, created,
            CASE WHEN r2 < 0.50 THEN 'USD' WHEN r2 < 0.75 THEN 'EUR' WHEN r2 < 0.85 THEN 'GBP'
                 WHEN r2 < 0.95 THEN 'JPY' ELSE 'BHD' END AS currency,
            CASE WHEN r4 < 0.70 THEN 'SUCCEEDED' WHEN r4 < 0.80 THEN 'FAILED'
                 WHEN r4 < 0.85 THEN 'CANCELED' WHEN r4 < 0.89 THEN 'PARTIALLY_REFUNDED'
                 WHEN r4 < 0.93 THEN 'REFUNDED' WHEN r4 < 0.95 THEN 'PROCESSING'
                 WHEN r4 < 0.97 THEN 'REQUIRES_CAPTURE' WHEN r4 < 0.98 THEN 'REQUIRES_ACTION'
                 WHEN r4 < 0.99 THEN 'REQUIRES_PAYMENT_METHOD'
                 ELSE 'REQUIRES_CONFIRMATION' END AS state,
            100 + floor(r5 * 99900)::bigint AS amount
        FROM (
            SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4,
                random() AS r5,
                CAST(:end AS timestamptz) - random() * interval '365 days' AS created
            FROM generate_series(1, :n) AS g
        ) AS draws
    ) AS mixed
) AS seeded
"""
_SEED_REFUNDS = """
INSERT INTO refunds (id, payment_id, currency_code, amount, state, reason, provider,
    provider_refund_id, failure_code, failure_message, create_time, update_time)
SELECT 'ref_' || substr(id, 5), id, currency_code, amount_refunded, 'SUCCEEDED',
    'seeded', provider, '', '', '', update_time, update_time
FROM payments WHERE amount_refunded > 0
"""


async def _seeded_count(url: URL) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            count = await connection.scalar(text("SELECT count(*) FROM payments"))
    finally:
        await engine.dispose()
    return int(count or 0)


async def seed(url: URL, payments: int) -> None:
    """Replaces the payments and refunds with `payments` seeded ones (see above)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            # CASCADE: receipts (and whatever else comes to reference payments) go too.
            await connection.execute(text("TRUNCATE refunds, payments CASCADE"))
            await connection.execute(text("SELECT setseed(0.42)"))
            await connection.execute(
                text(_SEED_PAYMENTS),
                {"n": payments, "users": USERS, "user_prefix": SEED_USER_PREFIX, "end": SEED_END},
            )
            await connection.execute(text(_SEED_REFUNDS))
            # What the roll-up job would do: the triggers' changes into their hours.
            while await SqlAnalyticsRepository(connection).roll_up(ROLL_UP_BATCH):
                pass
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM (ANALYZE) payments"))
            await autocommit.execute(text("VACUUM (ANALYZE) refunds"))
            await autocommit.execute(text("VACUUM (ANALYZE) payment_revenue_hours"))
            await autocommit.execute(text("VACUUM (ANALYZE) payment_revenue_changes"))
    finally:
        await engine.dispose()


async def _create_if_missing(url: URL) -> None:
    admin = create_async_engine(
        url.set(drivername="postgresql+asyncpg", database="postgres"), isolation_level="AUTOCOMMIT"
    )
    try:
        async with admin.connect() as connection:
            exists = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            )
            if not exists:
                await connection.execute(text(f'CREATE DATABASE "{url.database}"'))
    finally:
        await admin.dispose()


def ensure_seeded(database_url: str, payments: int) -> URL:
    """The database, migrated and holding exactly `payments` seeded payments."""
    url = bench_database(database_url)
    asyncio.run(_create_if_missing(url))
    migrate(url.render_as_string(hide_password=False))
    if asyncio.run(_seeded_count(url)) == payments:
        print(f"{url.database}: {payments} payments already seeded, reused", file=sys.stderr)
        return url
    print(f"{url.database}: seeding {payments} payments ...", file=sys.stderr)
    began = time.monotonic()
    asyncio.run(seed(url, payments))
    print(f"{url.database}: seeded in {time.monotonic() - began:.0f} s", file=sys.stderr)
    return url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="PostgreSQL database to create or reuse (name must contain 'bench')",
    )
    args = parser.parse_args(argv)
    if args.payments < 1:
        parser.error("--payments must be at least 1")
    try:
        ensure_seeded(args.database_url, args.payments)
    except BenchError as error:
        print(f"seeding failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
