"""Sources after a restart resume where they were (no record twice, none missed), a finished
source produces nothing more, and bad parameters are named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from actorwire.pipelines import JsonlFileSource, SyntheticPricesSource


def _synthetic() -> SyntheticPricesSource:
    return SyntheticPricesSource(rate=None, limit=6, batch=10, timestamps="derived", seed=3)


def test_a_synthetic_source_resumed_after_a_restart_continues_where_it_was() -> None:
    first = _synthetic()
    everything = first.poll(0.0)
    assert len(everything) == 6 and first.done
    assert first.poll(1.0) == []  # done: nothing more
    resumed = _synthetic()
    resumed.skip(4)
    assert resumed.poll(0.0) == everything[4:]
    assert resumed.done


def _write(path: Path, records: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_a_jsonl_source_resumed_after_a_restart_skips_what_it_already_produced(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path / "in.jsonl", [{"i": i} for i in range(5)])
    source = JsonlFileSource(path)
    source.skip(3)
    source.start(None)  # type: ignore[arg-type]
    assert source.poll(0.0) == [{"i": 3}, {"i": 4}]
    assert source.done
    source.stop()


def test_a_jsonl_source_resumed_past_the_end_of_its_file_is_done(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.jsonl", [{"i": 0}, {"i": 1}])
    source = JsonlFileSource(path)
    source.skip(5)  # the file was replaced by a shorter one meanwhile
    source.start(None)  # type: ignore[arg-type]
    assert source.poll(0.0) == []
    assert source.done
    assert source.next_poll() is None


def test_a_stopped_jsonl_source_reads_no_further(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.jsonl", [{"i": i} for i in range(4)])
    source = JsonlFileSource(path, batch=2)
    source.start(None)  # type: ignore[arg-type]
    assert source.poll(0.0) == [{"i": 0}, {"i": 1}]
    source.stop()
    assert source.poll(0.0) == []
    assert source.next_poll() is None
    assert source.stats() == {"produced": 2, "bad_lines": 0}


def test_a_replayed_record_without_a_numeric_time_goes_at_once(tmp_path: Path) -> None:
    records = [{"i": 0, "timestamp": 100.0}, {"i": 1, "timestamp": "late"}, {"i": 2}]
    path = _write(tmp_path / "in.jsonl", records)
    source = JsonlFileSource(path, speed=1.0)
    source.start(None)  # type: ignore[arg-type]
    assert source.poll(50.0) == records
    source.stop()


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"path": 5}, TypeError, "jsonl_file source: path must be a file path, got 5"),
        ({"path": ""}, TypeError, "jsonl_file source: path must be a file path, got ''"),
        ({"time_field": ""}, ValueError, "jsonl_file source: time_field must be a field name"),
    ],
)
def test_a_jsonl_source_names_a_bad_path_or_time_field(
    tmp_path: Path, params: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments = {"path": _write(tmp_path / "in.jsonl", [{"i": 0}]), **params}
    with pytest.raises(error, match=message):
        JsonlFileSource(**arguments)
