"""Sink edges: the stdout sink's live table without a key or without rich, its parameter
checks, Parquet rows that are not rows and a schema with no rows, and closing twice."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from actorwire.pipelines import JsonlFileSink, ParquetFileSink, Pipeline, StdoutSink

MakePipeline = Callable[..., Pipeline]


def feed(make_pipeline: MakePipeline, rows: list[Any], sink: Any) -> Pipeline:
    """Run ``rows`` through an inlet into ``sink`` and stop with a drain."""
    p = make_pipeline()
    p.source("inlet", name="in").to(sink, name="sink")
    p.start()
    p.address("in").tell_many(rows)
    assert p.stop(drain=True, timeout=10.0)
    return p


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"key": ""}, ValueError, "stdout sink: key must be a field name, got ''"),
        ({"key": 3}, ValueError, "stdout sink: key must be a field name, got 3"),
        ({"live": "yes"}, TypeError, "stdout sink: live must be true, false or unset, got 'yes'"),
    ],
)
def test_stdout_sink_names_a_bad_key_or_live_flag(
    params: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        StdoutSink(**params)


def test_a_live_table_without_a_key_shows_the_latest_max_rows_records(
    make_pipeline: MakePipeline,
) -> None:
    stream = io.StringIO()
    sink = StdoutSink(live=True, max_rows=2, stream=stream)
    assert sink.live is False  # known once started
    p = feed(make_pipeline, ["r0", "r1", "r2"], sink)
    text = stream.getvalue()
    assert "'r1'" in text and "'r2'" in text
    assert "'r0'" not in text  # pushed out before the table was drawn
    assert "record" in text  # the column of records that are not tables
    assert p.stats()["sink"]["sink_printed"] == 3
    assert sink.live is False  # closed by the stop


def test_a_live_table_shows_non_finite_floats_by_name(make_pipeline: MakePipeline) -> None:
    stream = io.StringIO()
    sink = StdoutSink(live=True, key="symbol", fields=["symbol", "bid"], stream=stream)
    feed(make_pipeline, [{"symbol": "X", "bid": float("nan")}, {"symbol": "Y", "bid": 1e400}], sink)
    text = stream.getvalue()
    assert "nan" in text and "inf" in text


def _without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("rich.console", "rich.live"):
        monkeypatch.setitem(sys.modules, name, None)  # the import now raises ImportError


def test_live_true_without_rich_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without_rich(monkeypatch)
    sink = StdoutSink(live=True, stream=io.StringIO())
    with pytest.raises(
        ImportError, match=r"live=True needs rich: pip install 'actorwire\[console\]'"
    ):
        sink.start(None)  # type: ignore[arg-type]


def test_a_terminal_without_rich_gets_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_rich(monkeypatch)
    stream = Terminal()
    sink = StdoutSink(stream=stream)
    sink.start(None)  # type: ignore[arg-type]
    assert sink.live is False
    sink.write([{"a": 1}], 0.0)
    sink.flush(0.0)
    sink.stop()
    assert stream.getvalue() == '{"a":1}\n'


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"schema": {}}, TypeError, "schema must be a table of field -> type name"),
        ({"schema": ["a"]}, TypeError, "schema must be a table of field -> type name"),
        ({"compression": "rar"}, ValueError, "unknown compression 'rar'"),
    ],
)
def test_parquet_sink_names_a_bad_schema_or_compression(
    tmp_path: Path, params: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        ParquetFileSink(tmp_path / "x.parquet", **params)


def test_parquet_sink_counts_records_that_are_not_rows(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    path = tmp_path / "rows.parquet"
    p = feed(make_pipeline, ["not a row", {"a": 1}, 7, {"a": 2}], ParquetFileSink(path))
    stats = p.stats()["sink"]
    assert (stats["failed"], stats["processed"], stats["sink_rows"]) == (2, 2, 2)
    assert pq.read_table(path).to_pylist() == [{"a": 1}, {"a": 2}]


def test_parquet_sink_with_a_schema_and_no_rows_leaves_an_empty_file_of_that_schema(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    path = tmp_path / "empty.parquet"
    p = feed(make_pipeline, ["nothing", "fits"], ParquetFileSink(path, schema={"a": "int64"}))
    assert p.stats()["sink"]["failed"] == 2
    table = pq.read_table(path)
    assert table.num_rows == 0
    assert table.schema.names == ["a"]


def test_a_jsonl_sink_closes_once_and_flushes_nothing_after(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    path = tmp_path / "out.jsonl"
    sink = JsonlFileSink(path, fsync=True)
    feed(make_pipeline, [{"a": 1}], sink)
    sink.stop()  # already closed by the stage: nothing to do
    sink.flush(0.0)
    assert path.read_text() == '{"a":1}\n'
