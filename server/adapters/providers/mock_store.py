"""The mock provider's memory: one SQLite file shared by every process that uses it.

SQLite rather than a table in the service's database: the provider is another
party, so its record must outlive our database's outages and must not be
rolled back with our transactions. A WAL-mode file survives SIGKILL (every
call commits before it answers) and is shared by `serve`, `worker` and the
fault suite's checker; each call is one `BEGIN IMMEDIATE` transaction, so two
processes replaying one key see one result. Without a path it lives in memory.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS intents (
    provider_payment_id TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_intents_payment_id ON intents (payment_id);
CREATE TABLE IF NOT EXISTS replies (
    idempotency_key TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refunds (
    provider_refund_id TEXT PRIMARY KEY,
    provider_payment_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS movements (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    provider_payment_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL
);
"""


class MockStore:
    """Rows of JSON bodies keyed as Stripe keys them; the mock decides what they mean."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._db = sqlite3.connect(
            str(path) if path else ":memory:", isolation_level=None, timeout=30.0
        )
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before the mock answers, as Stripe's would be.
            self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def reply(self, key: str) -> dict[str, Any] | None:
        return self._one("SELECT body FROM replies WHERE idempotency_key = ?", key)

    def put_reply(self, key: str, body: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO replies (idempotency_key, body) VALUES (?, ?)", (key, json.dumps(body))
        )

    def intent(self, provider_payment_id: str) -> dict[str, Any] | None:
        return self._one(
            "SELECT body FROM intents WHERE provider_payment_id = ?", provider_payment_id
        )

    def intent_for_payment(self, payment_id: str) -> dict[str, Any] | None:
        return self._one("SELECT body FROM intents WHERE payment_id = ?", payment_id)

    def put_intent(self, provider_payment_id: str, payment_id: str, body: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO intents (provider_payment_id, payment_id, body) VALUES (?, ?, ?) "
            "ON CONFLICT (provider_payment_id) DO UPDATE SET body = excluded.body",
            (provider_payment_id, payment_id, json.dumps(body)),
        )

    def refund(self, provider_refund_id: str) -> dict[str, Any] | None:
        return self._one(
            "SELECT body FROM refunds WHERE provider_refund_id = ?", provider_refund_id
        )

    def put_refund(
        self, provider_refund_id: str, provider_payment_id: str, body: dict[str, Any]
    ) -> None:
        self._db.execute(
            "INSERT INTO refunds (provider_refund_id, provider_payment_id, body) VALUES (?, ?, ?) "
            "ON CONFLICT (provider_refund_id) DO UPDATE SET body = excluded.body",
            (provider_refund_id, provider_payment_id, json.dumps(body)),
        )

    def record_movement(self, kind: str, provider_payment_id: str, amount: int, key: str) -> None:
        """Money that moved (charge, authorize, capture, refund): the ledger tests check."""
        self._db.execute(
            "INSERT INTO movements (kind, provider_payment_id, amount, idempotency_key) "
            "VALUES (?, ?, ?, ?)",
            (kind, provider_payment_id, amount, key),
        )

    def movements(self) -> list[tuple[str, str, int]]:
        rows = self._db.execute(
            "SELECT kind, provider_payment_id, amount FROM movements ORDER BY seq"
        ).fetchall()
        return [(str(kind), str(pid), int(amount)) for kind, pid, amount in rows]

    def close(self) -> None:
        self._db.close()

    def _one(self, sql: str, value: str) -> dict[str, Any] | None:
        row = self._db.execute(sql, (value,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))
