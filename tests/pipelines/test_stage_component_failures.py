"""A stage whose component fails outside the happy path: a sink whose write raises, an
operator whose tick or flush raises, counters that cannot be read; and user actor stages
that read their own wiring."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from typing import Any

from actorwire.actors import ActorSystem, Backoff
from actorwire.pipelines import OperatorBase, Pipeline, Sink, StageActor

from tests.pipelines.conftest import Collector
from tests.support.waiting import wait_until

MakePipeline = Callable[..., Pipeline]


def _logged(log: io.StringIO, event: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]
    return [row for row in rows if row.get("event") == event]


class Refuses(Sink):
    """A sink whose every write raises."""

    def __init__(self) -> None:
        self.calls = 0

    def write(self, records: list[Any], now: float) -> None:
        self.calls += 1
        raise OSError("disk full")


def test_a_sink_whose_write_raises_counts_every_record_of_the_batch_as_failed(
    make_pipeline: MakePipeline,
) -> None:
    with ActorSystem("sink-raises") as system:
        p = make_pipeline(system=system)
        p.source("inlet", name="in").to(Refuses(), name="out")
        p.start()
        p.address("in").tell_many([{"i": i} for i in range(5)])
        wait_until(lambda: p.stats()["out"]["failed"] == 5, what="5 failed records")
        assert p.stats()["out"]["processed"] == 0
        letters = system.dead_letters.recent()
        assert [d.message for d in letters] == [{"i": i} for i in range(5)]
        assert all("disk full" in d.reason and d.failed for d in letters)
        p.stop()


def test_a_sink_whose_write_raises_restarts_its_stage_with_on_error_restart(
    make_pipeline: MakePipeline,
) -> None:
    p = make_pipeline(backoff=Backoff(min=0.01, max=0.01, jitter=0.0), intensity=100)
    p.source("inlet", name="in").to(Refuses(), name="out", on_error="restart")
    p.start()
    p.address("in").tell_many([{"i": 1}, {"i": 2}])
    wait_until(lambda: p.stats()["out"]["restarts"] >= 2, what="the sink stage to restart")
    assert p.stats()["out"]["failed"] == 2
    assert p.stats()["out"]["processed"] == 0


class Ticking(OperatorBase):
    """Asks for a tick at once; its tick raises, its flush raises, its stats raise."""

    def __init__(self) -> None:
        self.ticked = threading.Event()
        self.due: float | None = 0.0

    def on_record(self, record: Any, now: float) -> list[Any]:
        return [record]

    def next_deadline(self) -> float | None:
        return self.due

    def on_tick(self, now: float) -> list[Any]:
        self.due = None
        self.ticked.set()
        raise ArithmeticError("tick bug")

    def flush(self, now: float) -> list[Any]:
        raise LookupError("flush bug")

    def stats(self) -> dict[str, int]:
        raise RuntimeError("no stats")


def test_an_operator_whose_tick_and_flush_raise_is_counted_and_the_drain_goes_on(
    make_pipeline: MakePipeline, collector: Collector, json_log: io.StringIO
) -> None:
    op = Ticking()
    p = make_pipeline()
    p.source("inlet", name="in").then(op, name="op").to(collector, name="out")
    p.start()
    assert op.ticked.wait(5.0)
    p.address("in").tell({"i": 1})
    collector.wait_for(1)
    assert p.stop(drain=True) is True
    stats = p.stats()
    assert stats["op"]["failed"] == 2  # the tick and the flush
    assert stats["op"]["processed"] == 1
    assert not any(k.startswith("op_") for k in stats["op"])  # its stats() raised: none
    assert "tick bug" in _logged(json_log, "on_tick failed")[0]["error"]
    assert "flush bug" in _logged(json_log, "flush failed")[0]["error"]
    assert collector.records == [{"i": 1}]


class Describes(StageActor):
    """A user actor stage that reports its own stage name and downstream addresses."""

    def on_receive(self, message: Any) -> Any:
        self.emit({"stage": self.stage_name, "downstream": [a.name for a in self.downstream]})


def test_a_user_actor_stage_knows_its_name_and_downstream(
    make_pipeline: MakePipeline, collector: Collector
) -> None:
    p = make_pipeline("wired")
    p.source("inlet", name="in").then(Describes, name="me").to(collector, name="out")
    p.start()
    p.address("in").tell({"x": 1})
    (record,) = collector.wait_for(1)
    assert record == {"stage": "me", "downstream": ["wired.out"]}


def test_a_source_with_on_error_restart_still_stops_producing_at_a_drain(
    make_pipeline: MakePipeline, collector: Collector
) -> None:
    p = make_pipeline()
    p.source("synthetic_prices", name="src", rate=200.0, on_error="restart").to(collector)
    p.start()
    collector.wait_for(5)
    assert p.stop(drain=True) is True
    emitted = p.stats()["src"]["emitted"]
    assert emitted == len(collector) >= 5
