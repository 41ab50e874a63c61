"""Definition files with the built-in kinds: every file in definitions/bad is refused
before anything starts, with the message its first line expects (``# expect: LINE: PATH:
MESSAGE``, where the leading ``LINE:`` is optional); the examples' definitions load."""

from __future__ import annotations

from pathlib import Path

import pytest
from actorwire.pipelines.definition import DefinitionError, parse_definition
from actorwire.pipelines.loader import DefinitionPipeline, load_definition

HERE = Path(__file__).parent / "definitions"
BAD = sorted((HERE / "bad").glob("*.toml"))
EXAMPLES = Path(__file__).parents[2] / "examples"


def expectation(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} has no '# expect:' line"
    return first.removeprefix("# expect: ")


def test_there_are_at_least_ten_distinct_bad_files() -> None:
    assert len(BAD) >= 10
    assert len({expectation(p) for p in BAD}) == len(BAD)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_a_bad_definition_is_refused_with_file_line_and_key(path: Path) -> None:
    with pytest.raises(DefinitionError) as info:
        load_definition(path)
    text = str(info.value)
    expected = expectation(path)
    # Every error line starts with the file name; the expectation follows it (from its
    # line number when the expectation gives one).
    assert f"{path}:{expected}" in text or (
        not expected[:1].isdigit() and f"{path}" in text and expected in text
    ), text


def test_errors_in_several_places_are_all_reported(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[pipeline]\nname = "a"\n'
        '[[sources]]\nname = "t"\nkind = "synthetic_prices"\nrate = -1\n'
        '[[stages]]\nname = "w"\nkind = "tumbling_window"\nfrom = "t"\nsize = 0\n'
        '[[sinks]]\nname = "o"\nkind = "stdout"\nfrom = "w"\nmax_rows = "ten"\n',
        encoding="utf-8",
    )
    with pytest.raises(DefinitionError) as info:
        load_definition(path)
    # One pass reports every stage's own problem (a refused input is no reason to stay
    # silent about the stages it feeds), each once.
    assert [e.path for e in info.value.errors] == [
        "sources[0].rate",
        "stages[0].size",
        "sinks[0].max_rows",
    ]
    path.write_text(path.read_text().replace("rate = -1\n", ""), encoding="utf-8")
    with pytest.raises(DefinitionError) as info:
        load_definition(path)
    assert [e.path for e in info.value.errors] == ["stages[0].size", "sinks[0].max_rows"]


def test_check_reports_shape_and_value_problems_in_one_pass(tmp_path: Path) -> None:
    from actorwire.pipelines.loader import check_definition

    path = tmp_path / "p.toml"
    path.write_text(
        '[pipeline]\nname = "a"\n'
        '[[sources]]\nname = "t"\nkind = "synthetic_prices"\nrate = -1\nbogus = 1\n'
        '[[stages]]\nname = "w"\nkind = "tumbling_window"\nfrom = "t"\nsize = 0\n'
        '[[sinks]]\nname = "o"\nkind = "jsonl_file"\nfrom = "w"\npathh = "x"\n',
        encoding="utf-8",
    )
    definition, errors = check_definition(path)
    assert definition is not None
    assert [e.path for e in errors] == [
        "sources[0].rate",
        "sources[0].bogus",
        "stages[0].size",
        "sinks[0].path",
        "sinks[0].pathh",
    ]
    assert [e.line for e in errors] == sorted(e.line or 0 for e in errors)


@pytest.mark.parametrize("name", ["quickstart.toml"])
def test_the_examples_definitions_load(name: str) -> None:
    pipeline = load_definition(EXAMPLES / name)
    assert isinstance(pipeline, DefinitionPipeline)
    assert pipeline.name == name.removesuffix(".toml")


def test_text_is_accepted_as_well_as_a_path() -> None:
    pipeline = load_definition(
        '[pipeline]\nname = "inline"\n[[sources]]\nname = "t"\nkind = "synthetic_prices"\n'
        '[[sinks]]\nname = "o"\nkind = "callback"\nfn = "builtins:print"\nfrom = "t"\n'
    )
    assert [s.name for s in pipeline.stages] == ["t", "o"]


CUSTOM_MODULE = """
from actorwire.pipelines import OperatorBase, StageActor

class Countdown(StageActor):
    def __init__(self, start):
        super().__init__()
        self.start = start

    def on_start(self):
        self.emit_many([{"n": n} for n in range(self.start, 0, -1)])
        self.finish()

class Scale(OperatorBase):
    def __init__(self, factor):
        self.factor = factor

    def on_record(self, record, now):
        return [{**record, "n": record["n"] * self.factor}]

def tag(record):
    return {**record, "tagged": True}

SEEN = []

def collect(record):
    SEEN.append(record)
"""

CUSTOM = """
[pipeline]
name = "custom"

[[sources]]
name = "count"
kind = "mystages:Countdown"
start = 4

[[stages]]
name = "scale"
kind = "mystages:Scale"
from = "count"
factor = 10

[[stages]]
name = "tag"
kind = "mystages:tag"
from = "scale"

[[sinks]]
name = "out"
kind = "mystages:collect"
from = "tag"
"""


def test_custom_stages_are_named_module_colon_class(tmp_path: Path) -> None:
    import sys

    (tmp_path / "mystages.py").write_text(CUSTOM_MODULE, encoding="utf-8")
    path = tmp_path / "custom.toml"
    path.write_text(CUSTOM, encoding="utf-8")
    try:
        pipeline = load_definition(path)  # the module is found next to the definition
        pipeline.run()
        seen = sys.modules["mystages"].SEEN
        assert seen == [{"n": n * 10, "tagged": True} for n in (4, 3, 2, 1)]
    finally:
        sys.modules.pop("mystages", None)


@pytest.mark.parametrize(
    ("change", "path", "expected"),
    [
        (
            ('kind = "mystages:Scale"', 'kind = "mystages:Scal"'),
            "stages[0].kind",
            "Scal",
        ),
        (
            ("factor = 10", "factr = 10"),
            "stages[0].factr",
            "mystages:Scale: unknown parameter 'factr'",
        ),
        (
            ('kind = "mystages:tag"', 'kind = "mystages:tag"\nlabel = "x"'),
            "stages[1].label",
            "a function stage (mystages:tag) takes no parameters",
        ),
    ],
)
def test_custom_stage_mistakes_are_definition_errors(
    tmp_path: Path, change: tuple[str, str], path: str, expected: str
) -> None:
    import sys

    (tmp_path / "mystages.py").write_text(CUSTOM_MODULE, encoding="utf-8")
    definition = tmp_path / "custom.toml"
    definition.write_text(CUSTOM.replace(*change), encoding="utf-8")
    try:
        with pytest.raises(DefinitionError) as info:
            load_definition(definition)
    finally:
        sys.modules.pop("mystages", None)
    errors = info.value.errors
    assert any(e.path == path and expected in e.message for e in errors), str(info.value)


ENV_DEF = """\
[pipeline]
name = "env"

[[sources]]
name = "ticks"
kind = "synthetic_prices"
symbols = ["${AW_TEST_SYMBOL}", "$${LITERAL}"]
limit = 10

[[sinks]]
name = "out"
kind = "jsonl_file"
from = "ticks"
path = "${AW_TEST_DIR}/out.jsonl"
"""


def test_definitions_take_values_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AW_TEST_SYMBOL", "EURUSD")
    monkeypatch.setenv("AW_TEST_DIR", str(tmp_path))
    path = tmp_path / "env.toml"
    path.write_text(ENV_DEF)
    definition = parse_definition(path)
    assert definition.sources[0].params["symbols"] == ["EURUSD", "${LITERAL}"]
    assert definition.sinks[0].params["path"] == f"{tmp_path}/out.jsonl"
    assert "EURUSD" not in definition.text  # the file keeps the reference, not the value


def test_an_unset_environment_variable_is_an_error_at_its_key_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AW_TEST_SYMBOL", raising=False)
    monkeypatch.setenv("AW_TEST_DIR", str(tmp_path))
    path = tmp_path / "env.toml"
    path.write_text(ENV_DEF)
    with pytest.raises(DefinitionError) as info:
        parse_definition(path)
    assert (
        f"{path}:7: sources[0].symbols[0]: environment variable 'AW_TEST_SYMBOL' is not set"
        in str(info.value)
    )


def test_an_environment_variable_may_have_a_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AW_TEST_SYMBOL", raising=False)
    monkeypatch.setenv("AW_TEST_DIR", str(tmp_path))
    text = ENV_DEF.replace("${AW_TEST_SYMBOL}", "${AW_TEST_SYMBOL:-GBPUSD}")
    path = tmp_path / "env.toml"
    path.write_text(text)
    assert parse_definition(path).sources[0].params["symbols"][0] == "GBPUSD"
    monkeypatch.setenv("AW_TEST_SYMBOL", "EURUSD")
    assert parse_definition(path).sources[0].params["symbols"][0] == "EURUSD"


def test_check_knows_what_an_embedded_server_defines(tmp_path: Path) -> None:
    from actorwire.pipelines.loader import check_definition

    path = tmp_path / "p.toml"
    path.write_text(
        '[pipeline]\nname = "q"\n[servers.platform]\nkind = "keysquare"\n'
        '[[sources]]\nname = "prices"\nkind = "keysquare"\nserver = "platform"\n'
        'data_type = "Prices"\n'
        '[[sinks]]\nname = "o"\nkind = "stdout"\nfrom = "prices"\n',
        encoding="utf-8",
    )
    _, errors = check_definition(path)
    assert [(e.path, e.line) for e in errors] == [("sources[0].data_type", 9)]
    assert "defines no data type 'Prices' (did you mean 'Price'?)" in errors[0].message
    path.write_text(path.read_text().replace('"Prices"', '"Price"'), encoding="utf-8")
    assert check_definition(path)[1] == []


def test_check_knows_the_streams_an_embedded_stream_sea_server_has(tmp_path: Path) -> None:
    from actorwire.pipelines.loader import check_definition

    head = '[pipeline]\nname = "q"\n[servers.streams]\nkind = "streamsea"\n'
    reader = (
        '[[sources]]\nname = "bars"\nkind = "streamsea"\nserver = "streams"\nstream = "bars"\n'
        '[[sinks]]\nname = "o"\nkind = "stdout"\nfrom = "bars"\n'
    )
    path = tmp_path / "p.toml"
    path.write_text(head + reader, encoding="utf-8")
    _, errors = check_definition(path)
    assert [e.path for e in errors] == ["sources[0].stream"]
    assert "defines no stream 'bars'" in errors[0].message
    # A sink of the definition that publishes to it defines it: no problem then.
    writer = (
        '[[sources]]\nname = "t"\nkind = "synthetic_prices"\n'
        '[[sinks]]\nname = "w"\nkind = "streamsea_publish"\nfrom = "t"\nserver = "streams"\n'
        'stream = "bars"\n'
    )
    path.write_text(head + reader + writer, encoding="utf-8")
    assert check_definition(path)[1] == []
