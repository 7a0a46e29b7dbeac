"""What PostgreSQL did in a measured window: its statements and its transactions.

Statements are the difference of two readings of pg_stat_statements, transactions that
of pg_stat_database's commits and rollbacks, both for the benchmark's database only.
Top-level statements are round trips; the ones that functions and triggers run inside
them ("nested") are not. bench/grpc_load.py runs its own cluster with CLUSTER_SETTINGS so
that every statement is counted, BEGIN and COMMIT included.

pg_stat_database lags: a backend publishes its counts when it goes idle, at most once a
second, so a window's transactions are right to about a second's worth at either end
(over a steady window the two ends cancel). pg_stat_statements counts a statement as it
ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg

# The stock settings of the shared server (fsync and synchronous_commit on, 128 MB of
# shared buffers), plus pg_stat_statements counting every statement, utility ones too.
CLUSTER_SETTINGS = {
    "fsync": "on",
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "pg_stat_statements.track_utility": "on",
}

# The reader's own statements carry this mark and are left out of every count.
_MARK = "/* bench-monitor */"
_STATEMENTS = """/* bench-monitor */ SELECT queryid, toplevel, calls, query FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"""
_TRANSACTIONS = """/* bench-monitor */ SELECT xact_commit + xact_rollback FROM pg_stat_database
WHERE datname = current_database()"""
_SETTINGS = """/* bench-monitor */ SELECT name, current_setting(name) AS value FROM pg_settings
WHERE name IN ('server_version', 'fsync', 'synchronous_commit', 'shared_buffers',
               'commit_delay', 'max_connections')"""
_ANSWERS = "/* bench-monitor */ SELECT count(*) FROM pg_stat_statements"


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement as pg_stat_statements tells it apart (its constants are $1, $2 ...)."""

    queryid: int
    toplevel: bool


@dataclass(frozen=True, slots=True)
class Reading:
    at: float  # time.monotonic()
    transactions: int
    statements: dict[Statement, int] | None  # calls so far; None without pg_stat_statements


@dataclass(slots=True)
class Activity:
    """What the database did between two readings, or in several windows together."""

    seconds: float = 0.0
    transactions: float = 0.0
    statements: dict[Statement, float] | None = field(default_factory=dict)

    @classmethod
    def between(cls, before: Reading, after: Reading) -> Activity:
        statements = None
        if before.statements is not None and after.statements is not None:
            statements = {
                key: float(calls - before.statements.get(key, 0))
                for key, calls in after.statements.items()
                if calls != before.statements.get(key, 0)
            }
        transactions = float(after.transactions - before.transactions)
        return cls(after.at - before.at, transactions, statements)

    def add(self, other: Activity) -> None:
        self.seconds += other.seconds
        self.transactions += other.transactions
        if self.statements is None or other.statements is None:
            self.statements = None
            return
        for key, calls in other.statements.items():
            self.statements[key] = self.statements.get(key, 0.0) + calls


@dataclass(frozen=True, slots=True)
class PerCall:
    """A window's activity per call, less what the background did at its own rate."""

    transactions: float
    round_trips: float | None  # top-level statements; None without pg_stat_statements
    nested: float | None
    statements: dict[Statement, float]

    @classmethod
    def of(cls, window: Activity, background: Activity, calls: int) -> PerCall | None:
        if calls <= 0:
            return None
        share = window.seconds / background.seconds if background.seconds else 0.0
        transactions = (window.transactions - background.transactions * share) / calls
        if window.statements is None:
            return cls(transactions, None, None, {})
        idle = background.statements or {}
        each = {
            key: (window.statements.get(key, 0.0) - idle.get(key, 0.0) * share) / calls
            for key in window.statements.keys() | idle.keys()
        }
        round_trips = sum(n for key, n in each.items() if key.toplevel)
        nested = sum(n for key, n in each.items() if not key.toplevel)
        return cls(transactions, round_trips, nested, each)


class ActivityReader:
    """Reads the counters over a connection of its own to the benchmark's database."""

    def __init__(self, dsn: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._connection: Any = None
        try:
            self._connection = self._run(asyncpg.connect(dsn))
            # "" when pg_stat_statements answers, else why not: round trips are then n/a.
            self.statements_missing: str = self._run(self._enable_statements())
        except BaseException:
            self.close()
            raise
        self._texts: dict[Statement, str] = {}

    def _run(self, step: Any) -> Any:
        return self._loop.run_until_complete(step)

    async def _enable_statements(self) -> str:
        try:
            # The benchmark's own database: the extension goes when the database does.
            await self._connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await self._connection.fetchval(_ANSWERS)
        except asyncpg.PostgresError as error:
            return f"pg_stat_statements is not available: {error}"
        return ""

    def describe(self) -> str:
        """The server's version and the settings that move the figures."""
        rows = self._run(self._connection.fetch(_SETTINGS))
        settings = {row["name"]: row["value"] for row in rows}
        version = settings.pop("server_version", "?")
        return f"PostgreSQL {version}, " + ", ".join(
            f"{name}={value}" for name, value in sorted(settings.items())
        )

    def read(self) -> Reading:
        reading: Reading = self._run(self._read())
        return reading

    async def _read(self) -> Reading:
        statements: dict[Statement, int] | None = None
        if not self.statements_missing:
            statements = {}
            for row in await self._connection.fetch(_STATEMENTS):
                if row["query"].startswith(_MARK):
                    continue
                key = Statement(int(row["queryid"]), bool(row["toplevel"]))
                statements[key] = statements.get(key, 0) + int(row["calls"])
                self._texts.setdefault(key, row["query"])
        transactions = int(await self._connection.fetchval(_TRANSACTIONS) or 0)
        return Reading(time.monotonic(), transactions, statements)

    def text(self, statement: Statement, width: int = 110) -> str:
        """The statement on one line, cut to `width` (normalized: it holds no values)."""
        return brief(self._texts.get(statement, "?"), width)

    def close(self) -> None:
        if self._connection is not None:
            # The cluster may be gone already.
            with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                self._run(self._connection.close(timeout=5))
            self._connection = None
        self._loop.close()


def brief(query: str, width: int = 110) -> str:
    """A statement on one line with its column lists left out, so that the statements on
    one table tell apart within `width`: `INSERT INTO outbox (...) VALUES (...) x2 ...`."""
    line = re.sub(r"\s+", " ", query).strip()
    line = re.sub(r"^(SELECT) .+? (FROM )", r"\1 ... \2", line)
    line = re.sub(r"^(UPDATE \S+ SET) .+? (WHERE )", r"\1 ... \2", line)
    line = re.sub(r"^(INSERT INTO \S+) \([^)]*\)", r"\1 (...)", line)
    line = _values_elided(line)
    return line if len(line) <= width else line[: width - 3] + "..."


def _values_elided(line: str) -> str:
    """`VALUES (...), (...)` as `VALUES (...) x2`: how many rows one INSERT writes."""
    start = line.find(" VALUES (")
    if start < 0:
        return line
    position, depth, rows = start + len(" VALUES "), 0, 0
    while position < len(line):
        char = line[position]
        if char == "(":
            depth += 1
            rows += depth == 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and char != "," and char != " ":
            break
        position += 1
    rows_text = f" x{rows}" if rows > 1 else ""
    return f"{line[:start]} VALUES (...){rows_text} {line[position:]}".rstrip()
