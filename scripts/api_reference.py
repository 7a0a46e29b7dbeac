"""docs/api.md from the comments in proto/: the API reference, written by `make generate`.

protoc keeps every comment in the descriptors' source_code_info when asked
(--include_source_info); this renders them as Markdown, so the reference cannot say
anything the .proto files do not.
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf import descriptor_pb2

FieldType = descriptor_pb2.FieldDescriptorProto
# Paths into FileDescriptorProto / DescriptorProto (descriptor.proto field numbers).
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_FIELD, _NESTED_MESSAGE, _NESTED_ENUM = 2, 3, 4
_ENUM_VALUE, _METHOD = 2, 2
_SCALARS = {
    value: name.removeprefix("TYPE_").lower()
    for name, value in FieldType.Type.items()
    if name not in ("TYPE_MESSAGE", "TYPE_ENUM", "TYPE_GROUP")
}

HEADER = """# API reference

Written by `make generate` (scripts/api_reference.py) from the comments in
`proto/payments/v1/*.proto`; edit those, not this file (`make lint` fails when it is
stale). Every service answers errors with a rich status: see [errors](errors.md).
JSON (grpcurl) renders `int64` fields such as `minor_units` as strings.
"""


class _Comments:
    def __init__(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        self._by_path = {
            tuple(location.path): location.leading_comments.strip()
            for location in file.source_code_info.location
        }

    def __call__(self, *path: int) -> str:
        return self._by_path.get(path, "")


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _paragraphs(text: str) -> str:
    return "\n".join(line.strip() for line in text.splitlines())


def _link(type_name: str, package: str) -> str:
    """`.payments.v1.Money` -> [Money](#money); well-known types by their full name."""
    name = type_name.lstrip(".")
    if name.startswith(f"{package}."):
        local = name.removeprefix(f"{package}.")
        return f"[`{local}`](#{local.replace('.', '').lower()})"
    return f"`{name}`"


def _field_type(
    field: descriptor_pb2.FieldDescriptorProto,
    maps: dict[str, descriptor_pb2.DescriptorProto],
    package: str,
) -> str:
    if field.type_name.lstrip(".") in maps:
        key, value = maps[field.type_name.lstrip(".")].field
        return f"map<{_field_type(key, maps, package)}, {_field_type(value, maps, package)}>"
    kind = _link(field.type_name, package) if field.type_name else f"`{_SCALARS[field.type]}`"
    return f"repeated {kind}" if field.label == FieldType.LABEL_REPEATED else kind


def _walk(
    messages: list[descriptor_pb2.DescriptorProto], path: tuple[int, ...], prefix: str
) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto, tuple[int, ...]]]:
    for index, message in enumerate(messages):
        here = (*path, index)
        name = f"{prefix}{message.name}"
        yield name, message, here
        yield from _walk(list(message.nested_type), (*here, _NESTED_MESSAGE), f"{name}.")


def _enum(
    name: str, enum: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...], notes: _Comments
) -> list[str]:
    lines = [f"### {name}", "", _paragraphs(notes(*path)), "", "| value | number | meaning |"]
    lines.append("|---|---|---|")
    for index, value in enumerate(enum.value):
        meaning = _one_line(notes(*path, _ENUM_VALUE, index))
        lines.append(f"| `{value.name}` | {value.number} | {meaning} |")
    return [*lines, ""]


def _message(
    name: str,
    message: descriptor_pb2.DescriptorProto,
    path: tuple[int, ...],
    notes: _Comments,
    maps: dict[str, descriptor_pb2.DescriptorProto],
    package: str,
) -> list[str]:
    lines = [f"### {name}", "", _paragraphs(notes(*path)), ""]
    if not message.field:
        return [*lines, "No fields.", ""]
    lines += ["| field | type | meaning |", "|---|---|---|"]
    for index, field in enumerate(message.field):
        meaning = _one_line(notes(*path, _FIELD, index))
        if field.HasField("oneof_index") and not field.proto3_optional:
            meaning = f"One of `{message.oneof_decl[field.oneof_index].name}`. {meaning}"
        kind = _field_type(field, maps, package)
        lines.append(f"| `{field.name}` | {kind} | {meaning} |")
    return [*lines, ""]


def render(files: descriptor_pb2.FileDescriptorSet) -> str:
    services: list[str] = ["## Services", ""]
    messages: list[str] = ["## Messages", ""]
    enums: list[str] = ["## Enums", ""]
    for file in sorted(files.file, key=lambda f: f.name):
        notes, package = _Comments(file), file.package
        walked = list(_walk(list(file.message_type), (_MESSAGE,), ""))
        maps = {f"{package}.{n}": m for n, m, _ in walked if m.options.map_entry}
        for index, service in enumerate(file.service):
            services += [f"### {package}.{service.name}", "", f"`{file.name}`", ""]
            services += [_paragraphs(notes(_SERVICE, index)), ""]
            services += ["| method | request | response | what it does |", "|---|---|---|---|"]
            for m_index, method in enumerate(service.method):
                does = _one_line(notes(_SERVICE, index, _METHOD, m_index))
                request = _link(method.input_type, package)
                response = _link(method.output_type, package)
                services.append(f"| `{method.name}` | {request} | {response} | {does} |")
            services.append("")
        for name, message, path in walked:
            if not message.options.map_entry:
                messages += _message(name, message, path, notes, maps, package)
            for e_index, enum in enumerate(message.enum_type):
                enums += _enum(f"{name}.{enum.name}", enum, (*path, _NESTED_ENUM, e_index), notes)
        for index, enum in enumerate(file.enum_type):
            enums += _enum(enum.name, enum, (_ENUM, index), notes)
    text = "\n".join([HEADER, *services, *messages, *enums])
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip() + "\n"
