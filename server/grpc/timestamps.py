"""google.protobuf.Timestamp fields in, as aware datetimes: out of range is the client's error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from server.domain.errors import FieldViolation, InvalidArgument

# The range the Timestamp type defines: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
MIN_SECONDS = -62_135_596_800
MAX_SECONDS = 253_402_300_799


def optional_time(request: Any, field: str) -> datetime | None:
    """`request.<field>` as a UTC datetime, None when unset; INVALID_ARGUMENT out of range."""
    if not request.HasField(field):
        return None
    stamp = getattr(request, field)
    if not (MIN_SECONDS <= stamp.seconds <= MAX_SECONDS and 0 <= stamp.nanos < 1_000_000_000):
        raise InvalidArgument(
            [FieldViolation(field, "must be a valid timestamp between years 1 and 9999")]
        )
    moment: datetime = stamp.ToDatetime(UTC)
    return moment
