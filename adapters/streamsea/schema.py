"""stream-sea schemas, sans-I/O: 0.7.0's ``FieldType`` and ``SchemaDefinition``, working, and
the payload check the embedded server runs on publish.

The spec and the JS client's types say what each field type holds but not what happens to a
missing or an extra field; these are actorwire's rules, the same on both ends:

- Every field a schema defines is required, at every level (each element of an
  ``array<object>`` too), and ``null`` is not a value of any type.
- A payload field the schema does not define is refused: the spec offers no leniency, and a
  typo in a field name must not pass as an unknown extra.
- ``date`` is exactly the documented ``YYYY-MM-DDTHH:mm:ssZ``: UTC, ASCII digits, a real
  calendar date and time, no fractional seconds and no offset but ``Z`` (so JavaScript's
  ``toISOString()``, which adds milliseconds, is refused).
- ``float`` takes an int or a finite float ("any JSON-serializable floating point value"),
  never a bool; ``integer`` takes an int, never a bool or a float (``3.0`` included: no JSON
  encoder writes an integer that way).
- Schemas nest at most ``MAX_DEPTH`` (32) levels of fields, checked before each descent; a
  payload is only walked where its schema leads, so neither hostile schemas nor hostile
  payloads can recurse without bound.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import enum
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

__all__ = [
    "MAX_DEPTH",
    "FieldType",
    "SchemaDefinition",
    "SchemaError",
    "validate",
    "validator",
]

MAX_DEPTH = 32
"""The most levels of fields a schema may nest: ``a.b.c`` is three."""


class FieldType(enum.StrEnum):
    """The 11 field types of stream-sea 4.x; each value is the type's name on the wire."""

    STRING = "string"
    FLOAT = "float"
    INTEGER = "integer"
    DATE = "date"
    STRING_ARRAY = "array<string>"
    FLOAT_ARRAY = "array<float>"
    INTEGER_ARRAY = "array<integer>"
    DATE_ARRAY = "array<date>"
    ENUM = "enum"
    OBJECT = "object"
    OBJECT_ARRAY = "array<object>"


_OBJECT_TYPES = frozenset({FieldType.OBJECT, FieldType.OBJECT_ARRAY})
_SCHEMA_KEYS = ("name", "version", "fields")
_FIELD_KEYS = ("name", "type", "enum", "fields")


class SchemaError(ValueError):
    """A payload that does not match its schema. ``path`` names the field (``trades[2].price``;
    empty for the payload itself); the message says what was expected and what came."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or 'payload'} {problem}")
        self.path = path
        self.problem = problem

    def __reduce__(self) -> tuple[type[SchemaError], tuple[str, str]]:
        return (type(self), (self.path, self.problem))


class _Field(NamedTuple):
    """One checked field: the immutable form every operation works from."""

    name: str
    type: FieldType
    enum: tuple[str, ...] | None  # set for ENUM only
    fields: tuple[_Field, ...] | None  # set for OBJECT and OBJECT_ARRAY only


class SchemaDefinition:
    """A stream's schema, as in stream-sea-client 0.7.0: ``name`` (the stream's name),
    ``version`` (an int, or a string as 0.7.0 documents) and ``fields``, a list of field dicts
    in wire form (``{"name", "type", "enum"?, "fields"?}``), order not significant.

    Unlike 0.7.0, ``fields`` is copied (no list shared between instances), checked on the
    way in, and ``add_child_field`` works. Equality compares fields as unordered sets.
    """

    def __init__(
        self, name: str, version: int | str, fields: Sequence[Mapping[str, Any]] | None = None
    ) -> None:
        _check_name(name, "schema name")
        _check_version(version)
        self.name = name
        self.version = version
        self.fields: list[dict[str, Any]] = (
            [] if fields is None else _emit(_parse_fields(fields, "fields", 1))
        )

    def add_field(
        self, name: str, type: FieldType | str, enumValues: Iterable[str] | None = None
    ) -> None:
        """Add a top-level field; ``enumValues`` (a list of strings) is for ``enum`` only.
        An ``object`` or ``array<object>`` field starts empty: fill it with
        ``add_child_field``."""
        field = _new_field(name, type, enumValues, "add_field")
        tree = self._tree()
        if any(f.name == name for f in tree):
            raise ValueError(f"add_field: schema {self.name!r} already has a field {name!r}")
        self.fields = _emit((*tree, field))

    def add_child_field(
        self,
        name: str,
        type: FieldType | str,
        parentField: str,
        enumValues: Iterable[str] | None = None,
    ) -> None:
        """Add a field inside the ``object`` or ``array<object>`` field ``parentField``, at any
        depth. ``parentField`` is a field name, found anywhere in the schema as 0.7.0 meant
        it, or a dotted path (``order.legs``) where that name alone is ambiguous."""
        where = "add_child_field"
        child = _new_field(name, type, enumValues, where)
        tree = self._tree()
        every = list(_walk(tree))
        found = [e for e in every if e[0] == parentField] or [
            e for e in every if e[2].name == parentField
        ]
        if not found:
            objects = [path for path, _, f in every if f.fields is not None]
            hint = _hint(parentField, [*objects, *(f.name for _, _, f in every)])
            raise ValueError(
                f"{where}: schema {self.name!r} has no field {parentField!r} to add {name!r} to"
                f"{hint}; object fields: {', '.join(objects) or 'none'}"
            )
        if len(found) > 1:
            paths = ", ".join(path for path, _, _ in found)
            raise ValueError(
                f"{where}: parentField {parentField!r} names {len(found)} fields ({paths}); "
                "give the dotted path of the one meant"
            )
        path, trail, parent = found[0]
        if parent.fields is None:
            raise ValueError(
                f"{where}: parent field {path!r} is {parent.type.value!r}, not an object: only "
                "object and array<object> fields have children"
            )
        if len(trail) >= MAX_DEPTH:
            raise ValueError(
                f"{where}: {path}.{name} would nest deeper than {MAX_DEPTH} levels of fields"
            )
        if any(f.name == name for f in parent.fields):
            raise ValueError(f"{where}: field {path!r} already has a field {name!r}")
        self.fields = _emit(_insert(tree, trail, child))

    def json_serialize(self) -> dict[str, Any]:
        """The schema as stream-sea's HTTP API takes and returns it:
        ``{"name", "version", "fields": [{"name", "type", "enum"?, "fields"?}]}``, a fresh copy
        (``fields`` edited by hand is checked again here)."""
        return {"name": self.name, "version": self.version, "fields": _emit(self._tree())}

    @classmethod
    def from_json(cls, obj: Any) -> SchemaDefinition:
        """Parse the ``json_serialize`` shape (a decoded JSON object); ValueError names the
        path of the first bad entry (``fields[1].fields[0].type``). Keys beyond the shape are
        refused, as 0.7.0's ``describe_stream`` does."""
        if not isinstance(obj, Mapping):
            raise ValueError(
                f"schema must be an object with name, version and fields, got {_describe(obj)}"
            )
        _check_keys(obj, _SCHEMA_KEYS, "schema")
        for key in _SCHEMA_KEYS:
            if key not in obj:
                raise ValueError(f"schema has no {key!r}; keys: {', '.join(_SCHEMA_KEYS)}")
        return cls(obj["name"], obj["version"], obj["fields"])

    def _tree(self) -> tuple[_Field, ...]:
        return _parse_fields(self.fields, "fields", 1)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SchemaDefinition):
            return NotImplemented
        if (self.name, self.version) != (other.name, other.version):
            return False
        try:
            return _set_key(self._tree()) == _set_key(other._tree())
        except ValueError:  # fields broken by hand: compare what is there
            return self.fields == other.fields

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"SchemaDefinition({self.name!r}, {self.version!r}, fields={self.fields!r})"


def validator(schema: SchemaDefinition | Mapping[str, Any]) -> Callable[[Any], None]:
    """``validate`` for one schema, prepared once (as a server does per stream version): the
    returned function raises SchemaError for a payload that does not match. The schema is
    read now; later edits to its ``fields`` do not reach the prepared check."""
    definition = (
        schema if isinstance(schema, SchemaDefinition) else SchemaDefinition.from_json(schema)
    )
    check = _object_check(definition._tree())

    def validate_payload(payload: Any) -> None:
        check(payload, "", "")

    return validate_payload


def validate(schema: SchemaDefinition | Mapping[str, Any], payload: Any) -> None:
    """Raise SchemaError naming the first field of ``payload`` (a decoded JSON object) that
    breaks ``schema`` (a SchemaDefinition or its JSON form): a wrong type, a missing field,
    a field the schema does not define. The rules are in this module's docstring."""
    validator(schema)(payload)


# --- reading a schema ---------------------------------------------------------------------


def _parse_fields(raw: Any, path: str, depth: int) -> tuple[_Field, ...]:
    if not isinstance(raw, list | tuple):
        raise ValueError(f"schema {path} must be a list of fields, got {_describe(raw)}")
    fields: list[_Field] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        where = f"{path}[{i}]"
        field = _parse_field(entry, where, depth)
        if field.name in seen:
            raise ValueError(f"schema {where}.name: field {field.name!r} is defined twice")
        seen.add(field.name)
        fields.append(field)
    return tuple(fields)


def _parse_field(entry: Any, where: str, depth: int) -> _Field:
    # Checked before anything nested is read: the bound on recursion for hostile input.
    if depth > MAX_DEPTH:
        raise ValueError(f"schema {where} nests deeper than {MAX_DEPTH} levels of fields")
    if not isinstance(entry, Mapping):
        raise ValueError(
            f"schema {where} must be an object with name and type, got {_describe(entry)}"
        )
    _check_keys(entry, _FIELD_KEYS, f"schema {where}")
    for key in ("name", "type"):
        if key not in entry:
            raise ValueError(f"schema {where} has no {key!r}")
    name = entry["name"]
    _check_name(name, f"schema {where}.name")
    kind = _field_type(entry["type"], f"schema {where}.type")
    values = None
    if kind is FieldType.ENUM:
        if "enum" not in entry:
            raise ValueError(f"schema {where} ({name!r}) is an enum without 'enum' values")
        values = _enum_values(entry["enum"], f"schema {where}.enum")
    elif "enum" in entry:
        raise ValueError(f"schema {where}.enum: only enum fields have values, {name!r} is {kind}")
    children = None
    if kind in _OBJECT_TYPES:
        if "fields" not in entry:
            raise ValueError(f"schema {where} ({name!r}) is {kind} without 'fields'")
        children = _parse_fields(entry["fields"], f"{where}.fields", depth + 1)
    elif "fields" in entry:
        raise ValueError(
            f"schema {where}.fields: only object and array<object> fields have fields, "
            f"{name!r} is {kind}"
        )
    return _Field(name, kind, values, children)


def _new_field(name: Any, kind: Any, values: Any, where: str) -> _Field:
    _check_name(name, f"{where}: name")
    kind = _field_type(kind, f"{where}: type")
    if kind is FieldType.ENUM:
        if values is None:
            raise ValueError(f"{where}: enum field {name!r} needs enumValues")
        return _Field(name, kind, _enum_values(values, f"{where}: enumValues"), None)
    if values is not None:
        raise ValueError(f"{where}: enumValues is for enum fields only, {name!r} is {kind}")
    return _Field(name, kind, None, () if kind in _OBJECT_TYPES else None)


def _check_keys(obj: Mapping[Any, Any], known: tuple[str, ...], where: str) -> None:
    for key in obj:
        if key not in known:
            hint = _hint(key, known) if isinstance(key, str) else ""
            raise ValueError(f"{where} has an unknown key {key!r}{hint}; keys: {', '.join(known)}")


def _check_name(name: Any, where: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where} must be a non-empty string, got {_describe(name)}")


def _check_version(version: Any) -> None:
    if isinstance(version, bool) or not isinstance(version, int | str) or version == "":
        raise ValueError(
            f"schema version must be an integer or a non-empty string, got {_describe(version)}"
        )


def _field_type(value: Any, where: str) -> FieldType:
    if isinstance(value, str):
        try:
            return FieldType(value)
        except ValueError:
            pass
    hint = _hint(value, [t.value for t in FieldType]) if isinstance(value, str) else ""
    raise ValueError(f"{where} must be one of {', '.join(FieldType)}, got {_describe(value)}{hint}")


def _enum_values(values: Any, where: str) -> tuple[str, ...]:
    # 0.7.0 annotates enumValues as a dict, but the wire form is a list of strings.
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise ValueError(f"{where} must be a list of strings, got {_describe(values)}")
    out = tuple(values)
    if not out:
        raise ValueError(f"{where} must list at least one value (an empty enum admits nothing)")
    for i, value in enumerate(out):
        if not isinstance(value, str):
            raise ValueError(f"{where}[{i}] must be a string, got {_describe(value)}")
    return out


def _emit(fields: tuple[_Field, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in fields:
        entry: dict[str, Any] = {"name": f.name, "type": f.type.value}
        if f.enum is not None:
            entry["enum"] = list(f.enum)
        if f.fields is not None:
            entry["fields"] = _emit(f.fields)
        out.append(entry)
    return out


def _walk(
    fields: tuple[_Field, ...], prefix: str = "", trail: tuple[int, ...] = ()
) -> Iterator[tuple[str, tuple[int, ...], _Field]]:
    """Every field with its dotted path and its index path, depth first."""
    for i, f in enumerate(fields):
        path = f"{prefix}.{f.name}" if prefix else f.name
        yield path, (*trail, i), f
        if f.fields is not None:
            yield from _walk(f.fields, path, (*trail, i))


def _insert(
    fields: tuple[_Field, ...], trail: tuple[int, ...], child: _Field
) -> tuple[_Field, ...]:
    """``fields`` with ``child`` appended to the field at index path ``trail``."""
    i, rest = trail[0], trail[1:]
    parent = fields[i]
    children = parent.fields or ()
    nested = _insert(children, rest, child) if rest else (*children, child)
    return (*fields[:i], parent._replace(fields=nested), *fields[i + 1 :])


def _set_key(fields: tuple[_Field, ...]) -> frozenset[Any]:
    """Fields as an unordered set, recursively: the spec's "order does not matter"."""
    return frozenset(
        (
            f.name,
            f.type,
            None if f.enum is None else frozenset(f.enum),
            None if f.fields is None else _set_key(f.fields),
        )
        for f in fields
    )


# --- checking a payload -------------------------------------------------------------------

# A prepared check: (value, parent's path, key in the parent) -> None or SchemaError. The
# value's own path is only built on an error or a descent, not for every field.
_Check = Callable[[Any, str, str | int], None]
_MISSING = object()


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_float(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_DATE_TEXT = 'a UTC date "YYYY-MM-DDTHH:mm:ssZ"'


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or _DATE.fullmatch(value) is None:
        return False
    try:
        _dt.datetime(
            int(value[0:4]),
            int(value[5:7]),
            int(value[8:10]),
            int(value[11:13]),
            int(value[14:16]),
            int(value[17:19]),
        )
    except ValueError:
        return False
    return True


def _date_hint(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    if _DATE.fullmatch(value):
        return " (no such date or time)"
    try:
        _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return ""
    return " (ISO 8601, but the format has no fractional seconds and no offset other than Z)"


_SCALARS: dict[FieldType, tuple[Callable[[Any], bool], str]] = {
    FieldType.STRING: (_is_string, "a string"),
    FieldType.FLOAT: (_is_float, "a finite number"),
    FieldType.INTEGER: (_is_integer, "an integer"),
    FieldType.DATE: (_is_date, _DATE_TEXT),
}
_ARRAY_OF: dict[FieldType, FieldType] = {
    FieldType.STRING_ARRAY: FieldType.STRING,
    FieldType.FLOAT_ARRAY: FieldType.FLOAT,
    FieldType.INTEGER_ARRAY: FieldType.INTEGER,
    FieldType.DATE_ARRAY: FieldType.DATE,
}
_EXPECTED: dict[FieldType, str] = {
    **{kind: text for kind, (_, text) in _SCALARS.items()},
    FieldType.STRING_ARRAY: "an array of strings",
    FieldType.FLOAT_ARRAY: "an array of finite numbers",
    FieldType.INTEGER_ARRAY: "an array of integers",
    FieldType.DATE_ARRAY: "an array of UTC dates",
    FieldType.OBJECT: "an object",
    FieldType.OBJECT_ARRAY: "an array of objects",
}


def _value_check(field: _Field) -> _Check:
    kind = field.type
    if kind in _SCALARS:
        ok, expected = _SCALARS[kind]
        return _scalar_check(ok, expected, kind is FieldType.DATE)
    if kind in _ARRAY_OF:
        ok, expected = _SCALARS[_ARRAY_OF[kind]]
        return _array_check(_scalar_check(ok, expected, kind is FieldType.DATE_ARRAY), kind)
    if kind is FieldType.ENUM:
        return _enum_check(field.enum or ())
    children = _object_check(field.fields or ())
    if kind is FieldType.OBJECT:
        return children
    return _array_check(children, kind)


def _scalar_check(ok: Callable[[Any], bool], expected: str, date: bool) -> _Check:
    def check(value: Any, parent: str, key: str | int) -> None:
        if not ok(value):
            hint = _date_hint(value) if date else ""
            raise SchemaError(
                _path(parent, key), f"must be {expected}, got {_describe(value)}{hint}"
            )

    return check


def _expected(field: _Field) -> str:
    if field.type is FieldType.ENUM:
        return _one_of(field.enum or ())
    return _EXPECTED[field.type]


def _one_of(values: tuple[str, ...]) -> str:
    shown = ", ".join(repr(v) for v in values[:10]) + (", ..." if len(values) > 10 else "")
    return f"one of {shown}"


def _enum_check(values: tuple[str, ...]) -> _Check:
    allowed = frozenset(values)
    expected = _one_of(values)

    def check(value: Any, parent: str, key: str | int) -> None:
        if not (isinstance(value, str) and value in allowed):
            hint = _hint(value, values) if isinstance(value, str) else ""
            raise SchemaError(
                _path(parent, key), f"must be {expected}, got {_describe(value)}{hint}"
            )

    return check


def _array_check(element: _Check, kind: FieldType) -> _Check:
    expected = _EXPECTED[kind]

    def check(value: Any, parent: str, key: str | int) -> None:
        if not isinstance(value, list | tuple):
            raise SchemaError(_path(parent, key), f"must be {expected}, got {_describe(value)}")
        path = _path(parent, key)
        for i, item in enumerate(value):
            element(item, path, i)

    return check


def _object_check(fields: tuple[_Field, ...]) -> _Check:
    members = tuple((f.name, _value_check(f), _expected(f)) for f in fields)
    names = frozenset(f.name for f in fields)
    listing = ", ".join(f.name for f in fields) or "none"

    def check(value: Any, parent: str, key: str | int) -> None:
        if not isinstance(value, dict):
            raise SchemaError(_path(parent, key), f"must be an object, got {_describe(value)}")
        path = _path(parent, key)
        for name, member, expected in members:
            item = value.get(name, _MISSING)
            if item is _MISSING:
                raise SchemaError(_path(path, name), f"is missing (expected {expected})")
            member(item, path, name)
        # Every schema field is present, so a longer object has a field the schema lacks.
        if len(value) > len(members):
            extra = next(k for k in value if k not in names)
            hint = _hint(extra, names) if isinstance(extra, str) else ""
            raise SchemaError(
                _path(path, str(extra)), f"is not in the schema{hint}; fields here: {listing}"
            )

    return check


# --- messages -----------------------------------------------------------------------------


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(value: Any) -> str:
    """A value in JSON's terms, short and safe: no repr of a container (a hostile one may
    nest too deep for repr) and no str of a huge int (Python refuses those)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        if value.bit_length() > 64:
            return f"a {value.bit_length()}-bit integer"
        return f"integer {int(value)}"
    if isinstance(value, float):
        return f"number {float(value)!r}"
    if isinstance(value, str):
        return f"string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, list | tuple):
        return f"an array of {len(value)} items"
    if isinstance(value, Mapping):
        return f"an object with {len(value)} keys"
    return f"a Python {type(value).__name__}"
