"""The record codec's field checks: the prepared checker agrees with the full one."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from actorwire.adapters.keysquare.protocol import check_fields, decode_data, field_checker
from hypothesis import given
from hypothesis import strategies as st

FIELDS = {
    "s": "string",
    "f": "float",
    "i": "int",
    "b": "bool",
    "t": "timestamp",
    "j": "json",
}

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["2026-11-21T10:00:00Z", "2026-11-21", "not a date"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
records = st.dictionaries(st.sampled_from([*FIELDS, "unknown"]), values, max_size=7)


def outcome(check: Any, data: dict[str, Any]) -> str | None:
    try:
        check(data)
    except ValueError as exc:
        return str(exc)
    return None


@given(records)
def test_prepared_checker_matches_check_fields_for_user_data(data: dict[str, Any]) -> None:
    full = outcome(lambda d: check_fields("T", FIELDS, d), data)
    prepared = outcome(field_checker("T", FIELDS), data)
    # Same verdict; when both refuse, the full check's message (it names the first bad field).
    assert (full is None) == (prepared is None)
    assert prepared == full


@given(records)
def test_prepared_checker_matches_check_fields_for_decoded_data(data: dict[str, Any]) -> None:
    try:
        decoded = decode_data(orjson.dumps(data))
    except (TypeError, orjson.JSONEncodeError, ValueError):
        return  # not JSON (NaN, infinities): decode_data never yields it
    assert outcome(field_checker("T", FIELDS, decoded=True), decoded) == outcome(
        lambda d: check_fields("T", FIELDS, d), decoded
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_user_floats_must_be_finite(bad: float) -> None:
    with pytest.raises(ValueError, match=r"T\.f must be float"):
        field_checker("T", FIELDS)({"f": bad})
