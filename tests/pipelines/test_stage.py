"""The stage actor shell: operators, deadlines and timers, errors, drain, user actor stages."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from actorwire.actors import Actor, Backoff
from actorwire.pipelines import OperatorBase, Pipeline, Source, StageActor

from tests.pipelines.conftest import Collector
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("no_thread_leaks")

MakePipeline = Callable[..., Pipeline]


class Hold(OperatorBase):
    """Holds records until ``delay`` seconds after the first one; a drain flushes them."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.held: list[Any] = []
        self.due: float | None = None
        self.ticks = 0

    def on_record(self, record: Any, now: float) -> list[Any]:
        self.held.append(record)
        if self.due is None:
            self.due = now + self.delay
        return []

    def next_deadline(self) -> float | None:
        return self.due

    def on_tick(self, now: float) -> list[Any]:
        self.ticks += 1
        if self.due is None or now < self.due:
            return []
        out, self.held, self.due = self.held, [], None
        return out

    def flush(self, now: float) -> list[Any]:
        out, self.held, self.due = self.held, [], None
        return out

    def stats(self) -> dict[str, int]:
        return {"held": len(self.held), "ticks": self.ticks}


def records(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"i": i} for i in range(start, start + n)]


def test_operator_outputs_reach_the_sink_in_order(
    make_pipeline: MakePipeline, collector: Collector
) -> None:
    p = make_pipeline()
    p.source("inlet", name="in").then("map", fn=lambda r: {"i": r["i"] * 10}).to(collector)
    p.start()
    p.address("in").tell_many(records(500))
    got = collector.wait_for(500)
    assert [r["i"] for r in got] == [i * 10 for i in range(500)]
    stats = p.stats()
    assert stats["map"]["received"] == stats["map"]["processed"] == stats["map"]["emitted"] == 500
    for name in ("in", "map", "callback"):
        assert {"received", "processed", "dropped", "failed", "mailbox_depth", "restarts"} <= set(
            stats[name]
        )


def test_deadline_timer_releases_held_records_without_more_input(
    make_pipeline: MakePipeline, collector: Collector
) -> None:
    p = make_pipeline()
    p.source("inlet", name="in").then(Hold, name="hold", delay=0.05).to(collector)
    p.start()
    p.address("in").tell_many(records(3))
    assert [r["i"] for r in collector.wait_for(3)] == [0, 1, 2]
    wait_until(lambda: p.stats()["hold"]["op_held"] == 0, what="operator stats published")


def test_one_timer_per_deadline_rearmed_only_when_it_changes(
    make_pipeline: MakePipeline, collector: Collector
) -> None:
    p = make_pipeline()
    p.source("inlet", name="in").then(Hold, name="hold", delay=30.0).to(collector)
    p.start()
    assert p.system is not None
    for start in range(0, 1000, 100):
        p.address("in").tell_many(records(100, start))
    wait_until(lambda: p.stats()["hold"]["processed"] == 1000, what="all records taken")
    assert p.system.timers.pending() == 1
    assert len(collector) == 0
    assert p.stop(drain=True, timeout=5.0)
    assert len(collector) == 1000  # the drain flushed what the operator held


def test_a_raising_function_is_counted_dead_lettered_and_the_stage_goes_on(
    make_pipeline: MakePipeline, collector: Collector
) -> None:
    def picky(record: dict[str, Any]) -> dict[str, Any]:
        if record["i"] % 10 == 3:
            raise ValueError(f"no {record['i']}")
        return record

    p = make_pipeline()
    p.source("inlet", name="in").then("map", name="picky", fn=picky).to(collector)
    p.start()
    p.address("in").tell_many(records(100))
    got = collector.wait_for(90)
    assert [r["i"] for r in got] == [i for i in range(100) if i % 10 != 3]
    stats = p.stats()["picky"]
    assert stats["failed"] == 10
    assert stats["processed"] == 90
    assert stats["restarts"] == 0
    assert p.system is not None
    letters = [d for d in p.system.dead_letters.recent() if d.recipient.endswith(".picky")]
    assert [d.message["i"] for d in letters] == [i for i in range(100) if i % 10 == 3]
    assert "picky" in letters[0].reason and "no 3" in letters[0].reason


def test_drain_flushes_operator_state_through_every_later_stage(
    make_pipeline: MakePipeline, collector: Collector
) -> None:
    p = make_pipeline()
    (
        p.source("synthetic_prices", rate=None, limit=300, seed=3)
        .then(Hold, name="first", delay=60.0)
        .then(Hold, name="second", delay=60.0)
        .to(collector)
    )
    p.run()
    assert len(collector) == 300


class Ticking(OperatorBase):
    """Passes records through and wants a tick ``every`` seconds after each quiet spell."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.due: float | None = None
        self.ticks = 0

    def on_record(self, record: Any, now: float) -> list[Any]:
        if self.due is None:
            self.due = now + self.every
        return [record]

    def next_deadline(self) -> float | None:
        return self.due

    def on_tick(self, now: float) -> list[Any]:
        self.ticks += 1
        self.due = None
        return []

    def stats(self) -> dict[str, int]:
        return {"ticks": self.ticks}


def test_a_saturated_stage_keeps_its_timer_and_counts_no_false_drops(
    make_pipeline: MakePipeline, collector: Collector
) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(record: Any) -> None:
        if not entered.is_set():
            entered.set()
            assert release.wait(10.0)
        collector(record)

    p = make_pipeline()
    (
        p.source("inlet", name="in")
        .then(Ticking, name="ticking", every=0.05, capacity=5)
        .to(slow, name="sink", capacity=5)
    )
    p.start()
    assert p.system is not None
    p.address("in").tell({"i": 0})
    assert entered.wait(5.0)
    p.address("in").tell_many(records(49, 1))
    timers = p.system.timers
    wait_until(lambda: p.stats()["ticking"]["mailbox_depth"] >= 5, what="a full mailbox")
    wait_until(lambda: timers.pending() == 0, what="the timer firing")
    release.set()
    assert [r["i"] for r in collector.wait_for(50)] == list(range(50))
    wait_until(lambda: p.stats()["ticking"]["op_ticks"] >= 1, what="the tick handled")
    assert p.stats()["ticking"]["dropped"] == 0


class Doubler(Actor):
    """A plain actor as a stage: it is given ``emit`` when wired into a pipeline."""

    def on_receive(self, message: Any) -> None:
        self.emit({"i": message["i"] * 2})  # type: ignore[attr-defined]


class Counter(StageActor):
    """A user actor source: emits ``n`` records at start, then finishes."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def on_start(self) -> None:
        self.emit_many(records(self.n))
        self.finish()


class Buffer(StageActor):
    """Holds everything until the drain."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[Any] = []

    def on_batch(self, messages: list[Any]) -> None:
        self.held.extend(messages)

    def on_drain(self) -> None:
        self.emit_many(self.held)
        self.held = []


def test_user_actors_as_source_operator_and_buffering_stage(
    make_pipeline: MakePipeline, collector: Collector
) -> None:
    p = make_pipeline()
    p.source(Counter, name="count", n=50).then(Doubler).then(Buffer).to(collector)
    p.run()
    assert [r["i"] for r in collector.records] == [i * 2 for i in range(50)]
    stats = p.stats()
    assert stats["Doubler"]["received"] == 50  # the drain ask is not counted as a record
    assert stats["Doubler"]["emitted"] == 50
    assert stats["count"]["emitted"] == 50


def test_a_user_actor_sink_receives_records(make_pipeline: MakePipeline) -> None:
    seen = Collector()

    class Sink(Actor):
        def on_receive(self, message: Any) -> None:
            seen(message)

    p = make_pipeline()
    p.source("synthetic_prices", rate=None, limit=20).to(Sink)
    p.run()
    assert len(seen) == 20


class Flaky(Source):
    """A user source that fails once, after its sixth record."""

    broke = threading.Event()

    def __init__(self, n: int) -> None:
        self.n = n
        self.position = 0

    def skip(self, count: int) -> None:
        self.position = count

    def poll(self, now: float) -> list[Any]:
        if self.position >= 5 and not Flaky.broke.is_set():
            Flaky.broke.set()
            raise RuntimeError("flaky")
        out = records(min(2, self.n - self.position), self.position)
        self.position += len(out)
        return out

    def next_poll(self) -> float | None:
        return None if self.done else float("-inf")

    @property
    def done(self) -> bool:
        return self.position >= self.n


def test_a_restarted_source_resumes_without_duplicates(
    make_pipeline: MakePipeline, collector: Collector
) -> None:
    Flaky.broke.clear()
    p = make_pipeline(backoff=Backoff(min=0.01, max=0.01))
    p.source(Flaky, name="flaky", n=12).to(collector)
    p.run()
    assert Flaky.broke.is_set()
    assert [r["i"] for r in collector.records] == list(range(12))
    assert p.stats()["flaky"]["restarts"] == 1
