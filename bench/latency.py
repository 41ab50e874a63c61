"""Ask round-trip latency: sequential asks to an echo actor; actorwire vs raw pykka."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pykka
from actorwire.actors import Actor, ActorSystem

from ._harness import BenchError, Config, environment, median, percentile, progress

REFERENCE_P50_US = 55.0
REFERENCE_P99_US = 87.0
ASK_TIMEOUT = 5.0


@dataclass(frozen=True)
class Latency:
    """Summary of one run of sequential round trips, in microseconds."""

    n: int
    p50: float
    p99: float
    mean: float
    max: float

    @classmethod
    def of(cls, samples_ns: list[int]) -> Latency:
        samples = sorted(samples_ns)
        return cls(
            n=len(samples),
            p50=percentile(samples, 50) / 1000.0,
            p99=percentile(samples, 99) / 1000.0,
            mean=sum(samples) / len(samples) / 1000.0,
            max=samples[-1] / 1000.0,
        )


def _describe(lat: Latency) -> str:
    return f"p50 {lat.p50:.1f}us p99 {lat.p99:.1f}us mean {lat.mean:.1f}us"


class PykkaEcho(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return message


class AwEcho(Actor):
    def on_receive(self, message: Any) -> Any:
        return message


def _timed(call: Callable[[int], Any], count: int, out: list[int]) -> None:
    clock = time.perf_counter_ns
    append = out.append
    for i in range(count):
        start = clock()
        call(i)
        append(clock() - start)


def paired_run(n: int, warmup: int, block: int) -> tuple[Latency, Latency]:
    """One run: fresh echo actors on both sides, asked in alternating blocks.

    Both actors live for the whole run (an idle actor thread blocked on its queue costs
    the other side nothing), and the sides take turns every ``block`` round trips, the
    order flipping every round, so a burst of machine noise lands on both alike.
    Returns (actorwire, pykka).
    """
    try:
        with ActorSystem("bench-ask") as system:
            calls: dict[str, Callable[[int], Any]] = {
                "actorwire": partial(system.spawn(AwEcho, name="echo").ask, timeout=ASK_TIMEOUT),
                "pykka": PykkaEcho.start().ask,
            }
            samples: dict[str, list[int]] = {name: [] for name in calls}
            for name, call in calls.items():
                _timed(call, warmup, [])
                if call(-1) != -1:
                    raise BenchError(f"the {name} echo actor answered wrongly")
            names = list(calls)
            done = 0
            round_no = 0
            while done < n:
                count = min(block, n - done)
                for name in names if round_no % 2 == 0 else names[::-1]:
                    _timed(calls[name], count, samples[name])
                done += count
                round_no += 1
            return Latency.of(samples["actorwire"]), Latency.of(samples["pykka"])
    finally:
        pykka.ActorRegistry.stop_all()


def ask_latency(cfg: Config) -> list[dict[str, Any]]:
    n, warmup, block = cfg.ask_n, cfg.ask_warmup, cfg.ask_block
    aw: list[Latency] = []
    base: list[Latency] = []
    for r in range(cfg.runs):
        gc.collect()
        aw_lat, base_lat = paired_run(n, warmup, block)
        aw.append(aw_lat)
        base.append(base_lat)
        progress(
            f"ask_latency run {r + 1}/{cfg.runs}: actorwire {_describe(aw_lat)} | "
            f"pykka {_describe(base_lat)}"
        )
    aw_p99 = median([r.p99 for r in aw])
    base_p99 = median([r.p99 for r in base])
    row: dict[str, Any] = {
        "bench": "ask_latency",
        "unit": "us (p99 round trip)",
        "actorwire": round(aw_p99, 1),
        "baseline": round(base_p99, 1),
        "ratio": round(base_p99 / aw_p99, 3),
        "ratio_meaning": "raw pykka p99 / actorwire p99 (higher is better; the target "
        "p99 <= 1.5x raw means ratio >= 0.667)",
        "target": "actorwire p99 <= 1.5x raw pykka p99",
        "meets_target": aw_p99 <= 1.5 * base_p99,
        "runs": len(aw),
        "n": n,
        "warmup": warmup,
        "p99_over_baseline": round(aw_p99 / base_p99, 3),
        "actorwire_p50_us": round(median([r.p50 for r in aw]), 1),
        "actorwire_p99_us": round(aw_p99, 1),
        "actorwire_mean_us": round(median([r.mean for r in aw]), 1),
        "baseline_p50_us": round(median([r.p50 for r in base]), 1),
        "baseline_p99_us": round(base_p99, 1),
        "baseline_mean_us": round(median([r.mean for r in base]), 1),
        "variant": f"actorwire Address.ask(i, timeout={ASK_TIMEOUT}) to an on_receive echo",
        "baseline_impl": "pykka ActorRef.ask(i) (blocking) to a ThreadingActor echo",
        "statistics": "per run: nearest-rank p50/p99 and mean of n sequential round trips "
        "per side timed with perf_counter_ns; reported: median over runs",
        "interleaving": f"both echo actors alive for the whole run; sides alternate every "
        f"{block} asks, order flipping each round",
        "reference_baseline_us": {"p50": REFERENCE_P50_US, "p99": REFERENCE_P99_US},
        "actorwire_runs_p99_us": [round(r.p99, 1) for r in aw],
        "baseline_runs_p99_us": [round(r.p99, 1) for r in base],
        "paired_p99_ratios": [round(a.p99 / b.p99, 3) for a, b in zip(aw, base, strict=True)],
        "actorwire_runs_p50_us": [round(r.p50, 1) for r in aw],
        "baseline_runs_p50_us": [round(r.p50, 1) for r in base],
        "actorwire_max_us": round(max(r.max for r in aw), 1),
        "baseline_max_us": round(max(r.max for r in base), 1),
        "env": environment(),
    }
    return [row]
