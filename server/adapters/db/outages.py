"""Driver errors that mean "the database is away" or "try the transaction again", as domain errors.

Translated here, at the unit of work, so that no layer above sees asyncpg,
aiosqlite or SQLAlchemy exceptions, and an outage answers UNAVAILABLE or
ABORTED with a retry hint instead of INTERNAL.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from server.domain.errors import DatabaseUnavailable, DomainError, TransactionConflict
from server.service.unit_of_work import ValueRefused

# SQLSTATEs: serialization failure and deadlock undo the transaction; retrying it is the answer.
_CONFLICT = frozenset({"40001", "40P01"})
# Connection exceptions (08), operator intervention (57P01 admin_shutdown, 57P02 crash_shutdown,
# 57P03 cannot_connect_now), insufficient resources (53: too many connections, out of memory).
_AWAY_PREFIXES = ("08", "57P", "53")


def _sqlstate(error: BaseException) -> str:
    seen = error
    for _ in range(4):
        state = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(state, str):
            return state
        nxt = getattr(seen, "orig", None) or seen.__cause__
        if nxt is None:
            return ""
        seen = nxt
    return ""


def translate(error: BaseException, *, connecting: bool = False) -> DomainError | None:
    """The domain error an outage or conflict stands for; None for anything else (a bug).

    Any driver failure while `connecting` means the database cannot be reached
    (refused, shutting down, not accepting connections, gone).
    """
    if isinstance(error, DomainError):
        return None
    if isinstance(error, sa_exc.TimeoutError):
        return DatabaseUnavailable("no database connection is free right now; retry")
    state = _sqlstate(error)
    if state in _CONFLICT:
        return TransactionConflict("the database undid a conflicting transaction; retry")
    away = state.startswith(_AWAY_PREFIXES)
    if connecting:
        away = away or isinstance(error, sa_exc.DBAPIError | OSError | ConnectionError)
    if isinstance(error, sa_exc.DBAPIError):
        away = away or error.connection_invalidated
        away = away or isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError)
    elif isinstance(error, OSError | ConnectionError | sa_exc.ResourceClosedError):
        away = True
    if away:
        return DatabaseUnavailable("the database is not reachable right now; retry")
    return None


def refused_value(error: BaseException) -> ValueRefused | None:
    """ValueRefused when the database refused a value itself (too long, a byte it cannot
    store): the data's doing, the same on every try, so never an outage."""
    # SQLSTATE class 22 is a data exception (asyncpg's arrive as plain DBAPIError).
    if isinstance(error, sa_exc.DataError) or _sqlstate(error).startswith("22"):
        return ValueRefused("the database refused a value")
    return None
