"""Ask round-trip latency, pinned: sequential asks to an echo actor; actorwire vs raw pykka.

Two placements, each measured in child processes (``python -m bench.latency ASKER_CPU
ACTOR_CPU ...``) so that CPU affinity never leaks into the bench process:

``same_cpu``
    The asking thread and every actor-side thread on the first CPU we may use.
``different_cpus``
    The asking thread on the first CPU, the actor side on the second (skipped on a
    machine with one CPU).

The asking thread pins itself with ``os.sched_setaffinity(0, ...)`` (on Linux, 0 is the
calling thread). The raw pykka echo pins its own thread in ``on_start``. An actorwire
actor may run on any worker of a shared pool (and a dispatcher may run ``on_start`` on
any thread, the spawner's included), and threads inherit the affinity of the thread that
starts them; so every thread of the child but the asker (``/proc/self/task/*``) is pinned
to the actor CPU, and the asker to its own again, after the spawns, after the warm-up and
before every block of timed asks. Both echo actors note the OS thread ids that handled an
ask; the row reports whether all of them, and the asker, were where asked at the end.

Within a child both echo actors live for the whole run and the sides take turns every
``block`` round trips, the order flipping every round (as before pinning). Each run is a
fresh child; the placements alternate run by run.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pykka
from actorwire.actors import Actor, ActorSystem

from ._harness import BenchError, Config, environment, median, percentile, progress

ROOT = Path(__file__).resolve().parent.parent
ASK_TIMEOUT = 5.0
SIDES = ("actorwire", "pykka")


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


# -- the child: one pinned run ---------------------------------------------------------------


class PykkaEcho(pykka.ThreadingActor):
    def __init__(self, cpu: int, handlers: set[int]) -> None:
        super().__init__()
        self.cpu = cpu
        self.handlers = handlers

    def on_start(self) -> None:
        os.sched_setaffinity(0, {self.cpu})

    def on_receive(self, message: Any) -> Any:
        self.handlers.add(threading.get_native_id())
        return message


class AwEcho(Actor):
    """No pinning in ``on_start``: a dispatcher may run it on any thread, even the
    spawner's; ``pin`` sweeps every thread of the process instead."""

    def __init__(self, handlers: set[int]) -> None:
        super().__init__()
        self.handlers = handlers

    def on_receive(self, message: Any) -> Any:
        self.handlers.add(threading.get_native_id())
        return message


def pin(asker: int, asker_cpu: int, actor_cpu: int) -> int:
    """Pin the asking thread (``asker``, a native id; the caller) to ``asker_cpu`` and every
    other thread of this process to ``actor_cpu``; return how many others were pinned."""
    os.sched_setaffinity(0, {asker_cpu})
    pinned = 0
    for entry in os.listdir("/proc/self/task"):
        tid = int(entry)
        if tid == asker:
            continue
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(tid, {actor_cpu})
            pinned += 1
    return pinned


def _timed(call: Callable[[int], Any], count: int, out: list[int]) -> None:
    clock = time.perf_counter_ns
    append = out.append
    for i in range(count):
        start = clock()
        call(i)
        append(clock() - start)


def _affinity(tid: int) -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(tid))
    except ProcessLookupError:
        return None


def child(asker_cpu: int, actor_cpu: int, n: int, warmup: int, block: int) -> dict[str, Any]:
    """One run: both echo actors, asked in alternating blocks, everything pinned."""
    asker = threading.get_native_id()
    pin(asker, asker_cpu, actor_cpu)
    handlers: dict[str, set[int]] = {side: set() for side in SIDES}
    try:
        with ActorSystem("bench-ask") as system:
            echo = system.spawn(AwEcho, handlers["actorwire"], name="echo")
            calls: dict[str, Callable[[int], Any]] = {
                "actorwire": partial(echo.ask, timeout=ASK_TIMEOUT),
                "pykka": partial(
                    PykkaEcho.start(actor_cpu, handlers["pykka"]).ask, timeout=ASK_TIMEOUT
                ),
            }
            pin(asker, asker_cpu, actor_cpu)
            for side, call in calls.items():
                _timed(call, warmup, [])
                if call(-1) != -1:
                    raise BenchError(f"the {side} echo actor answered wrongly")
            samples: dict[str, list[int]] = {side: [] for side in SIDES}
            pinned = 0
            done = 0
            round_no = 0
            while done < n:
                count = min(block, n - done)
                for side in SIDES if round_no % 2 == 0 else SIDES[::-1]:
                    # Threads the runtime started since (say, a new pool worker) get pinned
                    # too; outside the timing.
                    pinned = pin(asker, asker_cpu, actor_cpu)
                    _timed(calls[side], count, samples[side])
                done += count
                round_no += 1
            handler_cpus = {
                side: {tid: _affinity(tid) for tid in sorted(handlers[side])} for side in SIDES
            }
            asker_cpus = sorted(os.sched_getaffinity(0))
    finally:
        pykka.ActorRegistry.stop_all()
    pinned_ok = asker_cpus == [asker_cpu] and all(
        cpus in (None, [actor_cpu]) and tid != asker
        for side in SIDES
        for tid, cpus in handler_cpus[side].items()
    )
    return {
        **{side: asdict(Latency.of(samples[side])) for side in SIDES},
        "pinning": {
            "asker_cpus": asker_cpus,
            "handler_thread_cpus": {
                side: {str(tid): cpus for tid, cpus in handler_cpus[side].items()} for side in SIDES
            },
            "threads_pinned_to_actor_cpu": pinned,
            "ok": pinned_ok,
        },
    }


# -- the parent ------------------------------------------------------------------------------


def placements() -> dict[str, tuple[int, int] | None]:
    """Placement name -> (asker CPU, actor CPU), or None when it cannot be arranged."""
    cpus = sorted(os.sched_getaffinity(0))
    return {
        "same_cpu": (cpus[0], cpus[0]),
        "different_cpus": (cpus[0], cpus[1]) if len(cpus) > 1 else None,
    }


def pinned_run(cpus: tuple[int, int], cfg: Config) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.latency", *map(str, cpus)]
    argv += [str(cfg.ask_n), str(cfg.ask_warmup), str(cfg.ask_block)]
    try:
        proc = subprocess.run(
            argv, cwd=ROOT, stdout=subprocess.PIPE, timeout=cfg.timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(
            f"an ask_latency child (CPUs {cpus}) did not finish in {cfg.timeout:g} s"
        ) from None
    if proc.returncode:
        raise BenchError(f"an ask_latency child (CPUs {cpus}) exited with {proc.returncode}")
    result: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


def _placement_summary(cpus: tuple[int, int], runs: list[dict[str, Any]]) -> dict[str, Any]:
    aw = [Latency(**r["actorwire"]) for r in runs]
    base = [Latency(**r["pykka"]) for r in runs]
    fig = {
        f"{name}_{stat}_us": round(median([getattr(r, stat) for r in side]), 1)
        for name, side in (("actorwire", aw), ("baseline", base))
        for stat in ("p50", "p99", "mean")
    }
    p50_over = fig["actorwire_p50_us"] / fig["baseline_p50_us"]
    p99_over = fig["actorwire_p99_us"] / fig["baseline_p99_us"]
    return {
        "asker_cpu": cpus[0],
        "actor_cpu": cpus[1],
        **fig,
        "p50_over_baseline": round(p50_over, 3),
        "p99_over_baseline": round(p99_over, 3),
        "met": p50_over <= 1.0 and p99_over <= 1.0,
        "pinning_ok": all(r["pinning"]["ok"] for r in runs),
        "actorwire_runs_p50_us": [round(r.p50, 1) for r in aw],
        "baseline_runs_p50_us": [round(r.p50, 1) for r in base],
        "actorwire_runs_p99_us": [round(r.p99, 1) for r in aw],
        "baseline_runs_p99_us": [round(r.p99, 1) for r in base],
        "paired_p99_ratios": [round(a.p99 / b.p99, 3) for a, b in zip(aw, base, strict=True)],
        "actorwire_max_us": round(max(r.max for r in aw), 1),
        "baseline_max_us": round(max(r.max for r in base), 1),
        "actorwire_handler_threads": max(
            len(r["pinning"]["handler_thread_cpus"]["actorwire"]) for r in runs
        ),
        "threads_pinned_to_actor_cpu": max(
            r["pinning"]["threads_pinned_to_actor_cpu"] for r in runs
        ),
    }


def ask_latency(cfg: Config) -> list[dict[str, Any]]:
    places = placements()
    todo = [(name, cpus) for name, cpus in places.items() if cpus is not None]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in todo}
    for r in range(cfg.runs):
        for name, cpus in todo if r % 2 == 0 else todo[::-1]:
            result = pinned_run(cpus, cfg)
            runs[name].append(result)
            aw, base = Latency(**result["actorwire"]), Latency(**result["pykka"])
            progress(
                f"ask_latency run {r + 1}/{cfg.runs} {name} (asker CPU {cpus[0]}, actor CPU "
                f"{cpus[1]}): actorwire {_describe(aw)} | pykka {_describe(base)}"
                + ("" if result["pinning"]["ok"] else " | PINNING NOT AS ASKED")
            )
    summaries: dict[str, dict[str, Any]] = {}
    for name, cpus in places.items():
        if cpus is None:
            summaries[name] = {"skipped": "only one CPU is available to this process"}
        else:
            summaries[name] = _placement_summary(cpus, runs[name])
    measured = [s for s in summaries.values() if "skipped" not in s]
    same = summaries["same_cpu"]
    worst = max(max(s["p50_over_baseline"], s["p99_over_baseline"]) for s in measured)
    row: dict[str, Any] = {
        "bench": "ask_latency",
        "unit": "us (p99 round trip, asker and actor on the same CPU)",
        "actorwire": same["actorwire_p99_us"],
        "baseline": same["baseline_p99_us"],
        "ratio": round(worst, 3),
        "ratio_meaning": "the worst actorwire / raw pykka latency ratio over p50 and p99 in "
        "both placements (lower is better; the target means ratio <= 1.0)",
        "target": "actorwire p50 and p99 <= raw pykka p50 and p99, with asker and actor on "
        "the same CPU and on different CPUs",
        "meets_target": all(s["met"] for s in measured),
        **summaries,
        "runs": cfg.runs,
        "n": cfg.ask_n,
        "warmup": cfg.ask_warmup,
        "variant": f"actorwire Address.ask(i, timeout={ASK_TIMEOUT}) to an on_receive echo",
        "baseline_impl": f"pykka ActorRef.ask(i, timeout={ASK_TIMEOUT}) to a ThreadingActor echo",
        "pinning": "the asking thread pins itself; the pykka echo pins its thread in "
        "on_start; every other thread of the child process is pinned to the actor CPU (and "
        "the asker to its CPU again) after the spawns, after the warm-up and before every "
        "block (threads started later included)",
        "statistics": "per run: nearest-rank p50/p99 and mean of n sequential round trips "
        "per side timed with perf_counter_ns; reported: median over runs",
        "interleaving": f"a fresh child process per run and placement, placements "
        f"alternating; both echo actors alive for the whole run; sides alternate every "
        f"{cfg.ask_block} asks, order flipping each round",
        "env": environment(),
    }
    return [row]


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(
            f"usage: python -m bench.latency ASKER_CPU ACTOR_CPU N WARMUP BLOCK; got {argv}",
            file=sys.stderr,
        )
        return 2
    from actorwire.actors import configure_logging

    configure_logging(level="warning", stream=sys.stderr)
    result = child(*map(int, argv))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
