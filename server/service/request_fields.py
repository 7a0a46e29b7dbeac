"""A request's fields as a plain dict: what its idempotency fingerprint is made from."""

from __future__ import annotations

import copy
from dataclasses import fields, is_dataclass
from enum import Enum
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def request_fields(request: DataclassInstance) -> dict[str, Any]:
    """`dataclasses.asdict(request)`, equal to it (so stored fingerprints still match) but
    cheaper on the hot path: asdict raises and formats an AttributeError inside for every
    plain value it meets, and deep-copies each."""
    return {name: _plain(getattr(request, name)) for name in _field_names(type(request))}


@cache
def _field_names(kind: type[DataclassInstance]) -> tuple[str, ...]:
    return tuple(field.name for field in fields(kind))


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | Enum):  # bool is an int
        return value
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):  # no request holds a namedtuple
        return type(value)(_plain(item) for item in value)
    if is_dataclass(value) and not isinstance(value, type):
        return request_fields(value)
    return copy.deepcopy(value)
