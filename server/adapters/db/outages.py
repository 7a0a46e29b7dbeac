"""Telling our own outages from failures that the data causes."""

from __future__ import annotations

import sqlalchemy.exc as sa_exc

# The database or the network between us failed: trying the same thing later can work.
_OUTAGES: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    OSError,
    TimeoutError,
)


def is_outage(error: BaseException) -> bool:
    """Whether `error` (or what it wraps) is an outage rather than a refusal of the data."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, _OUTAGES)


def is_refused_data(error: BaseException) -> bool:
    """The database refused a value itself (too long, a byte it cannot store)."""
    return isinstance(error, sa_exc.DataError)
