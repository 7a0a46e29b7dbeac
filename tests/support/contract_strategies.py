"""Hypothesis strategies that build any protobuf message from its descriptor.

Every field type gets its ordinary values and the edges a careless or hostile client
sends: empty and huge strings, NUL, control, bidi and zero-width characters, card
numbers, integers at and past their type's range, enum numbers the schema does not
know, timestamps at the ends of their range. Values the server knows (`known`) are
mixed in, so that some requests get past validation to the code behind it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import descriptor, message, message_factory
from hypothesis import strategies as st

FD = descriptor.FieldDescriptor
EDGE_STRINGS = (
    "",
    " ",
    "\x00",
    "nul\x00inside",
    "\x1b[31mred\x1b[0m",
    "line\nbreak",
    "right\u202eto-left",
    "zero\u200bwidth",
    "\ufeffbom",
    "4242424242424242",
    "4000 0566 5566 5556",
    "é" * 300,
    "x" * 5000,
    "🎉" * 100,
    "America",
    "Etc",
    "../../etc/passwd",
    "'; DROP TABLE payments; --",
    '" OR 1=1',
    "%s%n",
    'create_time > "0001-01-01T00:00:00+14:00"',
    'user_id = "a\x00b"',
    "amount desc",
    "USD",
    "usd",
    "XXX",
)
INT_RANGES = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_FIXED64: (0, 2**64 - 1),
}
# google.protobuf.Timestamp's range, and just past it either way.
TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799, -62_135_596_801, 253_402_300_800, 0)
MAX_DEPTH = 3


def strings(known: Sequence[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(EDGE_STRINGS),
        st.sampled_from(list(known) or [""]),
        st.text(max_size=40),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    )


def integers(field: descriptor.FieldDescriptor) -> st.SearchStrategy[int]:
    low, high = INT_RANGES[field.type]
    edges = [low, high, 0, 1, -1, 10**12, 10**12 + 1, 2, 100, 1000, 10_000]
    return st.one_of(
        st.sampled_from([e for e in edges if low <= e <= high]),
        st.integers(min_value=max(low, -(10**6)), max_value=min(high, 10**6)),
        st.integers(min_value=low, max_value=high),
    )


def enums(field: descriptor.FieldDescriptor) -> st.SearchStrategy[int]:
    assert field.enum_type is not None
    numbers = [value.number for value in field.enum_type.values]
    # Proto3 enums are open: a client may send numbers the schema does not name.
    return st.one_of(st.sampled_from(numbers), st.sampled_from([-1, 99, 2**31 - 1]))


def scalar(field: descriptor.FieldDescriptor, known: Sequence[str]) -> st.SearchStrategy[Any]:
    if field.type == FD.TYPE_STRING:
        return strings(known)
    if field.type == FD.TYPE_BYTES:
        return st.binary(max_size=100)
    if field.type == FD.TYPE_BOOL:
        return st.booleans()
    if field.type == FD.TYPE_ENUM:
        return enums(field)
    if field.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    return integers(field)


def _timestamp(cls: type[message.Message]) -> st.SearchStrategy[message.Message]:
    seconds = st.one_of(
        st.sampled_from(TIMESTAMP_SECONDS),
        st.integers(min_value=1_600_000_000, max_value=2_000_000_000),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
    )
    nanos = st.one_of(st.sampled_from([0, 999_999_999, 1_000_000_000, -1]), st.integers(0, 10**9))
    return st.builds(lambda s, n: cls(seconds=s, nanos=n), seconds, nanos)


def messages(
    desc: descriptor.Descriptor, known: Sequence[str], depth: int = 0
) -> st.SearchStrategy[message.Message]:
    """Any instance of the message `desc`, fields set or left unset at random."""
    cls = message_factory.GetMessageClass(desc)
    if desc.full_name == "google.protobuf.Timestamp":
        return _timestamp(cls)
    if desc.full_name == "google.protobuf.FieldMask":
        paths = st.lists(strings(["default", "billing_details.email", "name", "*"]), max_size=3)
        return st.builds(lambda p: cls(paths=p), paths)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in desc.fields:
        value = _field(field, known, depth)
        if value is not None:
            fields[field.name] = value
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: _build(cls, values))


def _field(
    field: descriptor.FieldDescriptor, known: Sequence[str], depth: int
) -> st.SearchStrategy[Any] | None:
    if field.message_type is not None:
        if field.message_type.GetOptions().map_entry:
            key = field.message_type.fields_by_name["key"]
            value = field.message_type.fields_by_name["value"]
            return st.dictionaries(scalar(key, known), scalar(value, known), max_size=4)
        if depth >= MAX_DEPTH:
            return None
        inner = messages(field.message_type, known, depth + 1)
        return st.lists(inner, max_size=3) if _repeated(field) else inner
    single = scalar(field, known)
    return st.lists(single, max_size=4) if _repeated(field) else single


def _repeated(field: Any) -> bool:
    return bool(field.is_repeated)


def _build(cls: type[message.Message], values: Mapping[str, Any]) -> message.Message:
    built = cls()
    for name, value in values.items():
        field = built.DESCRIPTOR.fields_by_name[name]
        target = getattr(built, name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            target.update(value)
        elif _repeated(field):
            if field.message_type is not None:
                for item in value:
                    target.add().CopyFrom(item)
            else:
                target.extend(value)
        elif field.message_type is not None:
            target.CopyFrom(value)
        else:
            setattr(built, name, value)
    return built


def altered_tokens(genuine: str) -> st.SearchStrategy[str]:
    """Page tokens a client could make: the genuine one changed, cut, or forged anew."""

    def flip(position: int, char: str) -> str:
        at = position % max(1, len(genuine))
        return genuine[:at] + char + genuine[at + 1 :]

    body, _, tag = genuine.partition(".")
    try:
        genuine_json = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        genuine_json = {}

    nested = "[" * 3000 + "]" * 3000

    def forged(value: Any) -> str:
        """The genuine token's JSON, same query and id, with the sort value rewritten."""
        raw = json.dumps({**genuine_json, "v": value}).replace('"NESTED"', nested)
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    json_values = st.one_of(
        st.integers(),
        st.text(max_size=30),
        st.sampled_from(
            [
                2**64,
                -(2**70),
                "0001-01-01T00:00:00+14:00",
                "9999-12-31T23:59:59-14:00",
                "NESTED",
                None,
            ]
        ),
    )
    return st.one_of(
        st.builds(flip, st.integers(min_value=0), st.sampled_from("A_-.=\x00é")),
        st.integers(min_value=0, max_value=len(genuine)).map(lambda n: genuine[:n]),
        json_values.map(forged),
        json_values.map(lambda v: forged(v) + "." + tag),
        st.text(max_size=200),
    )


def edge_requests(desc: descriptor.Descriptor) -> list[message.Message]:
    """One request per (field, edge value): that field set, every other one left empty,
    so that no other field's refusal hides what the edge does."""
    sweeps: list[message.Message] = []
    for path, leaf in _leaves(desc):
        if leaf.type == FD.TYPE_STRING:
            values: Sequence[Any] = EDGE_STRINGS
        elif path[-1].name == "seconds" and leaf.containing_type.full_name.endswith("Timestamp"):
            values = TIMESTAMP_SECONDS
        elif leaf.type in INT_RANGES:
            values = INT_RANGES[leaf.type]
        elif leaf.type == FD.TYPE_ENUM:
            values = (2**31 - 1, -1)
        else:
            continue
        for value in values:
            sweeps.append(_with(desc, path, value))
    return sweeps


def _leaves(
    desc: descriptor.Descriptor, prefix: tuple[Any, ...] = ()
) -> list[tuple[tuple[Any, ...], Any]]:
    found: list[tuple[tuple[Any, ...], Any]] = []
    for field in desc.fields:
        path = (*prefix, field)
        if field.message_type is None:
            found.append((path, field))
        elif not field.message_type.GetOptions().map_entry and len(path) < MAX_DEPTH:
            found += _leaves(field.message_type, path)
    return found


def _with(desc: descriptor.Descriptor, path: tuple[Any, ...], value: Any) -> message.Message:
    built = message_factory.GetMessageClass(desc)()
    target: Any = built
    for field in path[:-1]:
        target = (
            getattr(target, field.name).add() if _repeated(field) else getattr(target, field.name)
        )
    leaf = path[-1]
    if _repeated(leaf):
        getattr(target, leaf.name).append(value)
    else:
        setattr(target, leaf.name, value)
    return built


def json_bodies() -> st.SearchStrategy[bytes]:
    """Webhook bodies: Stripe-shaped events with odd values, and any JSON at all."""
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), strings([])
    )
    anything = st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(strings([]), inner, max_size=3),
        max_leaves=10,
    )
    event_types = st.sampled_from(
        [
            "payment_intent.succeeded",
            "payment_intent.payment_failed",
            "payment_intent.canceled",
            "charge.refund.updated",
            "refund.updated",
            "invoice.paid",
            "customer.subscription.updated",
        ]
    )
    intent = st.fixed_dictionaries(
        {"id": strings(["pi_123"]), "object": st.just("payment_intent")},
        optional={
            "status": strings(["succeeded", "canceled", "requires_payment_method"]),
            "amount_received": st.one_of(st.integers(), strings([])),
            "metadata": st.one_of(anything, st.fixed_dictionaries({"payment_id": strings([])})),
            "last_payment_error": anything,
        },
    )
    event = st.fixed_dictionaries(
        {
            "id": strings(["evt_1"]),
            "type": st.one_of(event_types, strings([])),
            "data": st.one_of(st.fixed_dictionaries({"object": intent}), anything),
        }
    )
    return st.one_of(event.map(json.dumps), anything.map(json.dumps)).map(str.encode)
