"""The money invariants, read from the database and the mock provider's durable ledger."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from server.adapters.db.engine import create_engine
from server.adapters.db.tables import outbox, payments, refunds
from server.adapters.providers.mock_store import MockStore
from tests.faults.clients import Acknowledged

CHARGED = ("SUCCEEDED", "PARTIALLY_REFUNDED", "REFUNDED")
# What waits on the service: nothing may be left here once things settled.
# (Every client confirms, so REQUIRES_CONFIRMATION means a stranded payment.)
WAITING_ON_SERVICE = ("PROCESSING", "REQUIRES_CONFIRMATION", "REQUIRES_PAYMENT_METHOD")


@dataclass
class Snapshot:
    payments: list[dict[str, Any]]
    refunds: list[dict[str, Any]]
    events: dict[str, list[tuple[int, bool]]]
    movements: list[tuple[str, str, int]]
    problems: list[str] = field(default_factory=list)


async def _read(database_url: str) -> tuple[list[Any], list[Any], list[Any]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(payments.select())).mappings().all()
            refund_rows = (await connection.execute(refunds.select())).mappings().all()
            event_rows = (
                await connection.execute(
                    sa.select(outbox.c.aggregate_id, outbox.c.sequence, outbox.c.published_at)
                    .where(outbox.c.aggregate_type == "payment")
                    .order_by(outbox.c.aggregate_id, outbox.c.sequence)
                )
            ).all()
        return list(rows), list(refund_rows), list(event_rows)
    finally:
        await engine.dispose()


def snapshot(database_url: str, mock_store: Path) -> Snapshot:
    rows, refund_rows, event_rows = asyncio.run(_read(database_url))
    events: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    for aggregate_id, sequence, published_at in event_rows:
        events[aggregate_id].append((int(sequence), published_at is not None))
    store = MockStore(mock_store)
    try:
        movements = store.movements()
    finally:
        store.close()
    return Snapshot([dict(r) for r in rows], [dict(r) for r in refund_rows], events, movements)


def settled(snap: Snapshot) -> bool:
    """Nothing waits on the service, no refund is pending, every event is published."""
    return (
        not any(p["state"] in WAITING_ON_SERVICE for p in snap.payments)
        and not any(r["state"] == "PENDING" for r in snap.refunds)
        and all(published for rows in snap.events.values() for _, published in rows)
    )


def check(snap: Snapshot, acknowledged: list[Acknowledged]) -> list[str]:
    """Every broken invariant, as a sentence; empty when the money held."""
    problems: list[str] = []
    by_id = {p["id"]: p for p in snap.payments}
    per_order: dict[str, int] = defaultdict(int)
    for p in snap.payments:
        per_order[p["order_id"]] += 1
    for ack in acknowledged:
        row = by_id.get(ack.payment_id)
        if row is None:
            problems.append(f"{ack.request_id}: answered {ack.payment_id}, which is not stored")
            continue
        told = (ack.order_id, ack.user_id, ack.amount)
        kept = (row["order_id"], row["user_id"], row["amount"])
        if told != kept:
            problems.append(f"{ack.request_id}: answered {told}, stored {kept}")
        if per_order[ack.order_id] != 1:
            problems.append(f"{ack.order_id}: {per_order[ack.order_id]} payments for one request")

    charges: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for kind, provider_id, amount in snap.movements:
        charges[provider_id].append((kind, amount))
    by_provider_id = {
        p["provider_payment_id"]: p for p in snap.payments if p["provider_payment_id"]
    }
    for provider_id, moves in charges.items():
        kinds = [kind for kind, _ in moves]
        if kinds.count("charge") + kinds.count("authorize") > 1 or kinds.count("capture") > 1:
            problems.append(f"{provider_id}: charged more than once at the provider: {kinds}")
        row = by_provider_id.get(provider_id)
        if row is None:
            problems.append(f"{provider_id}: money moved at the provider for no stored payment")
            continue
        taken = sum(a for k, a in moves if k in ("charge", "capture"))
        if row["state"] in CHARGED and row["amount_captured"] != taken:
            problems.append(
                f"{row['id']}: captured {row['amount_captured']}, the provider took {taken}"
            )
        if taken and row["state"] not in CHARGED:
            problems.append(f"{row['id']}: the provider took {taken}, stored {row['state']}")
        refunded_there = sum(a for k, a in moves if k == "refund")
        if refunded_there != row["amount_refunded"]:
            problems.append(
                f"{row['id']}: refunded {row['amount_refunded']}, the provider {refunded_there}"
            )

    refunded: dict[str, int] = defaultdict(int)
    for r in snap.refunds:
        if r["state"] == "SUCCEEDED":
            refunded[r["payment_id"]] += r["amount"]
    for p in snap.payments:
        if refunded[p["id"]] != p["amount_refunded"]:
            problems.append(
                f"{p['id']}: refunds add up to {refunded[p['id']]}, not {p['amount_refunded']}"
            )
        if p["amount_refunded"] > p["amount_captured"]:
            problems.append(f"{p['id']}: refunded more than captured")
        if p["state"] in WAITING_ON_SERVICE:
            problems.append(f"{p['id']}: still {p['state']}")
        sequences = [seq for seq, _ in snap.events.get(p["id"], [])]
        if sequences != list(range(1, p["event_sequence"] + 1)):
            problems.append(f"{p['id']}: event sequences {sequences}, up to {p['event_sequence']}")
        if not all(published for _, published in snap.events.get(p["id"], [])):
            problems.append(f"{p['id']}: events not published")
    problems += [
        f"refund {r['id']}: still PENDING" for r in snap.refunds if r["state"] == "PENDING"
    ]
    return problems
