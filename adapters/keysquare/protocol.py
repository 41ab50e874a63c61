"""Sans-I/O pieces shared by the KeySession client and the embedded platform.

Topic keys and wildcard matching, the JSON codec for record data, and field-type checks.
No sockets and no threads: everything here is plain data in, plain data out.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping
from typing import Any

from . import keysquare_pb2 as pb

__all__ = [
    "FIELD_TYPES",
    "GROUP_WILDCARD",
    "ID_WILDCARD",
    "SOURCE_WILDCARD",
    "TopicKey",
    "check_fields",
    "decode_data",
    "encode_data",
    "matches",
    "topic_key",
]

SOURCE_WILDCARD = ""
GROUP_WILDCARD = ""
ID_WILDCARD = ""

TopicKey = tuple[str, str, str, str, str]
"""(schema, data_type, source, group, id): one record's identity on the platform."""

FIELD_TYPES = ("string", "float", "int", "bool", "timestamp", "json")


def topic_key(header: pb.KeyHeader | pb.Topic) -> TopicKey:
    """The identity of a record (or an exact topic)."""
    return (header.schema, header.data_type, header.source, header.group, header.id)


def matches(pattern: pb.Topic, header: pb.KeyHeader) -> bool:
    """True when ``header`` falls under ``pattern`` (empty pattern fields match anything)."""
    return (
        (not pattern.schema or pattern.schema == header.schema)
        and (not pattern.data_type or pattern.data_type == header.data_type)
        and (not pattern.source or pattern.source == header.source)
        and (not pattern.group or pattern.group == header.group)
        and (not pattern.id or pattern.id == header.id)
    )


def _default(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        return value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", errors="replace")
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    raise TypeError(f"cannot encode {type(value).__name__} in record data")


def encode_data(data: Mapping[str, Any]) -> bytes:
    """A record's fields as compact UTF-8 JSON (datetimes as ISO 8601 with timezone)."""
    if not isinstance(data, Mapping):
        raise TypeError(f"record data must be a dict, got {type(data).__name__}")
    return json.dumps(data, default=_default, separators=(",", ":"), allow_nan=False).encode()


def decode_data(raw: bytes) -> dict[str, Any]:
    """Parse record data; raises ValueError unless it is a JSON object."""
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"record data is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"record data must be a JSON object, got {type(value).__name__}")
    return value


def _check_value(kind: str, value: Any) -> bool:
    if value is None:
        return True  # fields are nullable
    if kind == "string":
        return isinstance(value, str)
    if kind == "float":
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (not isinstance(value, float) or math.isfinite(value))
        )
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "timestamp":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True
        if isinstance(value, str):
            try:
                _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return False
            return True
        return False
    return kind == "json"


def check_fields(type_name: str, fields: Mapping[str, str], data: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first field that the type does not define or that has
    the wrong kind of value."""
    for name, value in data.items():
        kind = fields.get(name)
        if kind is None:
            known = ", ".join(sorted(fields))
            raise ValueError(f"{type_name} has no field {name!r} (fields: {known})")
        if not _check_value(kind, value):
            raise ValueError(
                f"{type_name}.{name} must be {kind}, got {type(value).__name__} {value!r:.60}"
            )
