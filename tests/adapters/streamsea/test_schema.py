"""stream-sea schemas: 0.7.0's SchemaDefinition working (no shared default, add_child_field at
any depth, json_serialize in the wire shape, from_json back with path-naming errors), and
payload validation for every field type, refusals naming the exact field path. Hypothesis:
random schemas with generated valid payloads always pass, and one wrong leaf, a missing field
or an unknown one is always refused naming that path."""

from __future__ import annotations

import copy
import json
import math
import pickle
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from actorwire.adapters.streamsea.schema import (
    MAX_DEPTH,
    FieldType,
    SchemaDefinition,
    SchemaError,
    validate,
    validator,
)
from hypothesis import given, settings
from hypothesis import strategies as st

# --- FieldType and SchemaDefinition -------------------------------------------------------


def test_field_types_are_0_7_0s_eleven_wire_names() -> None:
    assert {t.name: t.value for t in FieldType} == {
        "STRING": "string",
        "FLOAT": "float",
        "INTEGER": "integer",
        "DATE": "date",
        "STRING_ARRAY": "array<string>",
        "FLOAT_ARRAY": "array<float>",
        "INTEGER_ARRAY": "array<integer>",
        "DATE_ARRAY": "array<date>",
        "ENUM": "enum",
        "OBJECT": "object",
        "OBJECT_ARRAY": "array<object>",
    }
    assert FieldType.ENUM == "enum"
    assert isinstance(FieldType.DATE, str)
    assert json.dumps(FieldType.OBJECT_ARRAY) == '"array<object>"'
    assert f"{FieldType.FLOAT}" == "float"


def test_no_shared_default_between_two_definitions() -> None:
    a = SchemaDefinition("a", 1)
    b = SchemaDefinition("b", 1)
    a.add_field("x", FieldType.STRING)
    assert a.fields == [{"name": "x", "type": "string"}]
    assert b.fields == []
    assert a.fields is not b.fields


def test_given_fields_are_copied_not_shared() -> None:
    fields = [{"name": "o", "type": "object", "fields": []}]
    a = SchemaDefinition("a", 1, fields)
    b = SchemaDefinition("b", 1, fields)
    a.add_child_field("x", "string", "o")
    assert fields == [{"name": "o", "type": "object", "fields": []}]
    assert b.fields == fields


def test_json_serialize_gives_the_wire_shape_for_every_type() -> None:
    s = SchemaDefinition("boiler_data", 3)
    for kind in FieldType:
        if kind is FieldType.ENUM:
            s.add_field("e", kind, enumValues=["low", "high"])
        else:
            s.add_field(kind.name.lower(), kind.value)  # a plain str works as well
    s.add_child_field("inner", FieldType.INTEGER, "object")
    s.add_child_field("inner", FieldType.DATE, "object_array")
    assert s.json_serialize() == {
        "name": "boiler_data",
        "version": 3,
        "fields": [
            {"name": "string", "type": "string"},
            {"name": "float", "type": "float"},
            {"name": "integer", "type": "integer"},
            {"name": "date", "type": "date"},
            {"name": "string_array", "type": "array<string>"},
            {"name": "float_array", "type": "array<float>"},
            {"name": "integer_array", "type": "array<integer>"},
            {"name": "date_array", "type": "array<date>"},
            {"name": "e", "type": "enum", "enum": ["low", "high"]},
            {"name": "object", "type": "object", "fields": [{"name": "inner", "type": "integer"}]},
            {
                "name": "object_array",
                "type": "array<object>",
                "fields": [{"name": "inner", "type": "date"}],
            },
        ],
    }
    # Plain JSON types only: the stdlib encoder and a decode give the same thing back.
    wire = json.loads(json.dumps(s.json_serialize()))
    assert all(type(f["type"]) is str for f in wire["fields"])
    assert SchemaDefinition.from_json(wire) == s
    assert SchemaDefinition.from_json(wire).json_serialize() == s.json_serialize()


def test_json_serialize_returns_a_copy() -> None:
    s = SchemaDefinition("s", 1)
    s.add_field("o", "object")
    out = s.json_serialize()
    out["fields"][0]["fields"].append({"name": "x", "type": "string"})
    assert s.fields == [{"name": "o", "type": "object", "fields": []}]


def test_add_child_field_nests_as_deep_as_needed() -> None:
    s = SchemaDefinition("orders", "1")
    s.add_field("order", FieldType.OBJECT)
    s.add_child_field("legs", FieldType.OBJECT_ARRAY, "order")
    s.add_child_field("fill", FieldType.OBJECT, "legs")
    s.add_child_field("at", FieldType.DATE, "fill")
    s.add_child_field("side", FieldType.ENUM, "legs", enumValues=("buy", "sell"))
    s.add_child_field("id", FieldType.STRING, "order")
    assert s.fields == [
        {
            "name": "order",
            "type": "object",
            "fields": [
                {
                    "name": "legs",
                    "type": "array<object>",
                    "fields": [
                        {
                            "name": "fill",
                            "type": "object",
                            "fields": [{"name": "at", "type": "date"}],
                        },
                        {"name": "side", "type": "enum", "enum": ["buy", "sell"]},
                    ],
                },
                {"name": "id", "type": "string"},
            ],
        }
    ]
    validate(
        s,
        {
            "order": {
                "id": "o1",
                "legs": [{"fill": {"at": "2020-06-01T12:00:00Z"}, "side": "buy"}],
            }
        },
    )


def test_add_child_field_takes_a_dotted_path_when_a_name_is_ambiguous() -> None:
    s = SchemaDefinition("s", 1)
    for top in ("a", "b"):
        s.add_field(top, "object")
        s.add_child_field("item", "object", top)
    with pytest.raises(ValueError, match=r"'item' names 2 fields \(a\.item, b\.item\)"):
        s.add_child_field("x", "string", "item")
    s.add_child_field("x", "string", "b.item")
    assert s.json_serialize()["fields"][1]["fields"][0]["fields"] == [
        {"name": "x", "type": "string"}
    ]
    assert s.fields[0]["fields"][0]["fields"] == []


def test_add_child_field_errors_name_the_parent() -> None:
    s = SchemaDefinition("s", 1)
    s.add_field("order", "object")
    s.add_field("price", "float")
    with pytest.raises(ValueError, match="no field 'ordr' to add 'x' to") as info:
        s.add_child_field("x", "string", "ordr")
    assert "did you mean 'order'?" in str(info.value)
    assert "object fields: order" in str(info.value)
    with pytest.raises(ValueError, match="parent field 'price' is 'float', not an object"):
        s.add_child_field("x", "string", "price")
    s.add_child_field("x", "string", "order")
    with pytest.raises(ValueError, match="'order' already has a field 'x'"):
        s.add_child_field("x", "integer", "order")
    with pytest.raises(ValueError, match=r"has no field 'nothing'.*object fields: none"):
        SchemaDefinition("t", 1).add_child_field("x", "string", "nothing")


def test_add_field_errors() -> None:
    s = SchemaDefinition("s", 1)
    s.add_field("a", "string")
    with pytest.raises(ValueError, match="already has a field 'a'"):
        s.add_field("a", "float")
    with pytest.raises(ValueError, match=r"type must be one of .* \(did you mean 'integer'\?\)"):
        s.add_field("b", "integr")
    with pytest.raises(ValueError, match="enum field 'b' needs enumValues"):
        s.add_field("b", FieldType.ENUM)
    with pytest.raises(ValueError, match="enumValues is for enum fields only"):
        s.add_field("b", FieldType.STRING, enumValues=["x"])
    with pytest.raises(ValueError, match="enumValues must be a list of strings, got string"):
        s.add_field("b", FieldType.ENUM, enumValues="xy")
    with pytest.raises(ValueError, match="enumValues must be a list of strings, got an object"):
        s.add_field("b", FieldType.ENUM, enumValues={"x": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one value"):
        s.add_field("b", FieldType.ENUM, enumValues=[])
    with pytest.raises(ValueError, match=r"enumValues\[1\] must be a string, got integer 2"):
        s.add_field("b", FieldType.ENUM, enumValues=["x", 2])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        s.add_field("", "string")
    assert s.fields == [{"name": "a", "type": "string"}]


def test_constructor_checks_name_and_version() -> None:
    with pytest.raises(ValueError, match="schema name must be a non-empty string, got null"):
        SchemaDefinition(None, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="version must be an integer or a non-empty string"):
        SchemaDefinition("s", True)
    with pytest.raises(ValueError, match=r"version must be .*, got number 1\.5"):
        SchemaDefinition("s", 1.5)  # type: ignore[arg-type]
    assert SchemaDefinition("s", "2").version == "2"


def test_depth_limit_on_add_child_field() -> None:
    s = SchemaDefinition("deep", 1)
    s.add_field("f1", "object")
    for level in range(2, MAX_DEPTH + 1):
        s.add_child_field(f"f{level}", "object", f"f{level - 1}")
    with pytest.raises(ValueError, match="would nest deeper than 32 levels"):
        s.add_child_field("leaf", "string", f"f{MAX_DEPTH}")
    validate(s, nested_payload(MAX_DEPTH))


def nested_schema(depth: int) -> dict[str, Any]:
    fields: list[dict[str, Any]] = []
    for level in range(depth, 0, -1):
        fields = [{"name": f"f{level}", "type": "object", "fields": fields}]
    return {"name": "deep", "version": 1, "fields": fields}


def nested_payload(depth: int) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for level in range(depth, 0, -1):
        payload = {f"f{level}": payload}
    return payload


def test_depth_limit_on_from_json() -> None:
    SchemaDefinition.from_json(nested_schema(MAX_DEPTH))
    deeper = nested_schema(MAX_DEPTH)
    leaf = deeper["fields"][0]
    for _ in range(MAX_DEPTH - 1):
        leaf = leaf["fields"][0]
    leaf["fields"] = [{"name": "x", "type": "string"}]
    with pytest.raises(ValueError, match=r"schema fields\[0\](\.fields\[0\]){32} nests deeper"):
        SchemaDefinition.from_json(deeper)


def test_hostile_schema_and_payload_nesting_cannot_recurse_without_bound() -> None:
    start = time.monotonic()
    with pytest.raises(ValueError, match="nests deeper than 32"):
        SchemaDefinition.from_json(nested_schema(100_000))
    s = SchemaDefinition.from_json(nested_schema(3))
    deep: Any = "x"
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(SchemaError, match=r"^f1\.f2\.f3 must be an object, got an array of 1"):
        validate(s, {"f1": {"f2": {"f3": deep}}})
    with pytest.raises(SchemaError, match=r"^f1\.f2\.f3\.z is not in the schema"):
        validate(s, {"f1": {"f2": {"f3": {"z": deep}}}})
    with pytest.raises(SchemaError, match=r"^payload must be an object, got an array of 1"):
        validate(s, deep)
    assert time.monotonic() - start < 2


def test_a_cycle_made_by_hand_is_caught_by_the_depth_limit() -> None:
    s = SchemaDefinition("s", 1)
    s.add_field("o", "object")
    s.fields[0]["fields"].append(s.fields[0])
    with pytest.raises(ValueError, match="nests deeper than 32"):
        s.json_serialize()
    with pytest.raises(ValueError, match="nests deeper than 32"):
        validate(s, {})


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "schema must be an object with name, version and fields, got an array of 0 items"),
        ({"name": "s", "version": 1}, "schema has no 'fields'"),
        (
            {"name": "s", "version": 1, "fields": [], "jail": "j"},
            "schema has an unknown key 'jail'; keys: name, version, fields",
        ),
        (
            {"name": "s", "version": 1, "fields": [], "field": []},
            r"unknown key 'field' \(did you mean 'fields'\?\)",
        ),
        ({"name": "", "version": 1, "fields": []}, "schema name must be a non-empty string"),
        ({"name": "s", "version": None, "fields": []}, "version must be an integer or"),
        ({"name": "s", "version": 1, "fields": {}}, "schema fields must be a list of fields"),
        ({"name": "s", "version": 1, "fields": ["a"]}, r"schema fields\[0\] must be an object"),
        (
            {"name": "s", "version": 1, "fields": [{"name": "a"}]},
            r"schema fields\[0\] has no 'type'",
        ),
        (
            {"name": "s", "version": 1, "fields": [{"type": "string"}]},
            r"schema fields\[0\] has no 'name'",
        ),
        (
            {"name": "s", "version": 1, "fields": [{"name": 3, "type": "string"}]},
            r"schema fields\[0\]\.name must be a non-empty string, got integer 3",
        ),
        (
            {"name": "s", "version": 1, "fields": [{"name": "a", "type": "str", "size": 1}]},
            r"schema fields\[0\] has an unknown key 'size'",
        ),
        (
            {"name": "s", "version": 1, "fields": [{"name": "a", "type": "strng"}]},
            r"schema fields\[0\]\.type must be one of .*got string 'strng' "
            r"\(did you mean 'string'\?\)",
        ),
        (
            {"name": "s", "version": 1, "fields": [{"name": "a", "type": 7}]},
            r"schema fields\[0\]\.type must be one of .*got integer 7$",
        ),
        (
            {
                "name": "s",
                "version": 1,
                "fields": [
                    {"name": "a", "type": "string"},
                    {"name": "o", "type": "object", "fields": [{"name": "e", "type": "enum"}]},
                ],
            },
            r"schema fields\[1\]\.fields\[0\] \('e'\) is an enum without 'enum' values",
        ),
        (
            {"name": "s", "version": 1, "fields": [{"name": "e", "type": "enum", "enum": "ab"}]},
            r"schema fields\[0\]\.enum must be a list of strings",
        ),
        (
            {"name": "s", "version": 1, "fields": [{"name": "e", "type": "enum", "enum": [1]}]},
            r"schema fields\[0\]\.enum\[0\] must be a string, got integer 1",
        ),
        (
            {"name": "s", "version": 1, "fields": [{"name": "a", "type": "string", "enum": []}]},
            r"schema fields\[0\]\.enum: only enum fields have values, 'a' is string",
        ),
        (
            {"name": "s", "version": 1, "fields": [{"name": "a", "type": "float", "fields": []}]},
            r"schema fields\[0\]\.fields: only object and array<object> fields have fields",
        ),
        (
            {"name": "s", "version": 1, "fields": [{"name": "o", "type": "array<object>"}]},
            r"schema fields\[0\] \('o'\) is array<object> without 'fields'",
        ),
        (
            {
                "name": "s",
                "version": 1,
                "fields": [{"name": "o", "type": "object", "fields": "x"}],
            },
            r"schema fields\[0\]\.fields must be a list of fields, got string 'x'",
        ),
        (
            {
                "name": "s",
                "version": 1,
                "fields": [{"name": "a", "type": "string"}, {"name": "a", "type": "date"}],
            },
            r"schema fields\[1\]\.name: field 'a' is defined twice",
        ),
    ],
)
def test_from_json_errors_name_the_path(obj: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SchemaDefinition.from_json(obj)


def test_equality_treats_fields_as_unordered_sets() -> None:
    a = SchemaDefinition("s", 1)
    a.add_field("x", "string")
    a.add_field("e", "enum", enumValues=["p", "q"])
    b = SchemaDefinition("s", 1)
    b.add_field("e", "enum", enumValues=["q", "p"])
    b.add_field("x", "string")
    assert a == b
    b.add_field("y", "string")
    assert a != b
    assert a != SchemaDefinition("s", 2, a.fields)
    assert a != "s"
    broken = SchemaDefinition("s", 1)
    broken.fields.append({"name": "bad"})
    assert broken != a
    assert "SchemaDefinition('s', 1, fields=[" in repr(a)
    with pytest.raises(TypeError):
        hash(a)


# --- validation: each field type ----------------------------------------------------------

DATE_OK = [
    "2020-02-29T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
]
DATE_BAD = [
    "2021-02-29T00:00:00Z",  # not a leap year
    "2020-13-01T00:00:00Z",
    "2020-04-31T00:00:00Z",
    "2020-01-01T24:00:00Z",
    "2020-01-01T00:60:00Z",
    "2020-01-01T00:00:60Z",  # no leap seconds
    "0000-01-01T00:00:00Z",
    "2020-01-01T00:00:00.000Z",  # toISOString()
    "2020-01-01T00:00:00+00:00",
    "2020-01-01T01:00:00+01:00",
    "2020-01-01T00:00:00",
    "2020-01-01 00:00:00Z",
    "2020-01-01t00:00:00z",
    "2020-1-01T00:00:00Z",
    "20200101T000000Z",
    "\uff12020-01-01T00:00:00Z",  # a fullwidth digit
    "2020-01-01T00:00:00Z\n",
    " 2020-01-01T00:00:00Z",
    "2020-01-01",
    "",
    1577836800,
    None,
]
EVERYTHING_WRONG = [None, {}, {"a": 1}, object()]


class Item:
    """A refused array whose element ``index`` is the bad one: the error names ``v[index]``."""

    def __init__(self, index: int, value: list[Any]) -> None:
        self.index = index
        self.value = value


# type -> (accepted, refused)
CASES: dict[str, tuple[list[Any], list[Any]]] = {
    "string": (["", "x", "ünïcode", "2020-01-01T00:00:00Z"], [1, 1.5, True, [], ["x"], b"x"]),
    "float": (
        [0, -3, 1.5, 1e300, 2**80, -0.0],
        ["1.5", True, False, math.nan, math.inf, -math.inf, [1.0]],
    ),
    "integer": ([0, -7, 2**80], [1.5, 2.0, "1", True, False, [1]]),
    "date": (DATE_OK, DATE_BAD),
    "array<string>": (
        [[], ["a", ""], ("a", "b")],
        ["ab", 1, Item(0, [1]), Item(1, ["a", None])],
    ),
    "array<float>": (
        [[], [1, 2.5]],
        [1.5, Item(0, ["1"]), Item(1, [1, True]), Item(2, [0, 0, math.nan])],
    ),
    "array<integer>": ([[], [1, 2**70]], [1, Item(0, [1.0]), Item(0, [False]), Item(1, [1, "1"])]),
    "array<date>": (
        [[], DATE_OK],
        [
            "2020-01-01T00:00:00Z",
            Item(0, ["2020-01-01"]),
            *(Item(1, [DATE_OK[0], d]) for d in DATE_BAD),
        ],
    ),
    "enum": (["buy", "sell"], ["Buy", "hold", "", 1, ["buy"]]),
}


def schema_with(kind: str, where: str) -> SchemaDefinition:
    """A schema holding field ``v`` of ``kind`` at the top (``where="top"``), inside object
    ``o``, or inside the objects of array ``a``."""
    s = SchemaDefinition("s", 1)
    values = ["buy", "sell"] if kind == "enum" else None
    if where == "top":
        s.add_field("v", kind, enumValues=values)
    else:
        s.add_field(
            "o" if where == "object" else "a", "object" if where == "object" else "array<object>"
        )
        s.add_child_field("v", kind, "o" if where == "object" else "a", enumValues=values)
    return s


def put(where: str, value: Any) -> tuple[dict[str, Any], str]:
    """A payload holding ``value`` as ``v`` at ``where``, and the path of ``v``."""
    if where == "top":
        return {"v": value}, "v"
    if where == "object":
        return {"o": {"v": value}}, "o.v"
    return {"a": [{"v": value}, {"v": value}]}, "a[0].v"


@pytest.mark.parametrize("where", ["top", "object", "array"])
@pytest.mark.parametrize("kind", list(CASES))
def test_each_type_accepts_and_refuses_with_the_exact_path(kind: str, where: str) -> None:
    schema = schema_with(kind, where)
    check = validator(schema)
    good, bad = CASES[kind]
    for value in good:
        payload, _ = put(where, value)
        check(payload)
        validate(schema.json_serialize(), payload)
    for refused in [*bad, *EVERYTHING_WRONG]:
        value = refused.value if isinstance(refused, Item) else refused
        payload, path = put(where, value)
        if isinstance(refused, Item):
            path = f"{path}[{refused.index}]"
        with pytest.raises(SchemaError) as info:
            check(payload)
        assert info.value.path == path, (value, str(info.value))
        assert str(info.value).startswith(f"{path} must be ")


def test_messages_say_what_was_expected_and_what_came() -> None:
    def message(kind: str, value: Any) -> str:
        with pytest.raises(SchemaError) as info:
            validate(schema_with(kind, "top"), {"v": value})
        return str(info.value)

    assert message("string", 5) == "v must be a string, got integer 5"
    assert message("float", True) == "v must be a finite number, got boolean true"
    assert message("float", math.nan) == "v must be a finite number, got number nan"
    assert message("integer", 2.0) == "v must be an integer, got number 2.0"
    assert message("integer", None) == "v must be an integer, got null"
    assert message("enum", "bye") == (
        "v must be one of 'buy', 'sell', got string 'bye' (did you mean 'buy'?)"
    )
    assert (
        message("array<float>", {})
        == "v must be an array of finite numbers, got an object with 0 keys"
    )
    assert message("array<integer>", [1, "2"]) == "v[1] must be an integer, got string '2'"
    assert message("date", "2020-01-01T00:00:00.5Z") == (
        "v must be a UTC date \"YYYY-MM-DDTHH:mm:ssZ\", got string '2020-01-01T00:00:00.5Z' "
        "(ISO 8601, but the format has no fractional seconds and no offset other than Z)"
    )
    assert message("date", "2021-02-29T00:00:00Z").endswith("(no such date or time)")
    assert message("date", "yesterday").endswith("got string 'yesterday'")
    assert message("string", 10**5000) == "v must be a string, got a 16610-bit integer"
    assert message("integer", "x" * 100) == f"v must be an integer, got string {'x' * 40!r}..."
    assert message("string", b"x") == "v must be a string, got a Python bytes"


def test_every_schema_field_is_required_at_every_level() -> None:
    s = SchemaDefinition("s", 1)
    s.add_field("trades", "array<object>")
    s.add_child_field("price", "float", "trades")
    s.add_child_field("side", "enum", "trades", enumValues=["buy", "sell"])
    ok = {"price": 1.5, "side": "buy"}
    validate(s, {"trades": [ok, ok]})
    with pytest.raises(SchemaError) as info:
        validate(s, {"trades": [ok, ok, {"side": "sell"}]})
    assert info.value.path == "trades[2].price"
    assert str(info.value) == "trades[2].price is missing (expected a finite number)"
    with pytest.raises(SchemaError, match=r"^trades is missing"):
        validate(s, {})
    with pytest.raises(SchemaError, match=r"^trades\[0\]\.side is missing \(expected one of"):
        validate(s, {"trades": [{"price": 1}]})


def test_fields_the_schema_does_not_define_are_refused() -> None:
    s = SchemaDefinition("s", 1)
    s.add_field("pressure", "integer")
    s.add_field("o", "object")
    s.add_child_field("temperature", "float", "o")
    with pytest.raises(SchemaError) as info:
        validate(s, {"pressure": 1, "o": {"temperature": 9, "temprature": 9}})
    assert info.value.path == "o.temprature"
    assert str(info.value) == (
        "o.temprature is not in the schema (did you mean 'temperature'?); fields here: temperature"
    )
    with pytest.raises(SchemaError, match=r"^7 is not in the schema; fields here: pressure, o$"):
        validate(s, {"pressure": 1, "o": {"temperature": 9}, 7: 1})
    with pytest.raises(SchemaError, match=r"^o\.x is not in the schema; fields here: none"):
        validate(
            SchemaDefinition.from_json(
                {
                    "name": "s",
                    "version": 1,
                    "fields": [{"name": "o", "type": "object", "fields": []}],
                }
            ),
            {"o": {"x": 1}},
        )


def test_payload_edge_cases() -> None:
    s = schema_with("string", "top")
    with pytest.raises(SchemaError) as info:
        validate(s, ["v"])
    assert info.value.path == ""
    assert str(info.value) == "payload must be an object, got an array of 1 items"
    # A defaultdict must not invent the missing field.
    with pytest.raises(SchemaError, match=r"^v is missing"):
        validate(s, defaultdict(str))
    validate(SchemaDefinition("empty", 1), {})


def test_validator_reads_the_schema_once() -> None:
    s = schema_with("string", "top")
    check = validator(s)
    s.add_field("w", "string")
    check({"v": "x"})
    with pytest.raises(SchemaError, match=r"^w is missing"):
        validate(s, {"v": "x"})


def test_schema_error_is_a_value_error_and_pickles() -> None:
    error = SchemaError("a[1].b", "must be a string, got integer 1")
    assert isinstance(error, ValueError)
    again = pickle.loads(pickle.dumps(error))
    assert (again.path, again.problem, str(again)) == (
        "a[1].b",
        "must be a string, got integer 1",
        "a[1].b must be a string, got integer 1",
    )


# --- hypothesis: random schemas, valid payloads, one mutation ------------------------------

SIMPLE = ["string", "float", "integer", "date"]
ARRAYS = [f"array<{t}>" for t in SIMPLE]
names = st.text(alphabet="abxy_", min_size=1, max_size=3)
enum_values = st.lists(st.text(alphabet="abc", max_size=3), min_size=1, max_size=4, unique=True)


def field_lists(depth: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    options = [
        st.builds(lambda n, t: {"name": n, "type": t}, names, st.sampled_from(SIMPLE + ARRAYS)),
        st.builds(lambda n, e: {"name": n, "type": "enum", "enum": e}, names, enum_values),
    ]
    if depth > 1:
        options.append(
            st.builds(
                lambda n, t, f: {"name": n, "type": t, "fields": f},
                names,
                st.sampled_from(["object", "array<object>"]),
                field_lists(depth - 1),
            )
        )
    return st.lists(st.one_of(options), max_size=3, unique_by=lambda f: f["name"])


schemas = st.builds(
    lambda n, v, f: {"name": n, "version": v, "fields": f},
    names,
    st.integers(0, 99) | st.text(alphabet="0123456789.", min_size=1, max_size=4),
    field_lists(4),
)

dates = st.datetimes().map(lambda d: d.isoformat(timespec="seconds") + "Z")
SCALAR_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=4),
    "float": st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False),
    "integer": st.integers(-(2**70), 2**70),
    "date": dates,
}


def values_for(field: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = field["type"]
    if kind in SCALAR_VALUES:
        return SCALAR_VALUES[kind]
    if kind in ARRAYS:
        return st.lists(SCALAR_VALUES[kind[6:-1]], max_size=2)
    if kind == "enum":
        return st.sampled_from(field["enum"])
    objects = payloads_for(field["fields"])
    return objects if kind == "object" else st.lists(objects, max_size=2)


def payloads_for(fields: list[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({f["name"]: values_for(f) for f in fields})


WRONG: dict[str, list[Any]] = {
    "string": [None, 0, 1.5, True, [], {}],
    "float": [None, "1.5", True, [], {}, math.nan, math.inf],
    "integer": [None, 1.5, 2.0, "1", False, []],
    "date": [None, 0, "2020-01-01", "2020-01-01T00:00:00.000Z", "2020-02-30T00:00:00Z"],
    "enum": [None, 1, "ZZ", ["a"]],  # enum values are drawn from "abc"
    "object": [None, [], "x", 1],
    **{kind: [None, {}, "abc", 1] for kind in [*ARRAYS, "array<object>"]},
}


def positions(
    fields: list[dict[str, Any]], obj: dict[str, Any], path: str = ""
) -> Iterator[tuple[str, Any, Any, str]]:
    """Every value in a valid payload: (path, container, key in it, the type it must have)."""
    for field in fields:
        name, kind = field["name"], field["type"]
        here = f"{path}.{name}" if path else name
        yield here, obj, name, kind
        value = obj[name]
        if kind == "object":
            yield from positions(field["fields"], value, here)
        elif kind.startswith("array<"):
            for i, item in enumerate(value):
                yield f"{here}[{i}]", value, i, kind[6:-1]
                if kind == "array<object>":
                    yield from positions(field["fields"], item, f"{here}[{i}]")


def objects_in(
    fields: list[dict[str, Any]], obj: dict[str, Any], path: str = ""
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object in a valid payload, the payload itself first, with its path."""
    yield path, obj
    for p, container, key, kind in positions(fields, obj, path):
        if kind == "object":
            yield p, container[key]


fast = settings(max_examples=150)


@fast
@given(schemas)
def test_random_schemas_round_trip_through_json(wire: dict[str, Any]) -> None:
    schema = SchemaDefinition.from_json(json.loads(json.dumps(wire)))
    assert schema.json_serialize() == wire
    assert SchemaDefinition(wire["name"], wire["version"], wire["fields"]) == schema


@fast
@given(schemas, st.data())
def test_generated_valid_payloads_always_validate(
    wire: dict[str, Any], data: st.DataObject
) -> None:
    payload = data.draw(payloads_for(wire["fields"]))
    validate(SchemaDefinition.from_json(wire), payload)
    validate(wire, json.loads(json.dumps(payload)))


@fast
@given(schemas, st.data())
def test_one_wrong_leaf_is_refused_naming_its_path(
    wire: dict[str, Any], data: st.DataObject
) -> None:
    payload = copy.deepcopy(data.draw(payloads_for(wire["fields"])))
    spots = list(positions(wire["fields"], payload))
    if not spots:
        return
    path, container, key, kind = data.draw(st.sampled_from(spots))
    container[key] = data.draw(st.sampled_from(WRONG[kind]))
    with pytest.raises(SchemaError) as info:
        validate(wire, payload)
    assert info.value.path == path, str(info.value)
    assert str(info.value).startswith(f"{path} must be ")


@fast
@given(schemas, st.data())
def test_a_missing_or_unknown_field_is_refused_naming_its_path(
    wire: dict[str, Any], data: st.DataObject
) -> None:
    payload = copy.deepcopy(data.draw(payloads_for(wire["fields"])))
    named = [s for s in positions(wire["fields"], payload) if isinstance(s[2], str)]
    if named and data.draw(st.booleans()):
        path, container, key, _ = data.draw(st.sampled_from(named))
        del container[key]
        problem = "is missing"
    else:
        where, obj = data.draw(st.sampled_from(list(objects_in(wire["fields"], payload))))
        obj["Q"] = 1  # names are drawn from "abxy_"
        path = f"{where}.Q" if where else "Q"
        problem = "is not in the schema"
    with pytest.raises(SchemaError) as info:
        validate(wire, payload)
    assert info.value.path == path, str(info.value)
    assert info.value.problem.startswith(problem)
