"""Sources: synthetic prices, JSONL replay, keysquare subscriptions, the inlet, the registry."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from actorwire.adapters.keysquare import KeyHeader, KeySession, PlatformServer
from actorwire.pipelines import (
    SOURCES,
    JsonlFileSource,
    Pipeline,
    SyntheticPrices,
    SyntheticPricesSource,
    make_source,
)

from tests.pipelines.conftest import Collector
from tests.support.waiting import wait_until

MakePipeline = Callable[..., Pipeline]
pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


class Timed(Collector):
    """A collector that also notes when each record arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def __call__(self, record: Any) -> None:
        self.times.append(time.monotonic())
        super().__call__(record)


# -- synthetic_prices ------------------------------------------------------------------------


def test_synthetic_prices_limit_and_seed_make_a_reproducible_run(
    make_pipeline: MakePipeline,
) -> None:
    runs = []
    for seed in (7, 7, 8):
        out = Collector()
        p = make_pipeline()
        p.source(
            "synthetic_prices",
            symbols=["A", "B", "C"],
            rate=None,
            batch=64,
            limit=500,
            seed=seed,
            timestamps="derived",
        ).to(out)
        p.run()
        runs.append(out.records)
    assert len(runs[0]) == 500
    assert runs[0] == runs[1] != runs[2]
    assert runs[0] == SyntheticPrices(["A", "B", "C"], 7, interval=0.001).next_batch(500)
    first = runs[0][0]
    assert set(first) == {"symbol", "bid", "ask", "last", "volume", "timestamp"}
    assert 0 < first["bid"] <= first["last"] <= first["ask"]


def test_synthetic_prices_are_paced_at_the_rate(make_pipeline: MakePipeline) -> None:
    out = Timed()
    p = make_pipeline()
    p.source("synthetic_prices", rate=200.0, duration=0.25, tick=0.01).to(out)
    started = time.monotonic()
    p.run()
    assert len(out) == 50
    assert time.monotonic() - started >= 0.25
    assert out.times[-1] - out.times[0] >= 0.15  # spread out, not one burst
    assert p.stats()["synthetic_prices"]["source_produced"] == 50


def test_synthetic_prices_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="rate must be a finite number > 0"):
        SyntheticPricesSource(rate=0)
    with pytest.raises(ValueError, match="limit must be an integer >= 1"):
        SyntheticPricesSource(limit=0)
    with pytest.raises(ValueError, match="timestamps must be 'wall' or 'derived'"):
        SyntheticPricesSource(timestamps="now")
    with pytest.raises(ValueError, match="symbols must be distinct"):
        SyntheticPricesSource(symbols=["A", "A"])


# -- jsonl_file ------------------------------------------------------------------------------


def test_jsonl_file_replays_every_object_and_counts_bad_lines(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"i": 0}\n\n{"i": 1}\nnot json\n[1, 2]\n{"i": 2}\n')
    out = Collector()
    p = make_pipeline()
    p.source("jsonl_file", name="file", path=path).to(out)
    p.run()
    assert out.records == [{"i": 0}, {"i": 1}, {"i": 2}]
    stats = p.stats()["file"]
    assert stats["failed"] == 2
    assert stats["source_bad_lines"] == 2
    assert stats["emitted"] == 3


def test_jsonl_file_reads_rotated_parts_oldest_first(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    path = tmp_path / "rec.jsonl"
    write_jsonl(tmp_path / "rec.2.jsonl", [{"i": 2}, {"i": 3}])
    write_jsonl(tmp_path / "rec.10.jsonl", [{"i": 4}])
    write_jsonl(tmp_path / "rec.1.jsonl", [{"i": 0}, {"i": 1}])
    write_jsonl(path, [{"i": 5}])
    write_jsonl(tmp_path / "other.1.jsonl", [{"i": 99}])
    out, only_current = Collector(), Collector()
    p = make_pipeline()
    p.source("jsonl_file", path=path).to(out)
    p.source("jsonl_file", name="current", path=str(path), rotated=False).to(only_current)
    p.run()
    assert [r["i"] for r in out.records] == [0, 1, 2, 3, 4, 5]
    assert only_current.records == [{"i": 5}]


def test_jsonl_file_replays_at_the_recorded_speed(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    rows = [{"i": i, "ts": 1_700_000_000_000 + 100 * i} for i in range(5)]  # ms, 0.1 s apart
    path = write_jsonl(tmp_path / "timed.jsonl", rows)
    out = Timed()
    p = make_pipeline()
    p.source("jsonl_file", path=path, speed=2.0, time_field="ts", time_unit="ms").to(out)
    p.run()
    assert out.records == rows
    gaps = [b - a for a, b in zip(out.times, out.times[1:], strict=False)]
    assert all(gap >= 0.04 for gap in gaps), gaps  # 0.1 s recorded, replayed twice as fast
    assert out.times[-1] - out.times[0] >= 0.19


def test_jsonl_file_limit(make_pipeline: MakePipeline, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "many.jsonl", [{"i": i} for i in range(100)])
    out = Collector()
    p = make_pipeline()
    p.source("jsonl_file", path=path, limit=10, batch=3).to(out)
    p.run()
    assert [r["i"] for r in out.records] == list(range(10))


def test_jsonl_file_rejects_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        JsonlFileSource(tmp_path / "missing.jsonl")
    path = write_jsonl(tmp_path / "x.jsonl", [])
    with pytest.raises(ValueError, match="speed must be a finite number > 0"):
        JsonlFileSource(path, speed=-1)
    with pytest.raises(ValueError, match="time_unit must be one of s, ms, us, ns"):
        JsonlFileSource(path, time_unit="h")


# -- inlet and the registry --------------------------------------------------------------------


def test_inlet_takes_records_told_to_its_address(make_pipeline: MakePipeline) -> None:
    out = Collector()
    p = make_pipeline()
    inlet = p.source("inlet", name="in")
    inlet.to(out)
    p.start()
    inlet.address.tell_many([{"n": 1}, {"n": 2}])
    inlet.address.tell({"n": 3})
    assert out.wait_for(3) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert not p.done  # an inlet never finishes by itself


def test_make_source_names_bad_kinds_and_parameters(tmp_path: Path) -> None:
    assert set(SOURCES) == {
        "synthetic_prices",
        "jsonl_file",
        "keysquare",
        "inlet",
        "nats",
        "nats_core",
        "smarkets",
        "streamsea",
    }
    assert isinstance(make_source("synthetic_prices", rate=5.0), SyntheticPricesSource)
    with pytest.raises(ValueError, match=r"unknown source kind 'jsonl'.*jsonl_file"):
        make_source("jsonl")
    with pytest.raises(TypeError, match=r"unknown parameter 'sped'.*did you mean 'speed'"):
        make_source("jsonl_file", path=tmp_path / "x.jsonl", sped=1.0)
    with pytest.raises(TypeError, match="missing parameter 'data_type'"):
        make_source("keysquare", url="127.0.0.1:1", application_name="a", api_key="k")
    with pytest.raises(ValueError, match="url must be 'host:port'"):
        make_source(
            "keysquare", url="nowhere", application_name="a", api_key="k", data_type="Price"
        )


# -- keysquare ---------------------------------------------------------------------------------


@pytest.fixture
def publisher(platform: PlatformServer) -> Iterator[KeySession]:
    session = KeySession("demo", "demo-key", f"127.0.0.1:{platform.port}")
    try:
        yield session
    finally:
        session.stop()


def ks_params(platform: PlatformServer, **extra: Any) -> dict[str, Any]:
    return {
        "url": f"127.0.0.1:{platform.port}",
        "application_name": "demo",
        "api_key": "demo-key",
        "data_type": "Price",
        **extra,
    }


def test_keysquare_source_emits_cached_then_live_records_as_flat_dicts(
    make_pipeline: MakePipeline, platform: PlatformServer, publisher: KeySession
) -> None:
    publisher.publish("Price", "AAPL", {"symbol": "AAPL", "bid": 1.5, "ask": 1.6})
    out, live_only = Collector(), Collector()
    p = make_pipeline()
    p.source("keysquare", name="prices", **ks_params(platform)).to(out)
    p.source("keysquare", name="live", **ks_params(platform, subscription_type="live_only")).to(
        live_only
    )
    p.start()
    first = out.wait_for(1)[0]
    assert first == {
        "symbol": "AAPL",
        "bid": 1.5,
        "ask": 1.6,
        "id": "AAPL",
        "source": "demo",
        "group": "NONE",
        "seq": first["seq"],
        "timestamp_ns": first["timestamp_ns"],
    }
    assert first["timestamp_ns"] > 0
    publisher.publish("Price", "MSFT", {"symbol": "MSFT", "bid": 2.5})
    publisher.publish("Price", "MSFT", {}, key_header=KeyHeader(voided=True))
    assert [r["id"] for r in out.wait_for(2)] == ["AAPL", "MSFT"]
    assert [r["id"] for r in live_only.wait_for(1)] == ["MSFT"]
    assert p.links() == {"prices": "CONNECTED", "live": "CONNECTED"}
    wait_until(lambda: p.stats()["prices"]["source_voided"] == 1, what="the voided record")
    assert p.stop(drain=True, timeout=10.0)
    assert [r["id"] for r in out.records] == ["AAPL", "MSFT"]  # the voided one skipped
    assert p.stats()["prices"]["emitted"] == 2
    assert p.links() == {"prices": "CLOSED", "live": "CLOSED"}


def test_keysquare_source_can_include_voided_records(
    make_pipeline: MakePipeline, platform: PlatformServer, publisher: KeySession
) -> None:
    out = Collector()
    p = make_pipeline()
    p.source("keysquare", **ks_params(platform, include_voided=True, id="X")).to(out)
    p.start()
    publisher.publish("Price", "Y", {"symbol": "Y"})
    publisher.publish("Price", "X", {"symbol": "X", "bid": 1.0})
    publisher.publish("Price", "X", {}, key_header=KeyHeader(voided=True))
    got = out.wait_for(2)
    assert [(r["id"], r.get("voided", False)) for r in got] == [("X", False), ("X", True)]


def test_keysquare_source_with_bad_credentials_fails_start(
    make_pipeline: MakePipeline, platform: PlatformServer
) -> None:
    p = make_pipeline(intensity=0)
    p.source("keysquare", **ks_params(platform, api_key="wrong", timeout=5.0)).to(print)
    with pytest.raises(RuntimeError) as info:
        p.start()
    assert "wrong" not in str(info.value)
