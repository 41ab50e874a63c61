"""Sinks: callback, stdout (plain and live), JSONL with rotation, Parquet, keysquare_publish,
and the registry."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from actorwire.adapters.keysquare import KeySession, PlatformServer
from actorwire.pipelines import SINKS, JsonlFileSink, Pipeline, StdoutSink, make_sink

from tests.pipelines.conftest import Collector
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("no_thread_leaks")

MakePipeline = Callable[..., Pipeline]
REMEMBERED: list[Any] = []


def remember(record: Any) -> None:
    """A sink function named by a 'module:function' string."""
    REMEMBERED.append(record)


def feed(make_pipeline: MakePipeline, rows: list[Any], *sink: Any, **options: Any) -> Pipeline:
    """Run ``rows`` through an inlet into ``sink`` and stop with a drain."""
    p = make_pipeline()
    p.source("inlet", name="in").to(*sink, name="sink", **options)
    p.start()
    p.address("in").tell_many(rows)
    assert p.stop(drain=True, timeout=10.0)
    return p


def rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"i": i, "name": f"r{i}", "x": i / 4} for i in range(start, start + n)]


# -- callback --------------------------------------------------------------------------------


def test_callback_sink_calls_the_function_per_record(make_pipeline: MakePipeline) -> None:
    out = Collector()

    def fussy(record: dict[str, Any]) -> None:
        if record["i"] == 2:
            raise ValueError("not two")
        out(record)

    p = feed(make_pipeline, rows(5), fussy)
    assert [r["i"] for r in out.records] == [0, 1, 3, 4]
    stats = p.stats()["sink"]
    assert (stats["processed"], stats["failed"], stats["sink_calls"]) == (4, 1, 4)


def test_callback_sink_takes_a_module_function_string(make_pipeline: MakePipeline) -> None:
    REMEMBERED.clear()
    feed(make_pipeline, rows(3), "callback", fn="tests.pipelines.test_sinks:remember")
    assert [r["i"] for r in REMEMBERED] == [0, 1, 2]
    with pytest.raises(ValueError, match=r"callback sink: fn: .*no attribute 'nope'"):
        make_sink("callback", fn="tests.pipelines.test_sinks:nope")


# -- stdout ----------------------------------------------------------------------------------


def test_stdout_prints_json_lines_when_not_on_a_terminal(
    make_pipeline: MakePipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    feed(make_pipeline, rows(3), "stdout")
    lines = capsys.readouterr().out.splitlines()
    assert [orjson.loads(line) for line in lines] == rows(3)


def test_stdout_draws_a_live_table_keyed_by_a_field(make_pipeline: MakePipeline) -> None:
    stream = io.StringIO()
    prices = [
        {"symbol": "AAPL", "bid": 1.0},
        {"symbol": "MSFT", "bid": 2.0},
        {"symbol": "AAPL", "bid": 1.25},
    ]
    p = feed(
        make_pipeline, prices, "stdout", key="symbol", live=True, stream=stream, title="quotes"
    )
    text = stream.getvalue()
    assert "quotes" in text and "symbol" in text and "bid" in text
    assert "MSFT" in text and "1.25" in text
    assert p.stats()["sink"]["sink_printed"] == 3


def test_stdout_live_table_redraws_on_its_own_deadline(make_pipeline: MakePipeline) -> None:
    stream = io.StringIO()
    p = make_pipeline()
    p.source("inlet", name="in").to(
        "stdout", name="sink", key="symbol", live=True, stream=stream, refresh=0.05
    )
    p.start()
    p.address("in").tell({"symbol": "AAPL", "bid": 1.0})
    wait_until(lambda: "AAPL" in stream.getvalue(), what="the first draw")
    p.address("in").tell({"symbol": "MSFT", "bid": 2.0})  # within `refresh`: drawn later
    wait_until(lambda: "MSFT" in stream.getvalue(), what="the timed redraw")
    assert p.stats()["sink"]["mailbox_depth"] == 0


def test_stdout_sink_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="refresh must be a number of seconds > 0"):
        StdoutSink(refresh=0)
    with pytest.raises(ValueError, match="fields must be a list of field names"):
        StdoutSink(fields="symbol")


# -- jsonl_file ------------------------------------------------------------------------------


def read_lines(*paths: Path) -> list[Any]:
    return [orjson.loads(line) for path in paths for line in path.read_bytes().splitlines()]


def test_jsonl_file_appends(make_pipeline: MakePipeline, tmp_path: Path) -> None:
    path = tmp_path / "deep" / "out.jsonl"
    feed(make_pipeline, rows(3), "jsonl_file", path=path)
    feed(make_pipeline, rows(2, 3), "jsonl_file", path=str(path), fsync=True)
    assert read_lines(path) == rows(5)


def test_jsonl_file_rotates_by_size_in_write_order(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    path = tmp_path / "rec.jsonl"
    p = feed(make_pipeline, rows(200), "jsonl_file", path=path, max_bytes=1000)
    parts = sorted(tmp_path.glob("rec.*.jsonl"), key=lambda f: int(f.name.split(".")[1]))
    assert len(parts) >= 5
    assert all(f.stat().st_size <= 1000 for f in [*parts, path])
    assert read_lines(*parts, path) == rows(200)
    stats = p.stats()["sink"]
    assert stats["sink_rotations"] == len(parts)
    assert stats["sink_written"] == 200


def test_jsonl_file_counts_records_it_cannot_encode(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    path = tmp_path / "out.jsonl"
    p = feed(make_pipeline, [{"i": 0}, {"i": object()}, {"i": 2}], "jsonl_file", path=path)
    assert read_lines(path) == [{"i": 0}, {"i": 2}]
    assert p.stats()["sink"]["failed"] == 1


def test_jsonl_file_sink_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="max_bytes must be an integer >= 1"):
        JsonlFileSink("x.jsonl", max_bytes=0)
    with pytest.raises(TypeError, match="path must be a file path"):
        JsonlFileSink("")


# -- parquet_file ----------------------------------------------------------------------------


def test_parquet_file_writes_batched_row_groups_and_closes(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    path = tmp_path / "out.parquet"
    p = feed(make_pipeline, rows(250), "parquet_file", path=path, batch_rows=100)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == 250
    assert meta.num_row_groups == 3  # 100, 100, and the last 50 at the drain
    assert pq.read_table(path).to_pylist() == rows(250)
    stats = p.stats()["sink"]
    assert (stats["sink_rows"], stats["sink_row_groups"]) == (250, 3)


def test_parquet_file_with_a_schema_counts_rows_that_do_not_fit(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    path = tmp_path / "typed.parquet"
    data = [{"i": 1, "extra": "ignored"}, {"i": "two"}, {"name": "no i"}, {"i": 4}]
    p = feed(
        make_pipeline, data, "parquet_file", path=path, schema={"i": "int64", "name": "string"}
    )
    assert pq.read_table(path).to_pylist() == [
        {"i": 1, "name": None},
        {"i": None, "name": "no i"},
        {"i": 4, "name": None},
    ]
    assert p.stats()["sink"]["failed"] == 1


def test_parquet_file_after_a_restart_keeps_what_was_written(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    path = tmp_path / "parts.parquet"
    data = [{"i": 0}, {"i": 1}, {"i": "bad"}, {"i": 3}]
    p = feed(
        make_pipeline,
        data,
        "parquet_file",
        path=path,
        schema={"i": "int64"},
        on_error="restart",
    )
    assert pq.read_table(path).to_pylist() == [{"i": 0}, {"i": 1}]
    assert pq.read_table(tmp_path / "parts.1.parquet").to_pylist() == [{"i": 3}]
    assert p.stats()["sink"]["restarts"] == 1


# -- keysquare_publish -----------------------------------------------------------------------


@pytest.fixture
def reader(platform: PlatformServer) -> Iterator[KeySession]:
    session = KeySession("demo", "demo-key", f"127.0.0.1:{platform.port}")
    try:
        yield session
    finally:
        session.stop()


def test_keysquare_publish_sends_each_batch_to_the_type(
    make_pipeline: MakePipeline, platform: PlatformServer, reader: KeySession
) -> None:
    p = make_pipeline()
    p.source("synthetic_prices", symbols=["AAA", "BBB"], rate=None, limit=40, seed=5).to(
        "keysquare_publish",
        name="publish",
        url=f"127.0.0.1:{platform.port}",
        application_name="demo",
        api_key="demo-key",
        data_type="Price",
        id_field="symbol",
        fields=["symbol", "bid", "ask", "last", "volume"],
    )
    assert p.links() == {}
    p.run()
    stats = p.stats()["publish"]
    assert (stats["processed"], stats["failed"], stats["sink_published"]) == (40, 0, 40)
    snapshot = {m["header"]["id"]: m["data"] for m in reader.snapshot("Price", return_type="list")}
    assert set(snapshot) == {"AAA", "BBB"}
    assert set(snapshot["AAA"]) == {"symbol", "bid", "ask", "last", "volume"}
    assert p.links() == {"publish": "CLOSED"}


def test_keysquare_publish_fails_only_the_records_the_platform_refuses(
    make_pipeline: MakePipeline, platform: PlatformServer, reader: KeySession
) -> None:
    data = [
        {"symbol": "A", "bid": 1.0, "id": "header fields are left out"},
        {"bid": 2.0},  # no id field
        {"symbol": "B", "bid": "not a float"},
        {"symbol": "C", "bid": 3.0},
    ]
    p = feed(
        make_pipeline,
        data,
        "keysquare_publish",
        url=f"127.0.0.1:{platform.port}",
        application_name="demo",
        api_key="demo-key",
        data_type="Price",
        id_field="symbol",
    )
    stats = p.stats()["sink"]
    assert (stats["processed"], stats["failed"], stats["sink_published"]) == (2, 2, 2)
    snapshot = {m["header"]["id"]: m["data"] for m in reader.snapshot("Price", return_type="list")}
    assert snapshot == {"A": {"symbol": "A", "bid": 1.0}, "C": {"symbol": "C", "bid": 3.0}}


# -- registry --------------------------------------------------------------------------------


def test_make_sink_names_bad_kinds_and_parameters() -> None:
    assert set(SINKS) == {
        "callback",
        "stdout",
        "jsonl_file",
        "parquet_file",
        "keysquare_publish",
        "nats",
        "nats_core",
        "kdb_upsert",
        "streamsea_publish",
        "view",
    }
    with pytest.raises(ValueError, match=r"unknown sink kind 'parquet'.*parquet_file"):
        make_sink("parquet", path="x")
    with pytest.raises(TypeError, match=r"unknown parameter 'max_byte'.*max_bytes"):
        make_sink("jsonl_file", path="x.jsonl", max_byte=10)
    with pytest.raises(TypeError, match="missing parameter 'id_field'"):
        make_sink(
            "keysquare_publish",
            url="127.0.0.1:1",
            application_name="a",
            api_key="k",
            data_type="Price",
        )
    with pytest.raises(ValueError, match="bad schema"):
        make_sink("parquet_file", path="x.parquet", schema={"i": "integer-ish"})


def test_table_cells_show_prices_and_epoch_times_plainly() -> None:
    from actorwire.pipelines.sinks import _cell

    assert _cell(101.854) == "101.854"
    assert _cell(98.47449934836341) == "98.4745"
    assert _cell(1795263032.0) == "1795263032"  # no exponent
    assert _cell(-0.00001) == "0"
    assert _cell(None) == "" and _cell(42) == "42"


def test_the_view_sink_keeps_the_latest_record_per_key() -> None:
    sink = make_sink("view", key="key", max_rows=2)
    sink.write([{"key": "a", "v": 1}, {"key": "b", "v": 2}, {"key": "a", "v": 3}], 0.0)
    assert sink.rows() == [{"key": "b", "v": 2}, {"key": "a", "v": 3}]  # type: ignore[attr-defined]
    sink.write([{"key": "c", "v": 4}], 0.0)
    assert [r["key"] for r in sink.rows()] == ["a", "c"]  # type: ignore[attr-defined]
    assert sink.stats() == {"shown": 4}
    with pytest.raises(ValueError, match="key must be a field name"):
        make_sink("view", key="")


def test_the_live_table_shows_each_rows_time() -> None:
    import io

    from rich.console import Console

    sink = make_sink("stdout", key="key", fields=["key", "close"], live=True, stream=io.StringIO())
    # The rows the live table holds (filled by write() once started).
    sink._rows["AAPL"] = {"key": "AAPL", "window_start": 1_700_000_000.0, "close": 1.5}  # type: ignore[attr-defined]
    console = Console(record=True, width=100, file=io.StringIO())
    console.print(sink._table())  # type: ignore[attr-defined]
    text = console.export_text()
    assert "time (UTC)" in text and "22:13:20" in text and "AAPL" in text
