"""Throughput: tell into one actor, and a 3-actor forwarding chain; actorwire vs raw pykka.

Every run builds fresh actors, times from the first tell until the last stage has seen
all N messages (it sets a ``threading.Event``), then tears everything down: the
actorwire system is shut down, the pykka actors are stopped with
``pykka.ActorRegistry.stop_all()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka
from actorwire.actors import Actor, ActorSystem, Address

from ._harness import BenchError, Config, environment, interleave, median

REFERENCE_TELL_MSG_S = 182_000
REFERENCE_CHAIN_MSG_S = 60_000


@dataclass(frozen=True)
class Run:
    """One timed run: N messages, seconds until the sink saw them all, producer seconds."""

    n: int
    seconds: float
    send_seconds: float

    @property
    def rate(self) -> float:
        return self.n / self.seconds


def _describe(run: Run) -> str:
    return f"{run.rate:,.0f} msg/s ({run.seconds:.3f}s, producer {run.send_seconds:.3f}s)"


# -- raw pykka -------------------------------------------------------------------------


class PykkaCounter(pykka.ThreadingActor):
    """Counts messages; sets ``done`` at the N-th."""

    def __init__(self, n: int, done: threading.Event) -> None:
        super().__init__()
        self.n = n
        self.done = done
        self.count = 0

    def on_receive(self, message: Any) -> None:
        self.count += 1
        if self.count == self.n:
            self.done.set()


class PykkaForward(pykka.ThreadingActor):
    """Forwards every message to the next actor with ``ref.tell``."""

    def __init__(self, next_ref: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self.next_tell = next_ref.tell

    def on_receive(self, message: Any) -> None:
        self.next_tell(message)


# -- actorwire -------------------------------------------------------------------------


class AwCounter(Actor):
    """Counts messages one at a time in ``on_receive``; sets ``done`` at the N-th."""

    def __init__(self, n: int, done: threading.Event) -> None:
        super().__init__()
        self.n = n
        self.done = done
        self.count = 0

    def on_receive(self, message: Any) -> None:
        self.count += 1
        if self.count == self.n:
            self.done.set()


class AwBatchCounter(AwCounter):
    """Counts a drained batch at once in ``on_batch``."""

    def on_batch(self, messages: list[Any]) -> None:
        self.count += len(messages)
        if self.count >= self.n:
            self.done.set()


class AwForward(Actor):
    """Forwards every message to the next address with ``Address.tell`` (``on_receive``)."""

    def __init__(self, next_address: Address) -> None:
        super().__init__()
        self.next_tell = next_address.tell

    def on_receive(self, message: Any) -> None:
        self.next_tell(message)


class AwBatchForward(AwForward):
    """Forwards each message of a drained batch with ``Address.tell`` (``on_batch``)."""

    def on_batch(self, messages: list[Any]) -> None:
        tell = self.next_tell
        for message in messages:
            tell(message)


# -- one run of each side --------------------------------------------------------------


def _produce(tell: Callable[[Any], None], n: int, done: threading.Event, timeout: float) -> Run:
    start = time.perf_counter()
    for i in range(n):
        tell(i)
    sent = time.perf_counter()
    if not done.wait(timeout):
        raise BenchError(f"the last actor did not see all {n} messages within {timeout}s")
    end = time.perf_counter()
    return Run(n=n, seconds=end - start, send_seconds=sent - start)


def pykka_tell(n: int, timeout: float) -> Run:
    done = threading.Event()
    try:
        ref = PykkaCounter.start(n, done)
        return _produce(ref.tell, n, done, timeout)
    finally:
        pykka.ActorRegistry.stop_all()


def actorwire_tell(n: int, timeout: float, *, batched: bool) -> Run:
    done = threading.Event()
    with ActorSystem("bench-tell") as system:
        address = system.spawn(AwBatchCounter if batched else AwCounter, n, done, name="sink")
        return _produce(address.tell, n, done, timeout)


def pykka_chain(n: int, timeout: float) -> Run:
    done = threading.Event()
    try:
        sink = PykkaCounter.start(n, done)
        middle = PykkaForward.start(sink)
        first = PykkaForward.start(middle)
        return _produce(first.tell, n, done, timeout)
    finally:
        pykka.ActorRegistry.stop_all()


def actorwire_chain(n: int, timeout: float, *, batched: bool) -> Run:
    done = threading.Event()
    counter = AwBatchCounter if batched else AwCounter
    forward = AwBatchForward if batched else AwForward
    with ActorSystem("bench-chain") as system:
        sink = system.spawn(counter, n, done, name="stage3")
        middle = system.spawn(forward, sink, name="stage2")
        first = system.spawn(forward, middle, name="stage1")
        return _produce(first.tell, n, done, timeout)


# -- the benchmarks --------------------------------------------------------------------


def _throughput_row(
    bench: str,
    *,
    aw: list[Run],
    base: list[Run],
    n: int,
    target: str,
    factor: float | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    aw_rate = median([r.rate for r in aw])
    base_rate = median([r.rate for r in base])
    ratio = aw_rate / base_rate
    row: dict[str, Any] = {
        "bench": bench,
        "unit": "msg/s",
        "actorwire": round(aw_rate),
        "baseline": round(base_rate),
        "ratio": round(ratio, 3),
        "ratio_meaning": "actorwire / raw pykka throughput (median of runs; higher is better)",
        "target": target,
        "meets_target": factor is None or ratio >= factor,
        "runs": len(aw),
        "n": n,
    }
    row.update(details)
    row["actorwire_runs_msg_s"] = [round(r.rate) for r in aw]
    row["baseline_runs_msg_s"] = [round(r.rate) for r in base]
    row["paired_ratios"] = [round(a.rate / b.rate, 3) for a, b in zip(aw, base, strict=True)]
    row["actorwire_producer_s"] = round(median([r.send_seconds for r in aw]), 4)
    row["baseline_producer_s"] = round(median([r.send_seconds for r in base]), 4)
    row["env"] = environment()
    return row


def _warm(fns: dict[str, Callable[[], Run]]) -> None:
    for fn in fns.values():
        fn()


def tell_throughput(cfg: Config) -> list[dict[str, Any]]:
    n, timeout = cfg.tell_n, cfg.timeout
    variants: dict[str, Callable[[], Run]] = {
        "pykka": lambda: pykka_tell(n, timeout),
        "actorwire.on_receive": lambda: actorwire_tell(n, timeout, batched=False),
        "actorwire.on_batch": lambda: actorwire_tell(n, timeout, batched=True),
    }
    _warm(
        {
            "pykka": lambda: pykka_tell(n // 10, timeout),
            "aw": lambda: actorwire_tell(n // 10, timeout, batched=False),
            "awb": lambda: actorwire_tell(n // 10, timeout, batched=True),
        }
    )
    res = interleave("tell_throughput", variants, cfg.runs, _describe)
    common = {
        "producer": "main thread, tell(i) for i in range(n), bound method cached",
        "baseline_impl": "pykka.ThreadingActor.on_receive counting; ActorRef.tell",
        "reference_baseline_msg_s": REFERENCE_TELL_MSG_S,
    }
    return [
        _throughput_row(
            "tell_throughput",
            aw=res["actorwire.on_receive"],
            base=res["pykka"],
            n=n,
            target="actorwire (on_receive, per message) >= 1.0x raw pykka",
            factor=1.0,
            details={"variant": "actorwire Actor.on_receive counting; Address.tell", **common},
        ),
        _throughput_row(
            "tell_throughput_on_batch",
            aw=res["actorwire.on_batch"],
            base=res["pykka"],
            n=n,
            target="informational (same target as tell_throughput: >= 1.0x raw pykka)",
            factor=1.0,
            details={
                "variant": "actorwire Actor.on_batch counting len(batch); Address.tell",
                **common,
            },
        ),
    ]


def chain3(cfg: Config) -> list[dict[str, Any]]:
    n, timeout = cfg.chain_n, cfg.timeout
    variants: dict[str, Callable[[], Run]] = {
        "pykka": lambda: pykka_chain(n, timeout),
        "actorwire.on_receive": lambda: actorwire_chain(n, timeout, batched=False),
        "actorwire.on_batch": lambda: actorwire_chain(n, timeout, batched=True),
    }
    _warm(
        {
            "pykka": lambda: pykka_chain(n // 10, timeout),
            "aw": lambda: actorwire_chain(n // 10, timeout, batched=False),
            "awb": lambda: actorwire_chain(n // 10, timeout, batched=True),
        }
    )
    res = interleave("chain3", variants, cfg.runs, _describe)
    common = {
        "producer": "main thread tells n ints to stage 1; stage 3 counts and signals at n",
        "baseline_impl": "3 pykka.ThreadingActors; stages 1-2 forward with ActorRef.tell "
        "in on_receive",
        "reference_baseline_msg_s": REFERENCE_CHAIN_MSG_S,
    }
    return [
        _throughput_row(
            "chain3_on_receive",
            aw=res["actorwire.on_receive"],
            base=res["pykka"],
            n=n,
            target="informational (plain per-message chain; the 2x target is chain3_on_batch)",
            factor=None,
            details={
                "variant": "actorwire plain chain: stages 1-2 forward with Address.tell in "
                "on_receive, stage 3 counts in on_receive",
                **common,
            },
        ),
        _throughput_row(
            "chain3_on_batch",
            aw=res["actorwire.on_batch"],
            base=res["pykka"],
            n=n,
            target="actorwire on_batch chain >= 2.0x raw pykka chain (batch draining)",
            factor=2.0,
            details={
                "variant": "actorwire batch-draining chain: stages 1-2 forward each message "
                "of the drained batch with Address.tell in on_batch, stage 3 counts "
                "len(batch) in on_batch",
                **common,
            },
        ),
    ]
