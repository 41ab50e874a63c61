"""Building a checked definition: problems only the kinds can find still name the file and
line (read back from the file when the definition does not carry its text), and a server
kind nobody installed is named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from actorwire.pipelines import DefinitionError, build_pipeline, parse_definition
from actorwire.pipelines.definition import Definition, ServerDef

BAD_RATE = """\
[pipeline]
name = "p"

[[sources]]
name = "prices"
kind = "synthetic_prices"
rate = -5

[[sinks]]
name = "out"
kind = "callback"
from = "prices"
fn = "builtins:print"
"""


def _without_text(path: Path) -> Definition:
    path.write_text(BAD_RATE)
    return dataclasses.replace(parse_definition(path), text=None)


def test_a_build_error_names_the_line_read_back_from_the_file(tmp_path: Path) -> None:
    definition = _without_text(tmp_path / "p.toml")
    with pytest.raises(DefinitionError) as info:
        build_pipeline(definition)
    (error,) = info.value.errors
    assert (error.path, error.line) == ("sources[0].rate", 7)
    assert str(error).startswith(f"{tmp_path / 'p.toml'}:7: sources[0].rate: synthetic_prices:")


def test_a_build_error_has_no_line_once_the_file_is_gone(tmp_path: Path) -> None:
    definition = _without_text(tmp_path / "p.toml")
    (tmp_path / "p.toml").unlink()
    with pytest.raises(DefinitionError) as info:
        build_pipeline(definition)
    (error,) = info.value.errors
    assert (error.path, error.line) == ("sources[0].rate", None)


def test_a_server_kind_nobody_installed_is_named(tmp_path: Path) -> None:
    definition = Definition(
        source="<built>",
        base_dir=tmp_path,
        name="p",
        servers=(ServerDef("radio", "radio"),),
    )
    with pytest.raises(
        ValueError, match=r"servers\.radio\.kind: no installed adapter serves 'radio'"
    ):
        build_pipeline(definition)


SERVER_AND_STAGE_ERRORS = """\
[pipeline]
name = "p"

[servers.platform]
kind = "keysquare"
config = "missing.toml"

[[sources]]
name = "prices"
kind = "keysquare"
server = "platform"
data_type = "Price"

[[sources]]
name = "ticks"
kind = "synthetic_prices"
rate = -5

[[sinks]]
name = "out"
kind = "callback"
from = ["prices", "ticks"]
fn = "builtins:print"
"""


def test_a_server_that_cannot_be_built_is_reported_with_the_other_problems(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(SERVER_AND_STAGE_ERRORS)
    with pytest.raises(DefinitionError) as info:
        build_pipeline(parse_definition(path))
    found = [(e.path, e.line) for e in info.value.errors]
    # One error for the server (not a second for the source that names it), one for the
    # bad rate; the sink whose inputs were refused is not reported again.
    assert found == [("servers.platform.config", 6), ("sources[1].rate", 17)]
    assert "missing.toml: cannot read config" in str(info.value)
