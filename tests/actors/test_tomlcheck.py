"""TOML checking: typed reads whose errors name the file, the line and the key path."""

from __future__ import annotations

import pytest
from actorwire.actors.tomlcheck import TomlChecker, TomlError, locate

TEXT = """\
[pipeline]
name = "demo"

[servers.ks]
kind = "keysquare"
port = 0

[[sources]]
name = "prices"
kind = "synthetic_prices"

[[stages]]
name = "first"
from = "prices"

[[stages]]
"name" = "second"
kind = "map"  # a comment
from = ["first"]
"""


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("pipeline.name", 2),
        ("servers.ks", 4),
        ("servers.ks.port", 6),
        ("sources[0].kind", 10),
        ("stages[0].from", 14),
        ("stages[1]", 16),
        ("stages[1].name", 17),
        ("stages[1].from", 19),
        ("stages[1].capacity", 16),  # absent key: the table it belongs in
        ("stages[2].from", None),  # no third [[stages]]
        ("servers.other.kind", None),
        ("missing", None),
    ],
)
def test_locate_finds_the_line_of_a_key_path(path: str, line: int | None) -> None:
    assert locate(TEXT, path) == line


def test_errors_name_file_line_path_and_expectation() -> None:
    check = TomlChecker("demo.toml", TEXT)
    with pytest.raises(TomlError) as info:
        check.table({"name": "x", "colour": 1}, "stages[1]", ("name", "kind", "from"))
    error = info.value
    assert (error.source, error.line, error.path) == ("demo.toml", 16, "stages[1].colour")
    assert str(error) == (
        "demo.toml:16: stages[1].colour: unknown key (expected one of name, kind, from)"
    )


def test_without_text_there_is_no_line() -> None:
    error = TomlChecker("c.toml").fail("a.b", "must be a string, got int")
    assert str(error) == "c.toml: a.b: must be a string, got int" and error.line is None


@pytest.mark.parametrize(
    ("read", "value", "expected"),
    [
        ("string", 3, "must be a string, got int"),
        ("boolean", "yes", "must be true or false, got str 'yes'"),
        ("number", "1", "must be a number, got str '1'"),
        ("number", True, "must be a number, got bool True"),
        ("integer", 1.5, "must be an integer, got float 1.5"),
        ("positive", 0, "must be greater than 0, got 0"),
        ("positive_int", -2, "must be greater than 0, got -2"),
        ("array", {}, "must be an array, got a table"),
        ("name", "a.b", "must not contain dots"),
    ],
)
def test_typed_reads_refuse_the_wrong_kind(read: str, value: object, expected: str) -> None:
    with pytest.raises(TomlError, match=expected):
        getattr(TomlChecker("f.toml"), read)(value, "k")


def test_bounds_and_choices() -> None:
    check = TomlChecker("f.toml")
    assert check.integer(3, "k", minimum=1) == 3
    with pytest.raises(TomlError, match="must be at least 1, got 0"):
        check.integer(0, "k", minimum=1)
    with pytest.raises(TomlError, match=r"must be at least 0\.5, got 0\.1"):
        check.number(0.1, "k", minimum=0.5)
    assert check.choice("json", "k", ("console", "json")) == "json"
    with pytest.raises(TomlError, match="must be one of console, json, got 'xml'"):
        check.choice("xml", "k", ("console", "json"))
