"""Acknowledgement barriers through a pipeline: a source with ``acks = True`` puts Barriers
between its records; every stage passes them on in order (a window once the windows open
when one came have closed), every terminal stage reports each one done to the source, and
what would lose data or stall behind such a source is refused before anything starts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from actorwire.actors import Actor, ActorSystem
from actorwire.pipelines import (
    DefinitionError,
    Pipeline,
    Sink,
    Source,
    StageActor,
    StageContext,
    load_definition,
)
from actorwire.pipelines.acks import hold_seconds, plan
from actorwire.pipelines.operators import SlidingWindow, TumblingWindow
from actorwire.pipelines.stage import Barrier

from tests.pipelines.conftest import WAIT
from tests.support.waiting import wait_until

MakePipeline = Callable[..., Pipeline]

Event = tuple[Any, ...]


class Journal:
    """What happened, in the order it happened, across every stage's thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._events: list[Event] = []

    def add(self, *event: Any) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    @property
    def events(self) -> list[Event]:
        with self._cond:
            return list(self._events)

    def wait_for(self, what: str, predicate: Callable[[list[Event]], bool]) -> list[Event]:
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(self._events), WAIT)
            got = list(self._events)
        assert ok, f"timed out after {WAIT}s waiting for {what}; journal: {got[-20:]}"
        return got


def rows_of(events: list[Event], stage: str) -> list[Any]:
    return [e[2] for e in events if e[0] == "row" and e[1] == stage]


class AckSource(Source):
    """``count`` numbered records (``i``, event time ``t = i * step``), a Barrier after every
    ``every`` of them (and after the last), one group per poll; keeps every barrier-done
    report and which barriers are complete (reported by every path). With ``wait_acks`` it
    is done only once every barrier is complete. ``max_hold``: ``check_hold`` refuses a
    longer hold downstream (like the nats source's ack_wait). ``acks=False``: a plain
    source (no barriers)."""

    acks = True

    def __init__(
        self,
        count: int = 20,
        every: int = 5,
        step: float = 1.0,
        wait_acks: bool = True,
        max_hold: float | None = None,
        journal: Journal | None = None,
        acks: bool = True,
    ) -> None:
        self.acks = acks
        self.count = count
        self.every = every
        self.step = step
        self.wait_acks = wait_acks
        self.max_hold = max_hold
        self.journal = journal or Journal()
        self.holds_asked: list[float] = []
        self.paths: int | None = None
        self._origin = ""
        self._next = 0
        self._n = 0
        self._lock = threading.Lock()
        self.reports: dict[int, list[str]] = {}
        self.complete: list[int] = []

    @property
    def barriers(self) -> int:
        """How many barriers the source puts out in all."""
        return -(-self.count // self.every)

    def check_hold(self, seconds: float) -> tuple[str, str] | None:
        self.holds_asked.append(seconds)
        if self.max_hold is not None and seconds > self.max_hold:
            return (
                "max_hold",
                f"ack source: max_hold ({self.max_hold:g} s) is shorter than the longest a "
                f"record waits downstream ({seconds:g} s)",
            )
        return None

    def start(self, ctx: StageContext) -> None:
        self._origin = ctx.address.name
        self.paths = ctx.paths

    def poll(self, now: float) -> list[Any]:
        if self._next >= self.count:
            return []
        upto = min(self._next + self.every, self.count)
        out: list[Any] = [{"i": i, "t": i * self.step} for i in range(self._next, upto)]
        self._next = upto
        if self.acks:
            self._n += 1
            out.append(Barrier(self._origin, self._n))
            self.journal.add("sent", self._n)
        return out

    def next_poll(self) -> float | None:
        return 0.0 if self._next < self.count else None

    @property
    def produced(self) -> bool:
        return self._next >= self.count

    @property
    def done(self) -> bool:
        if not self.produced:
            return False
        if not self.wait_acks:
            return True
        with self._lock:
            return len(self.complete) == self._n

    def on_barrier_done(self, n: int, stage: str) -> None:
        needed = max(self.paths or 0, 1)
        with self._lock:
            got = self.reports.setdefault(n, [])
            got.append(stage)
            if len(got) == needed:
                self.complete.append(n)
        self.journal.add("done", n, stage)

    def quiesce(self) -> None:
        self.journal.add("quiesce")

    def snapshot(self) -> tuple[dict[int, list[str]], list[int]]:
        with self._lock:
            return {n: list(s) for n, s in self.reports.items()}, list(self.complete)


class OrderSink(Sink):
    """Journals every row and every barrier as it arrives; barriers are done at once."""

    def __init__(self, journal: Journal, name: str = "sink") -> None:
        self.journal = journal
        self.name = name

    def write(self, records: list[Any], now: float) -> None:
        for record in records:
            self.journal.add("row", self.name, record)

    def on_barrier(self, barrier: Barrier, now: float, ctx: StageContext) -> None:
        self.journal.add("barrier", self.name, barrier.n)
        super().on_barrier(barrier, now, ctx)


def journal_fn(journal: Journal, name: str) -> Callable[[Any], None]:
    """A callback sink's function that journals each record."""

    def fn(record: Any) -> None:
        journal.add("row", name, record)

    return fn


def ignore(record: Any) -> None:
    """A callback sink's function that keeps nothing."""


def acked(source: AckSource, count: int) -> Callable[[], bool]:
    """A condition: ``count`` barriers of ``source`` are complete."""
    return lambda: len(source.snapshot()[1]) == count


def run_until_acked(p: Pipeline, source: AckSource) -> None:
    """Run until the source is done (every barrier complete), failing after WAIT."""
    began = time.monotonic()
    p.run(duration=WAIT)
    assert time.monotonic() - began < WAIT, "the source never saw every barrier done"
    reports, complete = source.snapshot()
    assert complete == list(range(1, source.barriers + 1)), reports


# -- 1: a chain -------------------------------------------------------------------------------


@pytest.mark.parametrize("on_error", ["skip", "restart"])
def test_a_chain_reports_every_barrier_once_in_order_after_its_records(
    make_pipeline: MakePipeline, on_error: str
) -> None:
    journal = Journal()
    source = AckSource(count=23, every=5, journal=journal)
    p = make_pipeline()
    (
        p.source(source, name="src")
        .then(lambda r: {**r, "mapped": True}, name="map", on_error=on_error)
        .to(journal_fn(journal, "sink"), name="sink")
    )
    run_until_acked(p, source)
    assert source.paths == 1
    reports, complete = source.snapshot()
    assert reports == {n: ["sink"] for n in range(1, 6)}
    assert complete == [1, 2, 3, 4, 5]
    events = journal.events
    assert [e[1] for e in events if e[0] == "done"] == [1, 2, 3, 4, 5]
    assert [r["i"] for r in rows_of(events, "sink")] == list(range(23))
    assert all(r["mapped"] for r in rows_of(events, "sink"))
    for n in range(1, 6):
        last = min(n * 5, 23) - 1  # the last record before barrier n
        row = next(i for i, e in enumerate(events) if e[0] == "row" and e[2]["i"] == last)
        assert row < events.index(("done", n, "sink")), f"barrier {n} done before record {last}"


# -- 2: fan-out and a diamond -----------------------------------------------------------------


def test_fan_out_to_two_sinks_needs_a_report_from_each(make_pipeline: MakePipeline) -> None:
    journal = Journal()
    source = AckSource(count=20, every=4, journal=journal)
    p = make_pipeline()
    src = p.source(source, name="src")
    src.to(journal_fn(journal, "a"), name="a")
    src.to(journal_fn(journal, "b"), name="b")
    carrying, paths = plan({s.name: s for s in p.stages}, p.components(), p.outputs)
    assert (carrying, paths) == ({"src", "a", "b"}, {"src": 2})
    run_until_acked(p, source)
    assert source.paths == 2
    reports, _ = source.snapshot()
    assert {n: sorted(s) for n, s in reports.items()} == {n: ["a", "b"] for n in range(1, 6)}
    events = journal.events
    for sink in ("a", "b"):
        assert [r["i"] for r in rows_of(events, sink)] == list(range(20))
        for n in range(1, 6):
            row = next(
                i
                for i, e in enumerate(events)
                if e[0] == "row" and e[1] == sink and e[2]["i"] == n * 4 - 1
            )
            assert row < events.index(("done", n, sink))


def test_a_diamond_counts_both_paths_into_the_one_sink(make_pipeline: MakePipeline) -> None:
    journal = Journal()
    source = AckSource(count=15, every=5, journal=journal)
    p = make_pipeline()
    src = p.source(source, name="src")
    left = src.then(lambda r: {**r, "side": "left"}, name="left")
    right = src.then(lambda r: {**r, "side": "right"}, name="right")
    p.merge(left, right).to(OrderSink(journal), name="sink")
    carrying, paths = plan({s.name: s for s in p.stages}, p.components(), p.outputs)
    assert (carrying, paths) == ({"src", "left", "right", "sink"}, {"src": 2})
    run_until_acked(p, source)
    assert source.paths == 2
    reports, _ = source.snapshot()
    assert reports == {n: ["sink", "sink"] for n in range(1, 4)}
    events = journal.events
    rows = rows_of(events, "sink")
    for side in ("left", "right"):
        assert [r["i"] for r in rows if r["side"] == side] == list(range(15))
    # Each branch passes barrier n on after its own records before it; the two branches
    # interleave freely.
    assert sorted(e[2] for e in events if e[0] == "barrier") == [1, 1, 2, 2, 3, 3]
    for n in range(1, 4):
        lasts = [
            i
            for i, e in enumerate(events)
            if e[0] == "row" and e[2]["i"] == n * 5 - 1  # the last before barrier n, per side
        ]
        dones = [i for i, e in enumerate(events) if e == ("done", n, "sink")]
        assert len(lasts) == len(dones) == 2
        assert min(lasts) < dones[0] and max(lasts) < dones[1]


# -- 3: windows hold barriers -----------------------------------------------------------------


def window_pipeline(make_pipeline: MakePipeline, journal: Journal) -> tuple[Pipeline, AckSource]:
    """t = 0, 0.25, ... 5.75: four records per one-second window, a barrier every three."""
    source = AckSource(count=24, every=3, step=0.25, wait_acks=False, journal=journal)
    p = make_pipeline()
    (
        p.source(source, name="src")
        .then("tumbling_window", name="window", size=1.0, time_field="t", aggregations="count")
        .to(OrderSink(journal), name="sink")
    )
    return p, source


def test_a_window_holds_a_barrier_until_its_open_windows_have_closed(
    make_pipeline: MakePipeline,
) -> None:
    journal = Journal()
    p, source = window_pipeline(make_pipeline, journal)
    p.start()
    # Barriers 1..6 came while windows up to [4,5) were open: each is released with the
    # rows of the record that closes the last of them. Barriers 7 and 8 wait for [5,6),
    # which no record closes.
    journal.wait_for("barriers 1-6 done", lambda ev: ("done", 6, "sink") in ev)
    wait_until(lambda: p.stats()["window"]["processed"] == 24, what="every record windowed")
    events = journal.events
    stream = [e for e in events if e[0] in ("row", "barrier")]
    assert [e[2] for e in stream if e[0] == "barrier"] == [1, 2, 3, 4, 5, 6]
    for n in range(1, 7):
        t_last = (3 * n - 1) * 0.25  # the event time of the last record before barrier n
        at = stream.index(("barrier", "sink", n))
        before = [e[2]["window_start"] for e in stream[:at] if e[0] == "row"]
        # Every window open when the barrier came has closed and its row went first; no
        # window opened later is waited for.
        assert before == [float(k) for k in range(int(t_last) + 1)], (n, before)
    assert [r["count"] for r in rows_of(events, "sink")] == [4] * 5
    assert source.snapshot()[1] == [1, 2, 3, 4, 5, 6]


def test_the_drain_leaves_an_open_window_and_its_barriers_for_the_next_run(
    make_pipeline: MakePipeline,
) -> None:
    # Behind an acknowledging source an open window is not flushed at the drain: its
    # records are unacknowledged, so the next run gets them again and computes it whole.
    journal = Journal()
    p, source = window_pipeline(make_pipeline, journal)
    p.start()
    journal.wait_for("barriers 1-6 done", lambda ev: ("done", 6, "sink") in ev)
    wait_until(lambda: p.stats()["window"]["processed"] == 24, what="every record windowed")
    assert p.stop(drain=True)
    events = journal.events
    assert [r["window_start"] for r in rows_of(events, "sink")] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [e[2] for e in events if e[0] == "barrier"] == [1, 2, 3, 4, 5, 6]
    reports, complete = source.snapshot()
    assert complete == [1, 2, 3, 4, 5, 6]
    assert 7 not in reports and 8 not in reports


@pytest.mark.parametrize("window", ["tumbling", "sliding"])
def test_a_window_flush_releases_its_held_barriers_after_the_rows(window: str) -> None:
    op = (
        TumblingWindow(1.0, "count", time_field="t")
        if window == "tumbling"
        else SlidingWindow(2.0, 1.0, "count", time_field="t")
    )
    b1, b2, b3 = Barrier("p.src", 1), Barrier("p.src", 2), Barrier("p.src", 3)
    assert op.on_barrier(b1, 0.0) == [b1]  # nothing open: passes at once
    assert op.on_record({"t": 0.5}, 0.0) == []
    assert op.on_barrier(b2, 0.0) == []
    assert op.on_record({"t": 0.75}, 0.0) == []
    assert op.on_barrier(b3, 0.0) == []
    out = op.flush(0.0)
    assert out[-2:] == [b2, b3]
    assert all(type(r) is dict and r["count"] == 2 for r in out[:-2])
    assert op.flush(0.0) == []


def test_a_window_releases_a_barrier_when_the_watermark_closes_its_windows() -> None:
    op = TumblingWindow(1.0, "count", time_field="t", allowed_lateness=0.5)
    barrier = Barrier("p.src", 1)
    op.on_record({"t": 0.2}, 0.0)
    op.on_record({"t": 1.2}, 0.0)  # windows [0,1) and [1,2) open
    assert op.on_barrier(barrier, 0.0) == []
    assert op.on_record({"t": 1.6}, 0.0) == [
        {"key": None, "window_start": 0.0, "window_end": 1.0, "count": 1}
    ]  # [1,2) is still open: the barrier waits
    out = op.on_record({"t": 2.5}, 0.0)  # the watermark (2.0) closes [1,2)
    assert out == [{"key": None, "window_start": 1.0, "window_end": 2.0, "count": 2}, barrier]


# -- 4: a sink that confirms later ------------------------------------------------------------


class LaterSink(Sink):
    """Holds every barrier: the test reports them done from another thread, as a sink whose
    writes are confirmed later (a publish's ack) does."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._lock = threading.Lock()
        self.held: list[tuple[Barrier, StageContext]] = []

    def write(self, records: list[Any], now: float) -> None:
        for record in records:
            self.journal.add("row", "sink", record)

    def on_barrier(self, barrier: Barrier, now: float, ctx: StageContext) -> None:
        with self._lock:
            self.held.append((barrier, ctx))
        self.journal.add("barrier", "sink", barrier.n)

    def take(self) -> list[tuple[Barrier, StageContext]]:
        with self._lock:
            out, self.held = self.held, []
        return out


def test_the_source_waits_for_a_sink_that_confirms_later(make_pipeline: MakePipeline) -> None:
    journal = Journal()
    source = AckSource(count=12, every=4, journal=journal)
    sink = LaterSink(journal)
    p = make_pipeline()
    p.source(source, name="src").then(lambda r: r, name="map").to(sink, name="sink")
    p.start()
    journal.wait_for("every barrier at the sink", lambda ev: ("barrier", "sink", 3) in ev)
    wait_until(lambda: p.stats()["sink"]["processed"] == 12, what="every record written")
    assert source.produced
    assert source.snapshot() == ({}, [])
    assert not p.done  # everything produced, nothing confirmed: the source is not done

    def confirm() -> None:
        for barrier, ctx in sink.take():
            ctx.barrier_done(barrier)

    confirmer = threading.Thread(target=confirm, name="confirm")
    confirmer.start()
    confirmer.join(WAIT)
    wait_until(lambda: p.done, timeout=WAIT, what="the source done once confirmed")
    assert source.snapshot() == ({n: ["sink"] for n in range(1, 4)}, [1, 2, 3])
    events = journal.events
    assert events.index(("barrier", "sink", 3)) < events.index(("done", 1, "sink"))


class GatedSink(OrderSink):
    """Blocks in its first write until ``gate`` is set."""

    def __init__(self, journal: Journal) -> None:
        super().__init__(journal)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def write(self, records: list[Any], now: float) -> None:
        if not self.entered.is_set():
            self.entered.set()
            assert self.gate.wait(WAIT)
        super().write(records, now)


def test_barriers_the_sinks_accept_during_the_drain_are_still_reported(
    make_pipeline: MakePipeline,
) -> None:
    # The drain quiesces the source (it stops producing) but lets it take the reports of
    # what the stages after it accept while they drain, before it stops.
    journal = Journal()
    source = AckSource(count=12, every=4, wait_acks=False, journal=journal)
    sink = GatedSink(journal)
    p = make_pipeline()
    p.source(source, name="src").then(lambda r: r, name="map").to(sink, name="sink")
    p.start()
    assert sink.entered.wait(WAIT)
    wait_until(lambda: source.produced, what="every record produced")
    stopped: list[bool] = []
    stopper = threading.Thread(target=lambda: stopped.append(p.stop(drain=True)), name="stop")
    stopper.start()
    try:
        journal.wait_for("the source quiesced", lambda ev: ("quiesce",) in ev)
        assert source.snapshot() == ({}, [])
    finally:
        sink.gate.set()
        stopper.join(WAIT)
    assert stopped == [True]
    assert source.snapshot() == ({n: ["sink"] for n in range(1, 4)}, [1, 2, 3])
    events = journal.events
    assert events.index(("quiesce",)) < events.index(("done", 1, "sink"))


class FailingBarrierSink(OrderSink):
    """Fails on barrier ``bad``: that barrier stays undone, the rest go on."""

    def __init__(self, journal: Journal, bad: int) -> None:
        super().__init__(journal)
        self.bad = bad

    def on_barrier(self, barrier: Barrier, now: float, ctx: StageContext) -> None:
        if barrier.n == self.bad:
            raise RuntimeError("cannot confirm")
        super().on_barrier(barrier, now, ctx)


def test_a_sink_that_fails_on_a_barrier_leaves_it_undone(make_pipeline: MakePipeline) -> None:
    journal = Journal()
    source = AckSource(count=9, every=3, wait_acks=False, journal=journal)
    p = make_pipeline()
    p.source(source, name="src").to(FailingBarrierSink(journal, bad=2), name="sink")
    p.start()
    journal.wait_for("barrier 3 done", lambda ev: ("done", 3, "sink") in ev)
    assert source.snapshot() == ({1: ["sink"], 3: ["sink"]}, [1, 3])
    stats = p.stats()["sink"]
    assert (stats["received"], stats["processed"], stats["failed"]) == (9, 9, 1)


# -- 5: terminals that are not sinks ----------------------------------------------------------


def test_a_stage_with_no_downstream_is_terminal_and_reports(make_pipeline: MakePipeline) -> None:
    journal = Journal()
    source = AckSource(count=10, every=5, journal=journal)
    p = make_pipeline()
    src = p.source(source, name="src")
    src.then(lambda r: r, name="dangling")  # feeds nothing
    src.to(journal_fn(journal, "sink"), name="sink")
    run_until_acked(p, source)
    assert source.paths == 2
    reports, _ = source.snapshot()
    assert {n: sorted(s) for n, s in reports.items()} == {n: ["dangling", "sink"] for n in (1, 2)}
    assert p.stats()["dangling"]["processed"] == 10


class Outside(Actor):
    """An actor outside the pipeline: keeps every message it is told."""

    def __init__(self, seen: list[Any]) -> None:
        super().__init__()
        self.seen = seen

    def on_receive(self, message: Any) -> None:
        self.seen.append(message)


def test_a_stage_whose_only_output_is_an_address_is_terminal(make_pipeline: MakePipeline) -> None:
    seen: list[Any] = []
    direct: list[Any] = []
    beside: list[Any] = []
    source = AckSource(count=10, every=5)
    other = AckSource(count=6, every=2)
    mixed = AckSource(count=4, every=2)
    with ActorSystem("outside") as system:
        outside = system.spawn(Outside, seen, name="outside")
        straight = system.spawn(Outside, direct, name="straight")
        aside = system.spawn(Outside, beside, name="aside")
        p = make_pipeline(system=system)
        p.source(source, name="src").then(lambda r: r, name="ext").to(outside)
        p.source(other, name="other").to(straight)  # a source straight to an address
        p.source(mixed, name="mixed").to(aside).to(ignore, name="mixed_sink")
        carrying, paths = plan({s.name: s for s in p.stages}, p.components(), p.outputs)
        assert carrying == {"src", "ext", "other", "mixed", "mixed_sink"}
        assert paths == {"src": 1, "other": 0, "mixed": 1}
        p.start()
        for acking, count in ((source, 2), (other, 3), (mixed, 2)):
            wait_until(acked(acking, count), what=f"{count} barriers complete")
        wait_until(lambda: (len(seen), len(direct), len(beside)) == (10, 6, 4), what="records")
        assert p.stop()
    assert source.snapshot() == ({1: ["ext"], 2: ["ext"]}, [1, 2])
    # No stage after it: the source is its own terminal, one report per barrier.
    assert other.paths == 0
    assert other.snapshot() == ({1: ["other"], 2: ["other"], 3: ["other"]}, [1, 2, 3])
    # Beside a stage of the pipeline, an address is not a path: only the sink reports.
    assert mixed.snapshot() == ({1: ["mixed_sink"], 2: ["mixed_sink"]}, [1, 2])
    assert not any(isinstance(m, Barrier) for m in seen + direct + beside)
    assert [m["i"] for m in seen] == list(range(10))
    assert [m["i"] for m in direct] == list(range(6))
    assert [m["i"] for m in beside] == list(range(4))


# -- 6: user actors ---------------------------------------------------------------------------


class Relay(Actor):
    """A plain actor stage: one record out per record in."""

    def on_receive(self, message: Any) -> None:
        self.emit({**message, "relay": True})  # type: ignore[attr-defined]


class BatchRelay(StageActor):
    """A user stage that handles its records a batch at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def on_batch(self, messages: list[Any]) -> None:
        assert not any(isinstance(m, Barrier) for m in messages)
        self.batches += 1
        self.emit_many([{**m, "batched": True} for m in messages])


def test_user_actor_stages_pass_barriers_on_after_the_records_before_them(
    make_pipeline: MakePipeline,
) -> None:
    journal = Journal()
    source = AckSource(count=30, every=4, journal=journal)
    p = make_pipeline()
    (
        p.source(source, name="src")
        .then(Relay, name="relay")
        .then(BatchRelay, name="batch")
        .to(OrderSink(journal), name="sink")
    )
    run_until_acked(p, source)
    reports, _ = source.snapshot()
    assert reports == {n: ["sink"] for n in range(1, 9)}
    # The sink sees exactly what the source put out: every record and barrier in place.
    stream = [
        ("row", e[2]["i"]) if e[0] == "row" else ("barrier", e[2])
        for e in journal.events
        if e[0] in ("row", "barrier")
    ]
    expected: list[tuple[str, int]] = []
    for i in range(30):
        expected.append(("row", i))
        if i % 4 == 3 or i == 29:
            expected.append(("barrier", i // 4 + 1))
    assert stream == expected
    assert all(r["relay"] and r["batched"] for r in rows_of(journal.events, "sink"))


class Terminal(Actor):
    """A user actor at the end of the pipeline (no downstream)."""

    def __init__(self, seen: list[Any]) -> None:
        super().__init__()
        self.seen = seen

    def on_receive(self, message: Any) -> None:
        self.seen.append(message)


def test_a_user_actor_at_the_end_reports_barriers(make_pipeline: MakePipeline) -> None:
    seen: list[Any] = []
    source = AckSource(count=9, every=3)
    p = make_pipeline()
    p.source(source, name="src").to(Terminal, name="end", seen=seen)
    run_until_acked(p, source)
    assert source.snapshot() == ({1: ["end"], 2: ["end"], 3: ["end"]}, [1, 2, 3])
    assert [m["i"] for m in seen] == list(range(9))  # records only: no Barrier reaches it


# -- 7: what cannot sit behind an acknowledging source ----------------------------------------


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("conflate", {"interval": 0.1}),
        ("batch", {"size": 10}),
        ("throttle", {"rate": 100.0}),
    ],
)
def test_an_operator_that_holds_records_is_refused(
    make_pipeline: MakePipeline, kind: str, params: dict[str, Any]
) -> None:
    p = make_pipeline()
    p.source(AckSource, name="src").then(lambda r: r, name="map").then(
        kind, name="held", **params
    ).to(ignore, name="sink")
    (problem,) = p.ack_problems()
    assert (problem.stage, problem.param) == ("held", None)
    assert problem.text == (
        f"stage 'held' ({kind}) behind the AckSource source 'src', which acknowledges what "
        "it read, holds records and cannot say when they have left it, so nothing could be "
        "acknowledged safely; put it after a sink of its own pipeline instead"
    )
    with pytest.raises(ValueError, match=r"^pipeline '.*': stage 'held' \(" + kind) as info:
        p.start()
    assert problem.text in str(info.value)
    assert p.system is None  # refused before anything started


def test_a_source_given_as_an_instance_is_named_by_its_class(
    make_pipeline: MakePipeline,
) -> None:
    p = make_pipeline()
    p.source(AckSource(), name="src").then("batch", name="held").to(ignore)
    (problem,) = p.ack_problems()
    assert "behind the AckSource source 'src'" in problem.text
    assert " object at 0x" not in problem.text


def test_a_window_on_processing_time_is_refused(make_pipeline: MakePipeline) -> None:
    p = make_pipeline()
    src = p.source(AckSource, name="src")
    src.then("tumbling_window", name="win", size=1.0).to(ignore, name="sink")
    src.then("sliding_window", name="slide", size=2.0, slide=1.0, time_field="t").to(ignore)
    (problem,) = p.ack_problems()
    assert (problem.stage, problem.param) == ("win", "time_field")
    assert "stage 'win' (tumbling_window) behind the AckSource source 'src'" in problem.text
    assert "must use event time: set time_field" in problem.text
    with pytest.raises(ValueError, match="set time_field"):
        p.start()


def test_a_mailbox_that_may_drop_is_refused(make_pipeline: MakePipeline) -> None:
    p = make_pipeline()
    src = p.source(AckSource, name="src")
    src.then(lambda r: r, name="oldest", overflow="drop_oldest", capacity=10).to(ignore)
    src.to(ignore, name="timed", put_timeout=0.5)
    src.to(ignore, name="fine", overflow="backpressure")
    problems = p.ack_problems()
    assert sorted((x.stage, x.param) for x in problems) == [
        ("oldest", "overflow"),
        ("timed", "put_timeout"),
    ]
    texts = {x.stage: x.text for x in problems}
    assert texts["oldest"] == (
        "stage 'oldest' behind the AckSource source 'src', which acknowledges what it read, "
        "may drop records (overflow 'drop_oldest'): a dropped record would be acknowledged "
        "unprocessed; use overflow 'backpressure'"
    )
    assert texts["timed"] == (
        "stage 'timed' behind the AckSource source 'src', which acknowledges what it read, "
        "gives up on a full mailbox after 0.5 s and drops the record; leave put_timeout unset"
    )
    with pytest.raises(ValueError) as info:
        p.start()
    assert texts["oldest"] in str(info.value) and texts["timed"] in str(info.value)


def test_the_source_checks_the_longest_hold_downstream(make_pipeline: MakePipeline) -> None:
    source = AckSource(max_hold=3.0)
    p = make_pipeline()
    src = p.source(source, name="src")
    src.then("tumbling_window", size=2.0, time_field="t", allowed_lateness=0.5).to(ignore)
    src.then("sliding_window", size=3.5, slide=1.0, time_field="t").then(
        "tumbling_window", size=1.0, time_field="t"
    ).to(ignore)
    (problem,) = p.ack_problems()
    assert (problem.stage, problem.param) == ("src", "max_hold")
    assert "(3.5 s)" in problem.text
    assert source.holds_asked == [3.5]
    assert hold_seconds(TumblingWindow(2.0, time_field="t", allowed_lateness=0.5)) == 2.5
    assert hold_seconds(SlidingWindow(3.5, 1.0, time_field="t")) == 3.5
    with pytest.raises(ValueError, match=r"max_hold \(3 s\) is shorter"):
        p.start()


def test_the_hold_fits_and_nothing_is_asked_without_a_window(make_pipeline: MakePipeline) -> None:
    fits = AckSource(max_hold=3.0)
    p = make_pipeline()
    p.source(fits, name="src").then(
        "tumbling_window", size=2.0, time_field="t", allowed_lateness=0.5
    ).to(ignore)
    assert p.ack_problems() == []
    assert fits.holds_asked == [2.5]
    plain = AckSource(max_hold=0.0)
    q = make_pipeline()
    q.source(plain, name="src").then(lambda r: r).to(ignore)
    assert q.ack_problems() == []
    assert plain.holds_asked == []  # nothing holds a record: nothing to check


def test_a_pipeline_without_an_acknowledging_source_is_unaffected(
    make_pipeline: MakePipeline,
) -> None:
    journal = Journal()
    source = AckSource(count=8, every=4, acks=False, journal=journal)
    p = make_pipeline()
    (
        p.source(source, name="src", overflow="drop_oldest", capacity=100)
        .then("conflate", name="conflate", interval=0.01, key="i")
        .then("tumbling_window", name="win", size=0.05)  # processing time
        .to(OrderSink(journal), name="sink", put_timeout=1.0)
    )
    assert p.ack_problems() == []
    assert plan({s.name: s for s in p.stages}, p.components(), p.outputs) == (set(), {})
    p.run(duration=WAIT)
    assert source.paths == 0
    rows = rows_of(journal.events, "sink")
    assert sum(r["count"] for r in rows) == 8  # the drain flushed the open window
    assert not any(e[0] in ("barrier", "done") for e in journal.events)


def test_only_the_stages_behind_the_acknowledging_source_are_checked(
    make_pipeline: MakePipeline,
) -> None:
    p = make_pipeline()
    p.source(AckSource(acks=False), name="plain").then("batch", name="batched").to(ignore)
    p.source(AckSource(), name="acking").then(lambda r: r, name="map").to(ignore, name="sink")
    assert p.ack_problems() == []
    carrying, paths = plan({s.name: s for s in p.stages}, p.components(), p.outputs)
    assert (carrying, paths) == ({"acking", "map", "sink"}, {"acking": 1})


# -- 8: definitions ---------------------------------------------------------------------------

ACK_SOURCE = "tests.pipelines.test_acks:AckSource"


def definition(source: str, stage: str) -> str:
    """A source, one stage and a stdout sink, with the source's and the stage's lines."""
    return f"""\
[pipeline]
name = "acks"

[[sources]]
name = "in"
{source}

[[stages]]
name = "w"
from = "in"
{stage}

[[sinks]]
name = "out"
kind = "stdout"
from = "w"
"""


def line_of(text: str, needle: str) -> int:
    """The 1-based line of ``text`` that holds ``needle`` (the last one, for a header)."""
    return max(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def errors_of(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(DefinitionError) as info:
        load_definition(text)
    return [(e.path, e.line, e.message) for e in info.value.errors]


def test_a_definition_with_a_window_on_processing_time_is_refused_at_the_stage() -> None:
    text = definition(
        f'kind = "{ACK_SOURCE}"\ncount = 5',
        'kind = "tumbling_window"\nsize = 1.0\naggregations = "count"',
    )
    ((path, line, message),) = errors_of(text)
    assert (path, line) == ("stages[0]", line_of(text, "[[stages]]"))
    assert message.startswith("stage 'w' (tumbling_window) behind the AckSource source 'in'")
    assert "set time_field" in message


def test_a_definition_with_a_holding_operator_names_it() -> None:
    text = definition(f'kind = "{ACK_SOURCE}"', 'kind = "batch"\nsize = 10')
    ((path, line, message),) = errors_of(text)
    assert (path, line) == ("stages[0]", line_of(text, "[[stages]]"))
    assert "(batch)" in message and "holds records" in message


def test_a_definition_whose_hold_is_too_long_names_the_source_parameter() -> None:
    text = definition(
        f'kind = "{ACK_SOURCE}"\nmax_hold = 1.0',
        'kind = "tumbling_window"\nsize = 2.0\ntime_field = "t"',
    )
    ((path, line, message),) = errors_of(text)
    assert (path, line) == ("sources[0].max_hold", line_of(text, "max_hold"))
    assert message == (
        "ack source: max_hold (1 s) is shorter than the longest a record waits downstream (2 s)"
    )


def test_a_definition_with_a_nats_source_and_a_short_ack_wait() -> None:
    nats = 'kind = "nats"\nurl = "nats://127.0.0.1:1"\nstream = "s"\ndurable = "d"\n'
    text = definition(
        nats + "ack_wait = 2.0",
        'kind = "tumbling_window"\nsize = 5.0\ntime_field = "t"',
    )
    ((path, line, message),) = errors_of(text)
    assert (path, line) == ("sources[0].ack_wait", line_of(text, "ack_wait"))
    assert message.startswith("nats source: ack_wait (2 s) must exceed the longest a record")
    assert "5.4 s in all" in message
    text = definition(nats + "ack_wait = 30.0", 'kind = "tumbling_window"\nsize = 5.0')
    ((path, line, message),) = errors_of(text)
    assert (path, line) == ("stages[0]", line_of(text, "[[stages]]"))
    assert "behind the nats source 'in'" in message and "set time_field" in message
    ok = definition(
        nats + "ack_wait = 30.0", 'kind = "tumbling_window"\nsize = 5.0\ntime_field = "t"'
    )
    assert load_definition(ok).ack_problems() == []


def test_a_definition_with_a_dropping_mailbox_names_the_option() -> None:
    text = definition(
        f'kind = "{ACK_SOURCE}"',
        'kind = "map"\nfn = "builtins:dict"\noverflow = "drop_newest"\ncapacity = 10',
    )
    ((path, line, message),) = errors_of(text)
    assert "may drop records (overflow 'drop_newest')" in message
    assert (path, line) == ("stages[0].overflow", line_of(text, "overflow ="))


# -- 9: counters ------------------------------------------------------------------------------


def test_record_counters_leave_barriers_out(make_pipeline: MakePipeline) -> None:
    source = AckSource(count=20, every=3)
    p = make_pipeline()
    (
        p.source(source, name="src")
        .then(lambda r: r, name="map")
        .then("filter", name="evens", predicate=lambda r: r["i"] % 2 == 0)
        .to(journal_fn(Journal(), "sink"), name="sink")
    )
    run_until_acked(p, source)
    stats = p.stats()
    assert [stats["src"][c] for c in ("received", "processed", "emitted")] == [20, 20, 20]
    assert [stats["map"][c] for c in ("received", "processed", "emitted")] == [20, 20, 20]
    assert [stats["evens"][c] for c in ("received", "processed", "emitted")] == [20, 20, 10]
    assert [stats["sink"][c] for c in ("received", "processed", "failed")] == [10, 10, 0]
    assert stats["sink"]["sink_calls"] == 10


def test_a_user_actor_stage_counts_records_not_barriers(make_pipeline: MakePipeline) -> None:
    source = AckSource(count=20, every=3)
    p = make_pipeline()
    p.source(source, name="src").then(Relay, name="relay").to(ignore, name="sink")
    run_until_acked(p, source)
    stats = p.stats()["relay"]
    assert (stats["received"], stats["processed"], stats["emitted"]) == (20, 20, 20)
