"""Pipelines: records per second through a five-stage bar pipeline, in one process.

``pipeline_bars``
    actorwire: ``Pipeline`` with ``synthetic_prices`` (N records, unpaced, seeded) ->
    ``map`` (mid price) -> ``key_by("symbol")`` -> ``tumbling_window`` (1 s of event time,
    ``ohlc``) -> ``callback`` (counts bars). Timed from ``run()`` until it returns: every
    source record has gone through and the drain has flushed the last bars to the
    callback. Baseline, measured in the same run: a raw pykka chain of the same length
    (producer actor -> map actor -> key_by actor -> window actor -> callback actor), each
    a ``ThreadingActor`` doing the same per-record work with the same operator objects in
    ``on_receive`` and forwarding every record with ``ActorRef.tell``; timed from the
    producer's first record until the callback actor has the flushed bars. Both generate
    the records inside the pipeline with the same seeded ``SyntheticPrices``. Target:
    actorwire >= 2x the raw chain.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import pykka

from ._harness import BenchError, Config, environment, interleave, median

TARGET_FACTOR = 2.0
SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META", "TSLA", "NFLX")
GEN_BATCH = 1000


def mid(record: dict[str, Any]) -> dict[str, Any]:
    """The map stage's work: add the mid price."""
    record["mid"] = (record["bid"] + record["ask"]) / 2
    return record


@dataclass(frozen=True)
class Run:
    n: int
    seconds: float
    bars: int

    @property
    def rate(self) -> float:
        return self.n / self.seconds


def _describe(run: Run) -> str:
    return f"{run.rate:,.0f} rec/s ({run.seconds:.3f}s, {run.bars} bars)"


def _operators() -> tuple[Any, Any]:
    from actorwire.pipelines.operators import make_operator

    key_by = make_operator("key_by", key="symbol")
    window = make_operator("tumbling_window", size=1.0, aggregations="ohlc", time_field="timestamp")
    return key_by, window


# -- actorwire ------------------------------------------------------------------------------


def actorwire_bars(n: int, timeout: float) -> Run:
    from actorwire.pipelines import Pipeline

    bars = 0

    def count(_bar: Any) -> None:
        nonlocal bars  # the callback sink's actor is the only caller
        bars += 1

    p = Pipeline("bench-bars")
    (
        p.source(
            "synthetic_prices",
            symbols=list(SYMBOLS),
            rate=None,
            limit=n,
            seed=1,
            batch=GEN_BATCH,
            timestamps="derived",
        )
        .then("map", fn=mid)
        .then("key_by", key="symbol")
        .then("tumbling_window", size=1.0, aggregations="ohlc", time_field="timestamp")
        .to("callback", fn=count)
    )
    start = time.perf_counter()
    p.run(drain_timeout=timeout)
    end = time.perf_counter()
    stats = p.stats()
    window = next(s for name, s in stats.items() if "tumbling" in name or "window" in name)
    if window["processed"] != n:
        raise BenchError(f"the window stage processed {window['processed']} of {n} records")
    if bars == 0:
        raise BenchError("the callback saw no bars")
    return Run(n=n, seconds=end - start, bars=bars)


# -- raw pykka ------------------------------------------------------------------------------


class _Producer(pykka.ThreadingActor):
    """Generates the N records in batches and tells them one by one downstream."""

    def __init__(self, n: int, nxt: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self.n = n
        self.tell = nxt.tell

    def on_receive(self, message: Any) -> None:
        from actorwire.pipelines.synthetic import SyntheticPrices

        gen = SyntheticPrices(list(SYMBOLS), seed=1)
        left = self.n
        i = 0
        while left:
            k = min(GEN_BATCH, left)
            now = 1_700_000_000.0 + i / 1000.0
            for record in gen.next_batch(k, now):
                self.tell(record)
            left -= k
            i += k
        self.tell("flush")


class _Apply(pykka.ThreadingActor):
    """Runs one operator per record (``on_record``) and tells each output downstream."""

    def __init__(self, op: Any, nxt: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self.op = op
        self.tell = nxt.tell

    def on_receive(self, message: Any) -> None:
        if message == "flush":
            for out in self.op.flush(0.0):
                self.tell(out)
            self.tell("flush")
            return
        for out in self.op.on_record(message, 0.0):
            self.tell(out)


class _Map(pykka.ThreadingActor):
    def __init__(self, nxt: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self.tell = nxt.tell

    def on_receive(self, message: Any) -> None:
        self.tell(message if message == "flush" else mid(message))


class _Callback(pykka.ThreadingActor):
    def __init__(self, done: threading.Event) -> None:
        super().__init__()
        self.done = done
        self.bars = 0

    def on_receive(self, message: Any) -> Any:
        if message == "count":
            return self.bars
        if message == "flush":
            self.done.set()
            return None
        self.bars += 1
        return None


def pykka_bars(n: int, timeout: float) -> Run:
    key_by, window = _operators()
    done = threading.Event()
    try:
        sink = _Callback.start(done)
        win = _Apply.start(window, sink)
        keyed = _Apply.start(key_by, win)
        mapped = _Map.start(keyed)
        producer = _Producer.start(n, mapped)
        start = time.perf_counter()
        producer.tell("go")
        if not done.wait(timeout):
            raise BenchError(f"the raw pykka chain did not finish {n} records in {timeout}s")
        end = time.perf_counter()
        bars = sink.ask("count")
    finally:
        pykka.ActorRegistry.stop_all()
    return Run(n=n, seconds=end - start, bars=bars)


# -- the benchmark --------------------------------------------------------------------------


def pipeline_bars(cfg: Config) -> list[dict[str, Any]]:
    n = 20_000 if cfg.quick else 200_000
    runs = interleave(
        "pipeline_bars",
        {
            "actorwire": lambda: actorwire_bars(n, cfg.timeout),
            "pykka": lambda: pykka_bars(n, cfg.timeout),
        },
        cfg.runs,
        _describe,
    )
    aw = median([r.rate for r in runs["actorwire"]])
    base = median([r.rate for r in runs["pykka"]])
    ratio = aw / base
    return [
        {
            "bench": "pipeline_bars",
            "unit": "records/s",
            "actorwire": round(aw),
            "baseline": round(base),
            "ratio": round(ratio, 3),
            "ratio_meaning": "actorwire pipeline / raw pykka chain of the same length, "
            "records per second (median of runs; higher is better)",
            "target": f"actorwire >= {TARGET_FACTOR:g}x the raw pykka chain",
            "meets_target": ratio >= TARGET_FACTOR,
            "runs": cfg.runs,
            "n": n,
            "stages": "synthetic_prices -> map -> key_by -> tumbling_window(ohlc) -> callback",
            "baseline_impl": "5 pykka ThreadingActors, one tell per record, same operators",
            "bars": [r.bars for r in runs["actorwire"]],
            "actorwire_runs": [round(r.rate) for r in runs["actorwire"]],
            "baseline_runs": [round(r.rate) for r in runs["pykka"]],
            "env": environment(),
        }
    ]
