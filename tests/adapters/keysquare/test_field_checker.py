"""The field checker's fast path covers every field type and decides as the full check:
random field types against random values, the prepared checker (user data and decoded
data) against a straightforward check of each value with ``_check_value``."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
import pytest
from actorwire.adapters.keysquare import protocol
from actorwire.adapters.keysquare.protocol import (
    FIELD_TYPES,
    check_fields,
    decode_data,
    encode_data,
    field_checker,
)
from hypothesis import given
from hypothesis import strategies as st

NAMES = ("a", "b", "c", "d", "e")


def slow_check(type_name: str, fields: Mapping[str, str], data: Mapping[str, Any]) -> None:
    """The slow path alone: every value through ``_check_value``, first bad field named."""
    for name, value in data.items():
        kind = fields.get(name)
        if kind is None:
            known = ", ".join(sorted(fields))
            raise ValueError(f"{type_name} has no field {name!r} (fields: {known})")
        if not protocol._check_value(kind, value):
            raise ValueError(
                f"{type_name}.{name} must be {kind}, got {type(value).__name__} {value!r:.60}"
            )


class Text(str):
    """A str subclass: valid where a str is, but not the exact type the fast path knows."""


class Number(float):
    """A float subclass (numpy's float64 is one)."""


times = st.datetimes(timezones=st.none() | st.just(dt.UTC))
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    times.map(dt.datetime.isoformat),
    times.map(lambda t: t.isoformat().replace("+00:00", "Z")),
    st.dates().map(dt.date.isoformat),
    st.sampled_from(["2026-11-21T10:00:00Z", "2026-11-21 10:00", "not a date", "ZZ", ""]),
    times,
    st.text(max_size=4).map(Text),
    st.floats().map(Number),
    st.lists(st.integers(), max_size=3),
    st.lists(st.integers(), max_size=3).map(tuple),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.binary(max_size=4),
)
types = st.dictionaries(st.sampled_from(NAMES), st.sampled_from(FIELD_TYPES), max_size=5)
records = st.dictionaries(st.sampled_from([*NAMES, "unknown"]), values, max_size=6)


def outcome(check: Callable[[dict[str, Any]], None], data: dict[str, Any]) -> str | None:
    try:
        check(data)
    except ValueError as exc:
        return str(exc)
    return None


@given(types, records)
def test_fast_path_decides_user_data_as_the_slow_path(
    fields: dict[str, str], data: dict[str, Any]
) -> None:
    want = outcome(lambda d: slow_check("T", fields, d), data)
    assert outcome(field_checker("T", fields), data) == want
    assert outcome(lambda d: check_fields("T", fields, d), data) == want


@given(types, records)
def test_fast_path_decides_decoded_data_as_the_slow_path(
    fields: dict[str, str], data: dict[str, Any]
) -> None:
    try:
        decoded = decode_data(encode_data(data))
    except (TypeError, ValueError, orjson.JSONEncodeError):
        return  # not JSON: decode_data never yields it
    want = outcome(lambda d: slow_check("T", fields, d), decoded)
    assert outcome(field_checker("T", fields, decoded=True), decoded) == want


@pytest.fixture
def full_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every record the prepared checker hands to the full check."""
    calls: list[dict[str, Any]] = []
    full = protocol.check_fields

    def counted(type_name: str, fields: Mapping[str, str], data: Mapping[str, Any]) -> None:
        calls.append(dict(data))
        full(type_name, fields, data)

    monkeypatch.setattr(protocol, "check_fields", counted)
    yield calls


# One valid value of every exact type each field type accepts.
VALID = {
    "string": ["AAPL", None],
    "float": [1.5, 2, None],
    "int": [7, None],
    "bool": [True, None],
    "timestamp": [
        1_700_000_000.123,
        1_700_000_000,
        "2026-11-21T10:00:00Z",
        "2026-11-21T10:00:00.123456+01:00",
        "2026-11-21",
        None,
    ],
    "json": ["x", 1, 1.5, True, {"a": [1]}, [1, 2], None],
}


@pytest.mark.parametrize("kind", FIELD_TYPES)
@pytest.mark.parametrize("decoded", [False, True])
def test_every_field_type_takes_the_fast_path(
    full_checks: list[dict[str, Any]], kind: str, decoded: bool
) -> None:
    check = field_checker("T", {"f": kind, "timestamp": "timestamp"}, decoded=decoded)
    for value in VALID[kind]:
        check({"f": value, "timestamp": 1_700_000_000.25})
    assert full_checks == []


def test_a_wrong_value_still_gets_the_full_checks_message(
    full_checks: list[dict[str, Any]],
) -> None:
    check = field_checker("T", {"t": "timestamp", "f": "float"})
    with pytest.raises(ValueError, match=r"T\.t must be timestamp, got str 'yesterday'"):
        check({"f": 1.0, "t": "yesterday"})
    with pytest.raises(ValueError, match=r"T\.f must be float, got float nan"):
        check({"t": "2026-11-21", "f": math.nan})
    assert len(full_checks) == 2
