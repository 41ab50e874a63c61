"""Kind parameters checked when a stage is built: each bad value raises naming the kind, the
parameter, the value and what was expected."""

from __future__ import annotations

from typing import Any

import pytest
from actorwire.pipelines import SINKS, SyntheticPrices, make_operator, make_sink, make_source

WINDOW = {"size": 1.0, "key": "symbol", "aggregations": ["ohlc"]}


@pytest.mark.parametrize(
    ("kind", "params", "error", "message"),
    [
        (
            "tumbling_window",
            {**WINDOW, "time_field": "t", "allowed_lateness": "soon"},
            TypeError,
            "tumbling_window: allowed_lateness must be a number of seconds >= 0, got 'soon'",
        ),
        (
            "tumbling_window",
            {**WINDOW, "time_field": "t", "allowed_lateness": float("inf")},
            ValueError,
            "tumbling_window: allowed_lateness must be a finite number of seconds >= 0, got inf",
        ),
        (
            "tumbling_window",
            {**WINDOW, "time_field": ""},
            TypeError,
            "tumbling_window: time_field must be a field name, got ''",
        ),
        (
            "tumbling_window",
            {**WINDOW, "aggregations": [3]},
            TypeError,
            "an aggregation must be a name, a table with 'kind' and parameters, or an "
            "Aggregation, got 3",
        ),
        (
            "tumbling_window",
            {**WINDOW, "aggregations": 5},
            TypeError,
            "tumbling_window: aggregations must be a name, a table or a list of them, got 5",
        ),
        (
            "tumbling_window",
            {**WINDOW, "aggregations": [{"kind": "max", "field": 3}]},
            TypeError,
            "max: field must be a non-empty field name, got 3",
        ),
        (
            "key_by",
            {"key": "symbol", "copy": "no"},
            TypeError,
            "key_by: copy must be true or false",
        ),
    ],
)
def test_operator_parameters_are_checked_when_built(
    kind: str, params: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        make_operator(kind, **params)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("make", "section"),
    [(make_sink, "sink"), (make_source, "source")],
)
@pytest.mark.parametrize("kind", [None, 3, ["stdout"]])
def test_a_kind_must_be_a_string(make: Any, section: str, kind: Any) -> None:
    with pytest.raises(TypeError) as info:
        make(kind)
    assert str(info.value) == f"{section} kind must be a string, got {kind!r}"


def test_a_kind_registry_lists_its_kinds() -> None:
    assert repr(SINKS).startswith("KindRegistry('sinks': callback, stdout, jsonl_file")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((["A"],), {"volatility": "high"}, "SyntheticPrices: volatility must be a number"),
        ((["A"],), {"spread": None}, "SyntheticPrices: spread must be a number, got None"),
        ((True,), {}, "SyntheticPrices: symbols must be a list of names or a count, got True"),
    ],
)
def test_synthetic_prices_name_a_parameter_of_the_wrong_type(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        SyntheticPrices(*args, **kwargs)
