"""Sans-I/O pieces shared by the KeySession client and the embedded platform.

Topic keys and wildcard matching, the JSON codec for record data, and field-type checks.
No sockets and no threads: everything here is plain data in, plain data out.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Hashable, Mapping
from math import isfinite
from operator import itemgetter
from typing import Any, Generic, TypeVar

import orjson

from ...actors.serving import TopicIndex
from . import keysquare_pb2 as pb

__all__ = [
    "FIELD_TYPES",
    "GROUP_WILDCARD",
    "ID_WILDCARD",
    "SOURCE_WILDCARD",
    "PatternIndex",
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


S = TypeVar("S", bound=Hashable)

_FORMS = 1 << 5  # which of a topic's five fields a pattern sets: bit i for field i


def _form(pattern: TopicKey) -> int:
    return sum(1 << i for i, value in enumerate(pattern) if value)


def _probe(form: int) -> Callable[[tuple[str, ...]], TopicKey]:
    """From a key padded with one "" (index 5): the key with the fields ``form`` leaves
    open emptied, which is how a pattern of that form is filed."""
    return itemgetter(*(i if form >> i & 1 else 5 for i in range(5)))


_PROBES = tuple(_probe(form) for form in range(_FORMS))


class PatternIndex(Generic[S]):
    """Subscribers by topic pattern (an empty field matches anything, as in ``matches``):
    ``match(key)`` costs the matching subscribers and one dict lookup per pattern form in
    use, not a pass over every pattern.

    A pattern is filed under itself (its topic key, empty fields as ""); a key looks up
    itself with the fields each form in use leaves open emptied (at most 2^5 forms), and
    skips the forms that set a field the key leaves empty, which nothing set can match.
    So each matching (subscriber, pattern) is found exactly once.
    """

    def __init__(self) -> None:
        self._index: TopicIndex[TopicKey, S] = TopicIndex()
        self._forms: dict[int, int] = {}  # form -> how many patterns have it
        # The forms in use, each with its probe: one lookup each per key.
        self._probes: tuple[tuple[int, Callable[[tuple[str, ...]], TopicKey]], ...] = ()

    def add(self, subscriber: S, pattern: TopicKey) -> None:
        """File ``subscriber`` under ``pattern`` (adding it again changes nothing)."""
        if pattern in self._index.keys(subscriber):
            return
        self._index.add(subscriber, pattern)
        form = _form(pattern)
        count = self._forms.get(form, 0)
        self._forms[form] = count + 1
        if not count:
            self._update_probes()

    def remove(self, subscriber: S) -> None:
        """Every pattern of ``subscriber``."""
        for pattern in self._index.keys(subscriber):
            assert pattern is not None  # patterns are always filed under a key
            self._index.remove(subscriber, pattern)
            form = _form(pattern)
            count = self._forms[form] - 1
            if count:
                self._forms[form] = count
            else:
                del self._forms[form]
                self._update_probes()

    def _update_probes(self) -> None:
        self._probes = tuple((form, _PROBES[form]) for form in sorted(self._forms, reverse=True))

    def match(self, key: TopicKey) -> list[S]:
        """The subscribers with a pattern matching ``key``, once per such pattern."""
        probes = self._probes
        if not probes:
            return []
        schema, data_type, source, group, id_ = key
        empty = (
            (not schema)
            | (not data_type) << 1
            | (not source) << 2
            | (not group) << 3
            | (not id_) << 4
        )
        padded = (schema, data_type, source, group, id_, "")
        match = self._index.match
        if len(probes) == 1:
            form, probe = probes[0]
            return [] if form & empty else match(probe(padded))
        found: list[S] = []
        for form, probe in probes:
            if not form & empty:
                found += match(probe(padded))
        return found

    def __len__(self) -> int:
        """How many (subscriber, pattern) pairs are filed."""
        return sum(self._forms.values())


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", errors="replace")
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    raise TypeError(f"cannot encode {type(value).__name__} in record data")


# orjson: about 15x faster than the json module at encoding these small records and 7x at
# decoding (measured on this machine kind); every record is encoded once and decoded twice.
_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY


def encode_data(data: Mapping[str, Any]) -> bytes:
    """A record's fields as compact UTF-8 JSON (datetimes as ISO 8601 with timezone; a
    naive datetime is taken as UTC)."""
    if not isinstance(data, Mapping):
        raise TypeError(f"record data must be a dict, got {type(data).__name__}")
    try:
        return orjson.dumps(data, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"record data cannot be encoded: {exc}") from None


def decode_data(raw: bytes) -> dict[str, Any]:
    """Parse record data; raises ValueError unless it is a JSON object."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
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
        return isinstance(value, str) and _is_time_text(value)
    return kind == "json"


def _is_time_text(value: str) -> bool:
    """True for an ISO 8601 date or time ("Z" for UTC allowed)."""
    try:
        _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _time_text(value: Any) -> bool:
    return type(value) is str and _is_time_text(value)


def _anything(value: Any) -> bool:
    return True


# Exact value types that are always right for a field kind: one set lookup on the hot path.
_FAST_OK: dict[str, frozenset[type]] = {
    "string": frozenset({str, type(None)}),
    "float": frozenset({int, type(None)}),  # a float must also be finite: checked below
    "int": frozenset({int, type(None)}),
    "bool": frozenset({bool, type(None)}),
    "timestamp": frozenset({int, float, type(None)}),  # epoch seconds, as _check_value
    "json": frozenset({str, int, float, bool, dict, list, type(None)}),
}


def check_fields(type_name: str, fields: Mapping[str, str], data: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first field that the type does not define or that has
    the wrong kind of value."""
    fast = _FAST_OK
    for name, value in data.items():
        kind = fields.get(name)
        if kind is not None:
            ok = fast.get(kind)
            if ok is not None and type(value) in ok:
                continue
            if kind == "float" and type(value) is float and isfinite(value):
                continue
        if kind is None:
            known = ", ".join(sorted(fields))
            raise ValueError(f"{type_name} has no field {name!r} (fields: {known})")
        if not _check_value(kind, value):
            raise ValueError(
                f"{type_name}.{name} must be {kind}, got {type(value).__name__} {value!r:.60}"
            )


def field_checker(
    type_name: str, fields: Mapping[str, str], *, decoded: bool = False
) -> Callable[[Mapping[str, Any]], None]:
    """``check_fields`` for one type, with its per-field fast path prepared once: a value of
    an always-right type costs a dict and a set lookup; a value whose type alone does not
    decide (a float, a timestamp string, anything in a json field) one more look. Every
    field type is covered: only a wrong value, or a subclass of the expected type (numpy's
    float64, say), takes the full check, which raises naming the first bad field.
    ``decoded=True`` is for data from ``decode_data``: orjson refuses NaN and infinities,
    so its floats need no finiteness check."""
    fast = {
        name: _FAST_OK.get(kind, frozenset()) | ({float} if kind == "float" and decoded else set())
        for name, kind in fields.items()
    }
    # What the exact type cannot tell: a user's float must be finite (inline below: the
    # commonest case), a timestamp string must be ISO 8601, a json field takes any value.
    floats = frozenset() if decoded else frozenset(n for n, k in fields.items() if k == "float")
    looks = {"timestamp": _time_text, "json": _anything}
    second = {name: looks[kind] for name, kind in fields.items() if kind in looks}
    unknown: frozenset[type] = frozenset()

    def check(data: Mapping[str, Any]) -> None:
        for name, value in data.items():
            if type(value) in fast.get(name, unknown):
                continue
            if type(value) is float and name in floats and isfinite(value):
                continue
            look = second.get(name)
            if look is not None and look(value):
                continue
            check_fields(type_name, fields, data)
            return

    return check
