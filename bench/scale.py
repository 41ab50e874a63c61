"""Scale: N idle actors, then traffic across all of them; actorwire vs raw pykka.

``scale_actors`` prints one row per N (10, 1,000, 10,000, 100,000; ``--quick``: 10, 1,000,
5,000). Each (implementation, N) is measured in its own child process
(``python -m bench.scale IMPL N ...``), so RSS and thread counts are that side's alone and
a hung or too slow side is killed without taking the bench down. Raw pykka
(``ThreadingActor``, one thread per actor) runs only up to 10,000 actors.

In the child, after a warm-up (the system, a publisher actor and one counter actor that
has answered an ask, so lazily started runtime threads already exist):

spawn
    Wall time to spawn N idle counter actors; RSS growth over it / N (``/proc/self/statm``,
    after ``gc.collect()``); ``threading.active_count()`` and the OS thread count
    (``Threads:`` in ``/proc/self/status``).
fan-out
    A publisher actor tells one message to each of the N actors; timed from its first tell
    until the last actor has received its message. Deliveries/s = N / that time.
round robin
    The main thread tells M messages round-robin across the N actors (M a multiple of N);
    timed from the first tell until every actor has processed its share.
shutdown
    ``ActorSystem.shutdown()`` / ``pykka.ActorRegistry.stop_all()``.

Completion is never a sleep: every actor counts, and the one that brings the last count
to its goal records the time and sets a ``threading.Event`` (see ``Board``). Each phase
has a time budget (and the spawn loop a thread cap that keeps a thread-per-actor runtime
from exhausting the machine's pids); a side that runs out reports "did not finish in X s"
with what it got through, instead of hanging.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pykka
from actorwire.actors import Actor, ActorSystem

from ._harness import Config, environment, median, progress

ROOT = Path(__file__).resolve().parent.parent
FULL_NS = (10, 1_000, 10_000, 100_000)
QUICK_NS = (10, 1_000, 5_000)
PYKKA_MAX_N = 10_000
# Messages per round-robin run for actorwire (rounded down to a multiple of N, at least N).
FULL_MSGS, QUICK_MSGS = 200_000, 20_000
# Raw pykka wakes one thread per message: 20,000 messages up to 1,000 actors, one message
# per actor beyond (about 2,500 msg/s across 10,000 threads on 2 cores).
PYKKA_MSGS = 20_000
PHASE_BUDGET_S = {True: 10.0, False: 20.0}  # per phase (spawn, fan-out, round robin)
SHUTDOWN_BUDGET_S = 60.0
STARTUP_GRACE_S = 30.0
SPAWN_CHECK_EVERY = 256
SEND_CHUNK = 5_000  # the producer checks its deadline after every chunk of tells
THREAD_CAP = 15_000
ASK_TIMEOUT = 10.0
# Threads an actorwire process may have beyond its dispatcher's workers: the main thread,
# the I/O loop, the timer service and a few runtime helpers.
FIXED_THREADS = 8
# The pool size: the PoolDispatcher default unless AW_BENCH_WORKERS is set.
AW_WORKERS = os.environ.get("AW_BENCH_WORKERS")
TARGET_SPAWN_N, TARGET_SPAWN_S, TARGET_RSS_BYTES = 100_000, 5.0, 4096
TARGET_RR_N, TARGET_RR_OF_10, TARGET_RR_OVER_PYKKA = 10_000, 0.5, 20.0


# -- measurements of this process -----------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def os_threads() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return threading.active_count()  # pragma: no cover - /proc/self/status has Threads:


def thread_cap() -> int:
    """Spawning stops beyond this many threads: a thread per actor must not use up every
    pid of the machine (``kernel.pid_max`` is often 32,768) or its memory maps."""
    cap = THREAD_CAP
    for path, share in (
        ("/proc/sys/kernel/pid_max", 2),
        ("/proc/sys/kernel/threads-max", 2),
        ("/proc/sys/vm/max_map_count", 4),  # two maps (stack, guard) per thread
    ):
        with contextlib.suppress(OSError, ValueError):
            cap = min(cap, int(Path(path).read_text()) // share)
    return cap


# -- the actors -----------------------------------------------------------------------------


class Board:
    """Shared by the N counting actors: the count each must reach in the current phase.

    The actor whose count reaches ``goal`` calls ``arrive``; the N-th arrival records the
    time and sets ``done``. Phases run one after the other, so ``arm`` never races a count.
    """

    def __init__(self) -> None:
        self.goal = 0
        self.done = threading.Event()
        self.started = 0.0  # the fan-out publisher's first tell
        self.sent = 0.0  # the fan-out publisher's last tell
        self.last = 0.0  # the last arrival
        self._remaining = 0
        self._lock = threading.Lock()

    def arm(self, goal: int, actors: int) -> None:
        self.goal = goal
        self._remaining = actors
        self.done = threading.Event()
        self.started = self.sent = self.last = 0.0

    def arrive(self) -> None:
        with self._lock:
            self._remaining -= 1
            if self._remaining:
                return
        self.last = time.perf_counter()
        self.done.set()


class FanOut:
    """The publisher's order: tell one message to each of ``tells``."""

    __slots__ = ("board", "tells")

    def __init__(self, tells: list[Callable[[Any], None]], board: Board) -> None:
        self.tells = tells
        self.board = board


def _publish(message: FanOut) -> None:
    board = message.board
    board.started = time.perf_counter()
    for tell in message.tells:
        tell(0)
    board.sent = time.perf_counter()


class PykkaCounter(pykka.ThreadingActor):
    def __init__(self, board: Board) -> None:
        super().__init__()
        self.board = board
        self.count = 0

    def on_receive(self, message: Any) -> None:
        self.count += 1
        if self.count == self.board.goal:
            self.board.arrive()


class PykkaPublisher(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> None:
        _publish(message)


class AwCounter(Actor):
    def __init__(self, board: Board) -> None:
        super().__init__()
        self.board = board
        self.count = 0

    def on_receive(self, message: Any) -> None:
        self.count += 1
        if self.count == self.board.goal:
            self.board.arrive()


class AwPublisher(Actor):
    def on_receive(self, message: Any) -> None:
        _publish(message)


# -- the two sides, as seen by the child ------------------------------------------------------


class Side:
    """One implementation in the child: spawn a counter, tell the publisher, shut down."""

    dispatcher = "pykka.ThreadingActor (one thread per actor)"
    workers: int | None = None

    def __init__(self) -> None:
        self.publish: Callable[[Any], None] = PykkaPublisher.start().tell
        warm = PykkaCounter.start(Board())
        warm.ask(None, timeout=ASK_TIMEOUT)

    def spawn(self, board: Board) -> Callable[[Any], None]:
        return PykkaCounter.start(board).tell

    def shutdown(self) -> None:
        pykka.ActorRegistry.stop_all()


class AwSide(Side):
    def __init__(self) -> None:
        import actorwire.actors as aw

        pool = getattr(aw, "PoolDispatcher", None)
        if pool is None:
            self.system = ActorSystem("bench-scale")
            self.dispatcher = "thread per actor (actorwire.actors has no PoolDispatcher)"
        else:
            dispatcher = pool() if AW_WORKERS is None else pool(workers=int(AW_WORKERS))
            self.workers = getattr(dispatcher, "workers", None)
            self.system = ActorSystem("bench-scale", dispatcher=dispatcher)
            self.dispatcher = f"PoolDispatcher(workers={self.workers})"
        self._names = 0
        self.publish = self.system.spawn(AwPublisher, name="publisher").tell
        warm = self.system.spawn(AwCounter, Board(), name="warm")
        warm.ask(None, timeout=ASK_TIMEOUT)

    def spawn(self, board: Board) -> Callable[[Any], None]:
        self._names += 1
        return self.system.spawn(AwCounter, board, name=f"a{self._names}").tell

    def shutdown(self) -> None:
        self.system.shutdown()


# -- the child process --------------------------------------------------------------------------


def _say(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def _did_not_finish(budget: float, what: str) -> str:
    return f"did not finish in {budget:g} s: {what}"


def child(impl: str, n: int, k: int, reps: int, budget: float) -> int:
    """Measure one (implementation, N); one JSON line per phase on stdout."""
    from actorwire.actors import configure_logging

    configure_logging(level="warning", stream=sys.stderr)
    label = f"scale_actors n={n:,} {impl}"
    board = Board()
    side: Side | None = None
    try:
        side = AwSide() if impl == "actorwire" else Side()
        gc.collect()
        rss0, threads0 = rss_bytes(), os_threads()
        _say(
            "setup",
            dispatcher=side.dispatcher,
            workers=side.workers,
            rss_before=rss0,
            os_threads_before=threads0,
        )

        # spawn --------------------------------------------------------------------------
        cap = thread_cap()
        tells: list[Callable[[Any], None]] = []
        error = None
        start = time.perf_counter()
        deadline = start + budget
        try:
            for i in range(n):
                tells.append(side.spawn(board))
                if i % SPAWN_CHECK_EVERY == SPAWN_CHECK_EVERY - 1:
                    if time.perf_counter() > deadline:
                        error = _did_not_finish(budget, f"spawned {len(tells):,} of {n:,}")
                        break
                    if os_threads() > cap:
                        error = (
                            f"stopped at {len(tells):,} of {n:,} actors: over {cap:,} OS "
                            "threads (the thread cap that keeps a thread per actor from "
                            "exhausting the machine's pids)"
                        )
                        break
        except Exception as exc:
            error = f"spawn failed after {len(tells):,} of {n:,} actors: {exc!r}"
        spawn_s = time.perf_counter() - start
        gc.collect()
        spawned = len(tells)
        rss1 = rss_bytes()
        peak = os_threads()
        _say(
            "spawn",
            spawned=spawned,
            seconds=spawn_s,
            rss_after=rss1,
            rss_per_actor=(rss1 - rss0) / spawned if spawned else None,
            threads=threading.active_count(),
            os_threads=peak,
            error=error,
        )
        progress(
            f"{label}: spawned {spawned:,} in {spawn_s:.2f}s" + (f" ({error})" if error else "")
        )
        if error:
            return 0

        # fan-out: one publisher actor tells each actor one message ---------------------------
        goal = 0
        runs: list[dict[str, float]] = []
        deadline = time.perf_counter() + budget
        for _ in range(reps):
            goal += 1
            board.arm(goal, n)
            t0 = time.perf_counter()
            side.publish(FanOut(tells, board))
            if not board.done.wait(max(deadline - t0, 0.0)):
                error = _did_not_finish(budget, f"fan-out run {len(runs) + 1} to {n:,} actors")
                break
            runs.append(
                {"seconds": board.last - board.started, "publisher_s": board.sent - board.started}
            )
            if time.perf_counter() + 2 * (time.perf_counter() - t0) > deadline:
                break  # another run would not fit in the budget
        peak = max(peak, os_threads())
        _say("fanout", runs=runs, os_threads=peak, error=error)
        if runs:
            best = median([r["seconds"] for r in runs])
            progress(f"{label}: fan-out {n / best:,.0f} deliveries/s (last at {best:.3f}s)")
        if error:
            progress(f"{label}: {error}")
            return 0

        # round robin: the main thread tells k messages to each actor, in turn --------------------
        chunks = [tells[i : i + SEND_CHUNK] for i in range(0, n, SEND_CHUNK)]
        msgs = n * k
        rr: list[dict[str, float]] = []
        deadline = time.perf_counter() + budget
        for _ in range(reps):
            goal += k
            board.arm(goal, n)
            sent = 0
            t0 = time.perf_counter()
            for i in range(k):
                for chunk in chunks:
                    for tell in chunk:
                        tell(i)
                    sent += len(chunk)
                    if time.perf_counter() > deadline:
                        break
                else:
                    continue
                break
            t_sent = time.perf_counter()
            if sent < msgs:
                error = _did_not_finish(
                    budget,
                    f"round-robin run {len(rr) + 1} sent {sent:,} of {msgs:,} messages "
                    f"(under {sent / (t_sent - t0):,.0f} msg/s)",
                )
                break
            if not board.done.wait(max(deadline - t_sent, 0.0)):
                error = _did_not_finish(
                    budget, f"round-robin run {len(rr) + 1}: {msgs:,} sent, not all processed"
                )
                break
            rr.append({"seconds": board.last - t0, "producer_s": t_sent - t0})
            if time.perf_counter() + 2 * (time.perf_counter() - t0) > deadline:
                break
        peak = max(peak, os_threads())
        _say("round_robin", msgs=msgs, runs=rr, os_threads=peak, error=error)
        if rr:
            progress(f"{label}: round robin {msgs / median([r['seconds'] for r in rr]):,.0f} msg/s")
        if error:
            progress(f"{label}: {error}")
        return 0
    finally:
        if side is not None:
            t0 = time.perf_counter()
            side.shutdown()
            shutdown_s = time.perf_counter() - t0
            if impl == "actorwire":
                pykka.ActorRegistry.stop_all()  # nothing, unless the runtime registered some
            _say("shutdown", seconds=shutdown_s, os_threads_after=os_threads())
            progress(f"{label}: shutdown {shutdown_s:.2f}s")


# -- the parent: one child per (implementation, N), rows per N -----------------------------------


def _measure(impl: str, n: int, k: int, reps: int, budget: float) -> dict[str, Any]:
    """Run one child; merge its phase lines. A child past its deadline is killed, and what
    it reported so far is kept, with ``error`` saying where it stopped."""
    argv = [sys.executable, "-m", "bench.scale", impl, str(n), str(k), str(reps), repr(budget)]
    limit = 3 * budget + SHUTDOWN_BUDGET_S + STARTUP_GRACE_S
    out: dict[str, Any] = {}
    try:
        proc = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, timeout=limit, check=False)
        stdout, killed, code = proc.stdout, False, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout, killed, code = exc.stdout or b"", True, None
    for line in stdout.decode(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        out[event.pop("event")] = event
    if killed:
        last = list(out)[-1] if out else "nothing"
        out["error"] = (
            f"the child process did not finish in {limit:g} s and was killed "
            f"(its last report: {last})"
        )
    elif code:
        out["error"] = f"the child process exited with code {code}; see stderr"
    return out


def _figures(prefix: str, m: dict[str, Any], n: int) -> dict[str, Any]:
    """Flat ``{prefix}_...`` fields from one child's merged phase lines."""
    setup, spawn = m.get("setup", {}), m.get("spawn", {})
    fan, rr, down = m.get("fanout", {}), m.get("round_robin", {}), m.get("shutdown", {})
    errors = [e for e in (spawn.get("error"), fan.get("error"), rr.get("error")) if e]
    if m.get("error"):
        errors.append(m["error"])
    f: dict[str, Any] = {
        "dispatcher": setup.get("dispatcher"),
        "workers": setup.get("workers"),
        "spawned": spawn.get("spawned"),
        "spawn_s": _r(spawn.get("seconds"), 3),
        "rss_per_actor_bytes": _r(spawn.get("rss_per_actor"), 0),
        "threads": spawn.get("threads"),
        "os_threads": spawn.get("os_threads"),
        "os_threads_peak": rr.get("os_threads") or fan.get("os_threads") or spawn.get("os_threads"),
        "fanout_deliveries_s": None,
        "fanout_last_delivery_s": None,
        "fanout_publisher_s": None,
        "round_robin_msg_s": None,
        "round_robin_msgs": rr.get("msgs"),
        "round_robin_producer_s": None,
        "shutdown_s": _r(down.get("seconds"), 3),
        "os_threads_after_shutdown": down.get("os_threads_after"),
    }
    if fan.get("runs"):
        last = median([r["seconds"] for r in fan["runs"]])
        f["fanout_deliveries_s"] = round(n / last)
        f["fanout_last_delivery_s"] = round(last, 4)
        f["fanout_publisher_s"] = round(median([r["publisher_s"] for r in fan["runs"]]), 4)
        f["fanout_runs_s"] = [round(r["seconds"], 4) for r in fan["runs"]]
    if rr.get("runs"):
        msgs = rr["msgs"]
        f["round_robin_msg_s"] = round(msgs / median([r["seconds"] for r in rr["runs"]]))
        f["round_robin_producer_s"] = round(median([r["producer_s"] for r in rr["runs"]]), 4)
        f["round_robin_runs_msg_s"] = [round(msgs / r["seconds"]) for r in rr["runs"]]
    f["error"] = "; ".join(errors) if errors else None
    return {f"{prefix}_{key}": value for key, value in f.items()}


def _r(value: float | None, digits: int) -> float | None:
    if value is None:
        return None
    return round(value) if digits == 0 else round(value, digits)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def _targets(row: dict[str, Any], rr_10: float | None, quick: bool) -> list[dict[str, Any]]:
    """Every target, in every row; ``met`` is a boolean in the row of the N it is about,
    null elsewhere (the quick run checks the 10,000-actor targets at its largest N)."""
    n = row["n"]
    rr_n = QUICK_NS[-1] if quick else TARGET_RR_N
    spawned = row["actorwire_spawned"] == n
    workers = row["actorwire_workers"]
    peak = row["actorwire_os_threads_peak"]
    aw_rr, base_rr = row["actorwire_round_robin_msg_s"], row["baseline_round_robin_msg_s"]
    spawn_s, rss = row["actorwire_spawn_s"], row["actorwire_rss_per_actor_bytes"]
    at_spawn_n, at_rr_n = n == TARGET_SPAWN_N, n == rr_n
    return [
        {
            "target": f"spawn {TARGET_SPAWN_N:,} actors in <= {TARGET_SPAWN_S:g} s",
            "at_n": TARGET_SPAWN_N,
            "met": (spawned and spawn_s is not None and spawn_s <= TARGET_SPAWN_S)
            if at_spawn_n
            else None,
        },
        {
            "target": f"<= {TARGET_RSS_BYTES:,} bytes RSS per idle actor at "
            f"{TARGET_SPAWN_N:,} actors",
            "at_n": TARGET_SPAWN_N,
            "met": (spawned and rss is not None and rss <= TARGET_RSS_BYTES)
            if at_spawn_n
            else None,
        },
        {
            "target": f"OS threads <= dispatcher workers + {FIXED_THREADS} at "
            f"{TARGET_SPAWN_N:,} actors",
            "at_n": TARGET_SPAWN_N,
            "met": (
                spawned
                and workers is not None
                and peak is not None
                and peak <= workers + FIXED_THREADS
            )
            if at_spawn_n
            else None,
        },
        {
            "target": f"round robin across {rr_n:,} actors >= {TARGET_RR_OF_10:.0%} of the "
            "10-actor figure",
            "at_n": rr_n,
            "met": (aw_rr is not None and rr_10 is not None and aw_rr >= TARGET_RR_OF_10 * rr_10)
            if at_rr_n
            else None,
        },
        {
            "target": f"round robin across {rr_n:,} actors >= {TARGET_RR_OVER_PYKKA:g}x raw "
            f"pykka at {rr_n:,}",
            "at_n": rr_n,
            "met": (aw_rr is not None and base_rr is not None and aw_rr >= 20 * base_rr)
            if at_rr_n
            else None,
        },
    ]


def scale_actors(cfg: Config) -> list[dict[str, Any]]:
    ns = QUICK_NS if cfg.quick else FULL_NS
    budget = PHASE_BUDGET_S[cfg.quick]
    total = QUICK_MSGS if cfg.quick else FULL_MSGS
    rows: list[dict[str, Any]] = []
    for n in ns:
        k = max(1, total // n)
        pykka_k = max(1, min(k, PYKKA_MSGS // n)) if n <= 1_000 else 1
        aw_reps = cfg.runs if n <= 1_000 else min(cfg.runs, 3)
        pykka_reps = cfg.runs if n <= 1_000 else 1
        row: dict[str, Any] = {"bench": "scale_actors", "n": n, "unit": "msg/s (round robin)"}
        progress(f"scale_actors n={n:,}: actorwire ({n * k:,} round-robin messages per run)")
        aw = _figures("actorwire", _measure("actorwire", n, k, aw_reps, budget), n)
        if n <= PYKKA_MAX_N:
            progress(f"scale_actors n={n:,}: raw pykka ({n * pykka_k:,} messages per run)")
            base = _figures("baseline", _measure("pykka", n, pykka_k, pykka_reps, budget), n)
        else:
            base = {key.replace("actorwire_", "baseline_", 1): None for key in aw}
            base["baseline_error"] = (
                f"not measured: raw pykka runs only up to {PYKKA_MAX_N:,} actors "
                "(one OS thread per actor)"
            )
        row["actorwire"] = aw["actorwire_round_robin_msg_s"]
        row["baseline"] = base["baseline_round_robin_msg_s"]
        row["ratio"] = _ratio(row["actorwire"], row["baseline"])
        row["ratio_meaning"] = (
            "actorwire / raw pykka round-robin msg/s (higher is better); ratio_* below: "
            "higher is better for actorwire"
        )
        row.update(aw)
        row.update(base)
        row["ratio_spawn_speed"] = _ratio(base["baseline_spawn_s"], aw["actorwire_spawn_s"])
        row["ratio_rss_per_actor"] = _ratio(
            base["baseline_rss_per_actor_bytes"], aw["actorwire_rss_per_actor_bytes"]
        )
        row["ratio_fanout"] = _ratio(
            aw["actorwire_fanout_deliveries_s"], base["baseline_fanout_deliveries_s"]
        )
        row["ratio_round_robin"] = row["ratio"]
        row["ratio_shutdown_speed"] = _ratio(
            base["baseline_shutdown_s"], aw["actorwire_shutdown_s"]
        )
        row["runs"] = len(aw.get("actorwire_round_robin_runs_msg_s", []))
        row["round_robin_msgs_per_actor"] = {"actorwire": k, "baseline": pykka_k}
        row["phase_budget_s"] = budget
        rows.append(row)

    rr_10 = next((r["actorwire"] for r in rows if r["n"] == 10), None)
    for row in rows:
        targets = _targets(row, rr_10, cfg.quick)
        row["targets"] = targets
        row["target"] = "; ".join(t["target"] for t in targets)
        row["meets_target"] = all(t["met"] for t in targets if t["met"] is not None)
        row["method"] = (
            "a child process per (implementation, N); warm-up: the system, a publisher "
            "and one counter actor that answered an ask; spawn: N counter actors, RSS "
            "growth / N after gc.collect(); fan-out: the publisher actor tells each actor "
            "one message, timed until the last has it; round robin: the main thread tells "
            "msgs_per_actor messages to each actor in turn, timed until every actor has "
            "processed its share (the last sets an Event); figures: median over runs"
        )
        row["env"] = environment()
    return rows


def main(argv: list[str]) -> int:
    if len(argv) != 5 or argv[0] not in ("actorwire", "pykka"):
        print(
            f"usage: python -m bench.scale actorwire|pykka N K REPS BUDGET; got {argv}",
            file=sys.stderr,
        )
        return 2
    impl, n, k, reps, budget = argv
    return child(impl, int(n), int(k), int(reps), float(budget))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
