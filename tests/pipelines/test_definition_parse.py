"""Definition files: structure, wiring and parameter checks (with a small registry of
kinds, so these tests pin the checker itself; tests/pipelines/test_definition.py checks
the built-in kinds)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from actorwire.pipelines.definition import DefinitionError, parse_definition


def ticks(rate: float = 10.0, symbols: int = 1) -> Any:
    return None


def scale(factor: float, field: str = "last") -> Any:
    return None


def window(size: float, aggregations: list[str] | None = None) -> Any:
    return None


def printer(fn: Callable[..., Any] | str = "", label: str = "") -> Any:
    return None


def keysquare(url: str, data_type: str) -> Any:
    return None


REGISTRIES = {
    "sources": {"ticks": ticks, "keysquare": keysquare},
    "stages": {"scale": scale, "window": window},
    "sinks": {"printer": printer},
}

GOOD = """\
[pipeline]
name = "demo"
description = "a test"

[servers.platform]
kind = "keysquare"
port = 0

[[sources]]
name = "prices"
kind = "ticks"
rate = 50

[[sources]]
name = "live"
kind = "keysquare"
server = "platform"
data_type = "Price"

[[stages]]
name = "scaled"
kind = "scale"
from = ["prices", "live"]
factor = 2.0
capacity = 100
overflow = "conflate"
restart = "transient"

[[stages]]
name = "bars"
kind = "window"
from = "scaled"
size = 1.0

[[sinks]]
name = "out"
kind = "printer"
from = "bars"

[supervision]
strategy = "rest_for_one"
intensity = 3
period = 2.0
backoff = { min = 0.1, max = 1.0 }

[logging]
level = "DEBUG"
format = "json"

[metrics]
port = 9100
"""


def parse(text: str) -> Any:
    return parse_definition(text, REGISTRIES)


def test_a_good_definition_parses_into_its_parts() -> None:
    d = parse(GOOD)
    assert (d.name, d.description, d.source) == ("demo", "a test", "<text>")
    assert [(s.name, s.kind, s.port) for s in d.servers] == [("platform", "keysquare", 0)]
    assert [s.name for s in d.sources] == ["prices", "live"]
    scaled = d.stages[0]
    assert scaled.inputs == ("prices", "live") and scaled.params == {"factor": 2.0}
    assert (scaled.capacity, scaled.overflow, scaled.restart) == (100, "conflate", "transient")
    assert d.stages[1].inputs == ("scaled",)
    assert d.sources[1].params == {"server": "platform", "data_type": "Price"}
    assert (d.supervision.strategy, d.supervision.intensity, d.supervision.backoff_max) == (
        "rest_for_one",
        3,
        1.0,
    )
    assert (d.logging.level, d.logging.format, d.metrics.port) == ("debug", "json", 9100)


def test_a_file_path_is_read_and_named_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(GOOD.replace("factor = 2.0", "factor = 2.0\nfactr = 3"), encoding="utf-8")
    with pytest.raises(DefinitionError) as info:
        parse_definition(path, REGISTRIES)
    (error,) = info.value.errors
    assert error.source == str(path)
    assert str(error) == (
        f"{path}:25: stages[0].factr: scale: unknown parameter 'factr' "
        "(did you mean 'factor'?); parameters: factor, field"
    )


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = GOOD.replace('strategy = "rest_for_one"', 'strategy = "one_for_none"').replace(
        'from = "bars"', 'from = "barz"'
    )
    with pytest.raises(DefinitionError) as info:
        parse(text)
    paths = [e.path for e in info.value.errors]
    # The misspelt input leaves "bars" feeding nothing: not reported twice.
    assert paths == ["sinks[0].from", "supervision.strategy"], info.value
    assert "2 problems" in str(info.value)


BAD = [
    ("name = 1\n", "pipeline", "missing (a [pipeline] with a name)"),
    ('[pipeline]\nname = "x"\n[pipelines]\n', "pipelines", "unknown section"),
    ('[pipeline]\nname = "x"\n[[sources]]\nname = "a"\n', "sources[0].kind", "missing (one of"),
    (
        '[pipeline]\nname = "x"\n[[sources]]\nname = "a"\nkind = "tick"\n',
        "sources[0].kind",
        "unknown source kind 'tick' (expected one of keysquare, ticks, "
        "or 'module:Class' for your own); did you mean ticks?",
    ),
    (
        '[pipeline]\nname = "x"\n[[sources]]\nname = "a"\nkind = "keysquare"\nurl = "h:1"\n',
        "sources[0].data_type",
        "keysquare: missing parameter 'data_type'; parameters: url, data_type",
    ),
    (
        '[pipeline]\nname = "x"\n[[sources]]\nname = "a"\nkind = "ticks"\n'
        '[[sinks]]\nname = "a"\nkind = "printer"\nfrom = "a"\n',
        "sinks[0].name",
        "duplicate name 'a' (also sources[0])",
    ),
    (
        '[pipeline]\nname = "x"\n[[sources]]\nname = "a"\nkind = "ticks"\n'
        '[[stages]]\nname = "b"\nkind = "scale"\nfactor = 1\nfrom = ["a", "c"]\n'
        '[[stages]]\nname = "c"\nkind = "scale"\nfactor = 1\nfrom = "b"\n',
        "stages[0].from",
        "cycle: b -> c -> b",
    ),
    (
        '[pipeline]\nname = "x"\n[[sources]]\nname = "a"\nkind = "ticks"\n'
        '[[sinks]]\nname = "s"\nkind = "printer"\n',
        "sinks[0].from",
        "missing (the name of a source or stage, or a list)",
    ),
    (
        '[pipeline]\nname = "x"\n[[sources]]\nname = "a"\nkind = "ticks"\n'
        '[[sinks]]\nname = "s"\nkind = "printer"\nfrom = "a"\ncapacity = 0\n',
        "sinks[0].capacity",
        "must be at least 1, got 0",
    ),
    (
        '[pipeline]\nname = "x"\n[[sources]]\nname = "a"\nkind = "ticks"\n'
        '[[sinks]]\nname = "s"\nkind = "printer"\nfrom = "a"\noverflow = "spill"\n',
        "sinks[0].overflow",
        "must be one of backpressure, drop_oldest, drop_newest, conflate, fail, got 'spill'",
    ),
    (
        '[pipeline]\nname = "x"\n[[sources]]\nname = "a"\nkind = "keysquare"\n'
        'server = "nope"\ndata_type = "P"\n[[sinks]]\nname = "s"\nkind = "printer"\nfrom = "a"\n',
        "sources[0].server",
        "unknown server 'nope' (servers: none defined)",
    ),
    (
        '[pipeline]\nname = "x"\n[[sources]]\nname = "a"\nkind = "ticks"\n'
        '[[sinks]]\nname = "s"\nkind = "printer"\nfrom = "a"\nfn = "no_such_module_x:f"\n',
        "sinks[0].fn",
        "no_such_module_x",
    ),
    (
        '[pipeline]\nname = "x"\n[servers.k]\nkind = "keysquare"\n'
        "[servers.k.config]\nplatform = { max_record_bytes = -1 }\n",
        "servers.k.config.platform.max_record_bytes",
        "must be greater than 0",
    ),
    ('[pipeline]\nname = "x"\n[metrics]\nport = "9100"\n', "metrics.port", "must be an integer"),
    ("[pipeline\n", "", "invalid TOML"),
]


@pytest.mark.parametrize(("text", "path", "expected"), BAD)
def test_bad_definitions_name_the_key_and_what_was_expected(
    text: str, path: str, expected: str
) -> None:
    with pytest.raises(DefinitionError) as info:
        parse(text)
    errors = info.value.errors
    assert any(e.path == path and expected in e.message for e in errors), "\n".join(
        map(str, errors)
    )


def test_only_callable_parameters_are_imported() -> None:
    # "label" is a plain string parameter: a value shaped like module:function is data.
    text = (
        '[pipeline]\nname = "x"\n[[sources]]\nname = "a"\nkind = "ticks"\n'
        '[[sinks]]\nname = "s"\nkind = "printer"\nfrom = "a"\nlabel = "no_such_module_x:f"\n'
    )
    assert parse(text).sinks[0].params == {"label": "no_such_module_x:f"}


def test_a_stage_feeding_nothing_is_a_warning() -> None:
    # Legal (a program may wire more onto the loaded pipeline), but likely a mistake.
    text = GOOD.replace('from = "bars"', 'from = "scaled"')
    (warning,) = parse(text).warnings
    assert warning.path == "stages[1].name"
    assert warning.message == "'bars' feeds nothing (no stage or sink has it in 'from')"
    assert parse(GOOD).warnings == ()


def test_the_line_of_the_bad_key_is_given() -> None:
    text = '[pipeline]\nname = "x"\n[[sources]]\nname = "a"\nkind = "ticks"\nrat = 5\n'
    with pytest.raises(DefinitionError) as info:
        parse(text)
    (error,) = info.value.errors
    assert (error.line, error.path) == (6, "sources[0].rat")
    assert str(error).startswith("<text>:6: sources[0].rat: ticks: unknown parameter 'rat'")


def test_an_unreadable_file_is_a_definition_error(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="cannot read"):
        parse_definition(tmp_path / "missing.toml", REGISTRIES)
