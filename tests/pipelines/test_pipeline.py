"""Pipelines: wiring shapes, validation, run/stop/drain, restarts, overflow under a slow sink,
record and replay."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from actorwire.actors import Actor, ActorSystem, Backoff
from actorwire.pipelines import (
    OperatorBase,
    Pipeline,
    PipelineError,
    StageActor,
    make_operator,
)

from tests.pipelines.conftest import Collector
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("no_thread_leaks")

MakePipeline = Callable[..., Pipeline]


def records(n: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [{"i": i, **extra} for i in range(start, start + n)]


def ids(got: list[dict[str, Any]]) -> list[int]:
    return [r["i"] for r in got]


class HoldAll(OperatorBase):
    """Emits nothing until the drain, then everything: proves the flush reaches the sink."""

    def __init__(self) -> None:
        self.held: list[Any] = []

    def on_record(self, record: Any, now: float) -> list[Any]:
        self.held.append(record)
        return []

    def flush(self, now: float) -> list[Any]:
        out, self.held = self.held, []
        return out


# -- wiring shapes --------------------------------------------------------------------------


def test_linear_chain_runs_until_the_source_is_done(
    make_pipeline: MakePipeline, collector: Collector
) -> None:
    p = make_pipeline()
    (
        p.source("synthetic_prices", symbols=["A", "B"], rate=None, limit=2000, seed=1)
        .then("filter", predicate=lambda r: r["symbol"] == "A")
        .then(lambda r: {"symbol": r["symbol"], "mid": (r["bid"] + r["ask"]) / 2})
        .to(collector)
    )
    p.run()
    assert len(collector) == 1000
    assert all(set(r) == {"symbol", "mid"} for r in collector.records)
    assert p.done
    assert [s.name for s in p.stages] == ["synthetic_prices", "filter", "map", "callback"]
    assert p.order() == ["synthetic_prices", "filter", "map", "callback"]


def test_fan_out_gives_every_branch_every_record_as_its_own_copy(
    make_pipeline: MakePipeline,
) -> None:
    left, right = Collector(), Collector()

    def scribble(record: dict[str, Any]) -> dict[str, Any]:
        record["scribbled"] = True  # edits in place: must not leak into the other branch
        return record

    p = make_pipeline()
    src = p.source("synthetic_prices", rate=None, limit=500)
    src.then("map", fn=scribble).to(left)
    src.to(right)
    p.run()
    assert len(left) == len(right) == 500
    assert all(r.get("scribbled") for r in left.records)
    assert not any("scribbled" in r for r in right.records)


def test_fan_in_with_merge_and_with_to_an_existing_stage(
    make_pipeline: MakePipeline, collector: Collector
) -> None:
    other = Collector()
    p = make_pipeline()
    a = p.source("synthetic_prices", name="a", symbols=["A"], rate=None, limit=300)
    b = p.source("synthetic_prices", name="b", symbols=["B"], rate=None, limit=200)
    c = p.source("synthetic_prices", name="c", symbols=["C"], rate=None, limit=100)
    merged = p.merge(a, b).then("map", name="tag", fn=lambda r: {**r, "tagged": True})
    sink = merged.to(collector, name="sink")
    assert c.to(sink) is sink  # a third input into the existing sink
    c.to(other)
    p.run()
    symbols = [r["symbol"] for r in collector.records]
    assert (symbols.count("A"), symbols.count("B"), symbols.count("C")) == (300, 200, 100)
    assert len(other) == 100
    assert p.spec("sink").inputs == ["tag", "c"]
    order = p.order()
    assert order.index("tag") > max(order.index("a"), order.index("b"))
    assert order.index("sink") > max(order.index("tag"), order.index("c"))


def test_drain_follows_topological_order_through_fan_in(
    make_pipeline: MakePipeline, collector: Collector
) -> None:
    p = make_pipeline()
    a = p.source("synthetic_prices", name="a", rate=None, limit=400)
    b = p.source("synthetic_prices", name="b", rate=None, limit=300)
    held_a = a.then(HoldAll, name="held_a")
    held_b = b.then(HoldAll, name="held_b")
    p.merge(held_a, held_b).then(HoldAll, name="held_both").to(collector)
    p.run()
    assert len(collector) == 700  # both branches flushed before the merged stage drained


def test_to_an_address_outside_the_pipeline(make_pipeline: MakePipeline) -> None:
    seen = Collector()

    class Outside(Actor):
        def on_receive(self, message: Any) -> None:
            seen(message)

    with ActorSystem("outside") as system:
        outside = system.spawn(Outside, name="outside")
        p = make_pipeline(system=system)
        src = p.source("synthetic_prices", rate=None, limit=50)
        assert src.to(outside) is src
        p.run()
        seen.wait_for(50)
        assert not system.is_shut_down  # a given system is the caller's to shut down
        assert outside.is_alive()


def test_context_manager_starts_and_drains(make_pipeline: MakePipeline) -> None:
    collector = Collector()
    p = make_pipeline()
    p.source("inlet", name="in").then(HoldAll).to(collector)
    with p:
        p.address("in").tell_many(records(100))
        wait_until(lambda: p.stats()["HoldAll"]["processed"] == 100, what="records taken")
        assert len(collector) == 0
    assert ids(collector.records) == list(range(100))
    assert p.stop() is True  # idempotent


# -- validation -----------------------------------------------------------------------------


def test_bad_definitions_raise_at_once_naming_the_problem(make_pipeline: MakePipeline) -> None:
    p = make_pipeline()
    src = p.source("inlet", name="in")
    with pytest.raises(ValueError, match=r"source kind 'synthetic_price'.*synthetic_prices"):
        p.source("synthetic_price")
    with pytest.raises(ValueError, match="unknown operator kind 'mapp'"):
        src.then("mapp", fn=print)
    with pytest.raises(TypeError, match=r"unknown parameter 'pth'.*path"):
        src.to("jsonl_file", pth="x.jsonl")
    with pytest.raises(TypeError, match="missing parameter 'path'"):
        src.to("jsonl_file")
    with pytest.raises(ValueError, match=r"conflate.*mailbox_key"):
        src.to(print, overflow="conflate", capacity=10)
    with pytest.raises(ValueError, match="overflow must be one of"):
        src.to(print, overflow="spill")
    with pytest.raises(ValueError, match="already has a stage named 'in'"):
        p.source("inlet", name="in")
    with pytest.raises(TypeError, match="not an instance"):
        src.then(type("A", (Actor,), {})())
    with pytest.raises(TypeError, match="unknown stage option"):
        p.add_stage("x", "map", {"fn": print}, ["in"], capacityy=3)
    with pytest.raises(ValueError, match="unknown stage 'nope'"):
        p.add_stage("x", "map", {"fn": print}, ["nope"])
    sink = src.to(print, name="sink")
    with pytest.raises(ValueError, match="'sink' is a sink: sinks have no output"):
        sink.then("map", fn=print)
    mid = src.then("map", name="mid", fn=print)
    end = mid.then("map", name="end", fn=print)
    with pytest.raises(ValueError, match="cycle"):
        end.to(mid)
    assert [s.name for s in p.stages] == ["in", "sink", "mid", "end"]


def test_secrets_never_show_in_a_stage_spec(make_pipeline: MakePipeline) -> None:
    p = make_pipeline()
    src = p.source(
        "keysquare",
        url="127.0.0.1:1",
        application_name="demo",
        api_key="very-secret",
        data_type="Price",
    )
    assert "very-secret" not in repr(src.spec)
    assert "[redacted]" in repr(src.spec)


def test_stages_cannot_be_added_once_started(make_pipeline: MakePipeline) -> None:
    p = make_pipeline()
    src = p.source("inlet")
    src.to(print)
    p.start()
    with pytest.raises(RuntimeError, match="before start"):
        src.to(print)
    with pytest.raises(RuntimeError, match="already started"):
        p.start()


# -- run, stop -------------------------------------------------------------------------------


def test_run_returns_after_duration_for_an_endless_source(make_pipeline: MakePipeline) -> None:
    collector = Collector()
    p = make_pipeline()
    p.source("synthetic_prices", rate=500.0).to(collector)
    p.run(duration=0.2)
    stats = p.stats()
    assert stats["synthetic_prices"]["emitted"] == len(collector) > 0


def test_stop_from_another_thread_ends_run(make_pipeline: MakePipeline) -> None:
    collector = Collector()
    p = make_pipeline()
    p.source("synthetic_prices", rate=1000.0).to(collector)
    p.start()
    stopper = threading.Thread(target=lambda: (collector.wait_for(10), p.stop()))
    stopper.start()
    p.run()
    stopper.join(5.0)
    assert p.stats()["synthetic_prices"]["emitted"] == len(collector)


def test_stop_from_inside_a_stage_ends_run_at_once(make_pipeline: MakePipeline) -> None:
    # A callback sink that has seen enough stops its own pipeline: no wait on itself.
    seen: list[Any] = []
    p = make_pipeline()

    def enough(record: Any) -> None:
        seen.append(record)
        if len(seen) == 50:
            assert p.stop(timeout=30.0) is True

    p.source("synthetic_prices", rate=None).to(enough)
    began = time.monotonic()
    p.run()
    assert time.monotonic() - began < 10.0  # not the 30 s stop timeout
    assert p.stats()["synthetic_prices"]["emitted"] == len(seen) >= 50


def test_drain_loses_nothing_the_pipeline_accepted(make_pipeline: MakePipeline) -> None:
    collector = Collector()
    p = make_pipeline()
    a = p.source("synthetic_prices", name="a", rate=None, batch=200)
    b = p.source("synthetic_prices", name="b", rate=None, batch=200)
    (
        p.merge(a, b)
        .then("map", fn=lambda r: {**r, "seen": 1}, capacity=64)
        .then(HoldAll, name="hold")
        .then("filter", predicate=lambda r: True, capacity=64)
        .to(collector, name="sink", capacity=64)
    )
    p.start()
    wait_until(lambda: p.stats()["hold"]["processed"] >= 5000, what="records flowing")
    assert p.stop(drain=True, timeout=10.0)
    stats = p.stats()
    produced = stats["a"]["emitted"] + stats["b"]["emitted"]
    assert produced >= 5000
    assert len(collector) == produced
    assert stats["sink"]["processed"] == produced
    assert sum(s["dropped"] + s["failed"] for s in stats.values()) == 0


def test_stop_without_drain_discards_what_operators_hold(make_pipeline: MakePipeline) -> None:
    collector = Collector()
    p = make_pipeline()
    p.source("inlet", name="in").then(HoldAll).to(collector)
    p.start()
    p.address("in").tell_many(records(10))
    wait_until(lambda: p.stats()["HoldAll"]["processed"] == 10, what="records taken")
    assert p.stop(drain=False)
    assert len(collector) == 0


# -- supervision -------------------------------------------------------------------------------


def test_restarted_stage_loses_no_record_held_in_its_address(
    make_pipeline: MakePipeline, collector: Collector
) -> None:
    broke = threading.Event()

    def fragile(record: dict[str, Any]) -> dict[str, Any]:
        if record["i"] == 5 and not broke.is_set():
            broke.set()
            raise RuntimeError("poison")
        return record

    p = make_pipeline(backoff=Backoff(min=0.3, max=0.3, factor=1.0, jitter=0.0))
    p.source("inlet", name="in").then(
        "map", name="fragile", fn=fragile, on_error="restart", capacity=1000
    ).to(collector)
    p.start()
    p.address("in").tell_many(records(50))
    assert p.system is not None
    metrics = p.system.metrics

    wait_until(
        lambda: metrics()["actors"][f"{p.name}.fragile"]["state"] == "held",
        what="the failed stage waiting for its restart",
    )
    p.address("in").tell_many(records(50, 50))  # told while it restarts: held, then delivered
    got = collector.wait_for(99)
    assert ids(got) == [i for i in range(100) if i != 5]
    stats = p.stats()["fragile"]
    assert (stats["restarts"], stats["failed"], stats["processed"]) == (1, 1, 99)
    letters = [d for d in p.system.dead_letters.recent() if d.recipient.endswith(".fragile")]
    assert [d.message for d in letters] == [{"i": 5}]


def test_a_stage_restarting_under_load_loses_exactly_the_records_it_failed_on(
    make_pipeline: MakePipeline, collector: Collector, request: pytest.FixtureRequest
) -> None:
    # 20,000 records at 20,000 a second into a stage that raises on every 100th with
    # on_error="restart": 200 restarts. Records told while it restarts are held (senders
    # wait when the hold is full); only the 200 failing records are missing downstream.
    counter = itertools.count()

    def number(record: dict[str, Any]) -> dict[str, Any]:
        return {"n": next(counter)}

    def fragile(record: dict[str, Any]) -> dict[str, Any]:
        if record["n"] % 100 == 99:
            raise ValueError(f"record {record['n']} is poison")
        return record

    system = ActorSystem("restarts-under-load", hold_limit=50)  # each restart fills it
    request.addfinalizer(system.shutdown)
    p = make_pipeline(
        system=system,
        intensity=1_000_000,
        backoff=Backoff(min=0.001, max=0.01, factor=2.0, jitter=0.1),
    )
    p.source("synthetic_prices", name="prices", rate=20_000, limit=20_000).then(
        "map", name="number", fn=number
    ).then("map", name="fragile", fn=fragile, on_error="restart").to(collector)
    p.start()
    got = collector.wait_for(19_800, timeout=30)
    wait_until(lambda: p.done, what="the source finished")
    assert p.stop(drain=True, timeout=30)
    ns = [r["n"] for r in collector.records]
    assert len(ns) == len(set(ns)) == 19_800 == len(got)  # nothing twice
    assert set(ns) == {n for n in range(20_000) if n % 100 != 99}
    stats = p.stats()
    assert stats["fragile"]["restarts"] == 200
    assert stats["fragile"]["failed"] == 200
    assert all(row["dead_lettered"] == 0 and row["dropped"] == 0 for row in stats.values())
    assert p.system is not None
    assert p.system.dead_letters.lost() == {}
    assert sum(p.system.dead_letters.failed().values()) == 200


def test_a_stage_that_keeps_failing_fails_the_pipeline(make_pipeline: MakePipeline) -> None:
    class Broken(Actor):
        def on_receive(self, message: Any) -> None:
            raise RuntimeError("always")

    p = make_pipeline(intensity=1, period=30.0, backoff=Backoff(min=0.01, max=0.01))
    p.source("inlet", name="in").to(Broken)
    p.start()
    p.address("in").tell_many(records(5))
    with pytest.raises(PipelineError, match="gave up"):
        p.run()
    assert p.failure is not None and "gave up" in p.failure


def test_a_stage_that_cannot_start_fails_start(make_pipeline: MakePipeline) -> None:
    class NoStart(StageActor):
        def on_start(self) -> None:
            raise OSError("no disk")

    p = make_pipeline(intensity=0)
    p.source("inlet").to(NoStart)
    with pytest.raises(RuntimeError, match="no disk"):
        p.start()


# -- overflow under a slow sink ------------------------------------------------------------------


class Gate:
    """A sink function that blocks on the first record until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.seen = Collector()

    def __call__(self, record: dict[str, Any]) -> None:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(10.0)
        self.seen(record)


@pytest.mark.parametrize(
    ("overflow", "expected"),
    [
        ("drop_newest", [0, *range(1, 11)]),
        ("drop_oldest", [0, *range(90, 100)]),
        ("fail", [0, *range(1, 11)]),
        ("backpressure", list(range(100))),
        ("conflate", [0, 96, 97, 98, 99, 95]),
    ],
)
def test_overflow_policies_under_a_slow_sink(
    make_pipeline: MakePipeline, overflow: str, expected: list[int]
) -> None:
    gate = Gate()
    p = make_pipeline()
    p.source("inlet", name="in").to(
        gate, name="slow", capacity=10, overflow=overflow, mailbox_key="k"
    )
    p.start()
    inlet = p.address("in")
    inlet.tell({"i": 0, "k": 0})
    assert gate.entered.wait(5.0)
    inlet.tell_many([{"i": i, "k": i % 5} for i in range(1, 100)])
    if overflow == "backpressure":
        wait_until(lambda: p.stats()["slow"]["mailbox_depth"] == 10, what="a full mailbox")
        assert p.stats()["in"]["emitted"] < 100  # the inlet is held back, not dropping
    else:
        wait_until(lambda: p.stats()["in"]["emitted"] == 100, what="everything offered")
    gate.release.set()
    got = gate.seen.wait_for(len(expected))
    assert p.stop(drain=True, timeout=5.0)
    assert ids(got) == expected
    slow = p.stats()["slow"]
    assert slow["dropped"] == 100 - len(expected)
    assert slow["processed"] + slow["dropped"] == 100


# -- record and replay ----------------------------------------------------------------------------


def test_a_recorded_session_replays_to_the_same_output(
    make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    recording = tmp_path / "session.jsonl"

    def bars(source: Any, out: Collector) -> None:
        source.then(
            make_operator(
                "tumbling_window",
                size=0.02,
                aggregations=["ohlc", "vwap"],
                key="symbol",
                time_field="timestamp",
            )
        ).to(out)

    live_out = Collector()
    live = make_pipeline()
    prices = live.source("synthetic_prices", symbols=["A", "B", "C"], rate=3000.0, limit=600)
    prices.to("jsonl_file", path=recording, max_bytes=16_384)
    bars(prices, live_out)
    live.run()

    replay_out = Collector()
    replay = make_pipeline()
    bars(replay.source("jsonl_file", path=recording), replay_out)
    replay.run()

    assert len(list(tmp_path.glob("session.*.jsonl"))) >= 2  # it rotated
    assert replay.stats()["jsonl_file"]["emitted"] == 600
    assert len(live_out) > 3
    assert replay_out.records == live_out.records
