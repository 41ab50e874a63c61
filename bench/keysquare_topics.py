"""keysquare adapter: many per-topic subscriptions on one session under a steady load.

``keysquare_topics``
    TOPICS subscriptions on one subscriber KeySession, each on its own topic
    (``subscribe("Price", id=...)``, LIVE_ONLY), and a publisher KeySession sending one
    record per topic per second, RATE records/s in total, for SECONDS seconds. Three
    processes, as ``keysquare_publish_to_callback``: the platform
    (``python -m actorwire.pipelines.cli serve keysquare --port 0``), the publisher
    (``python -m bench.keysquare_topics publisher ...``: every TICK it publishes the next
    RATE * TICK topics with one ``publish_many`` holding its ``time.monotonic()`` in each
    record's ``timestamp`` field) and the subscriber session in the bench process, whose
    callbacks take ``time.monotonic()`` (CLOCK_MONOTONIC is system-wide on Linux).
    Reported: delivered fraction (distinct records delivered / records acknowledged, must
    be 1.0) and duplicates, publish -> callback p50/p99 (target p99 <= 20 ms), the
    subscriber process's Python and OS threads and RSS, and the platform's CPU seconds per
    record (utime + stime of its process over the timed phase, from /proc). Baseline,
    same run, same load: one subscription on ``Price`` receiving every record (what the
    per-topic subscriptions cost over a single one). Before ``go`` the publisher sends one
    untimed round on other ids (the platform's warm-up; nobody is subscribed to them).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ._harness import BenchError, Config, interleave, median, percentile, progress
from ._ks_worker import API_KEY, APP, DATA_TYPE, SESSION_TIMEOUT
from .keysquare import (
    STARTUP_TIMEOUT,
    Child,
    _env,
    _release_grpc_aio,
    child,
    platform_process,
    platform_url,
    session,
)

SCHEMA = "markets"
GROUP = "NONE"  # publish_many's default group
TICK = 0.01  # seconds between the publisher's publish_many calls
TARGET_P99_MS = 20.0
MAX_RUNS = 1  # per side: a run is SECONDS of steady load plus setting up TOPICS subscriptions
SUBSCRIBE_THREADS = 8  # subscribe() calls in flight while setting up (untimed)
DRAIN_TIMEOUT = 10.0  # after the publisher's last ack, for the last records to arrive


@dataclass(frozen=True)
class Load:
    topics: int
    rate: int  # records/s in total
    seconds: float
    runs: int


def _load(cfg: Config) -> Load:
    if cfg.quick:
        return Load(topics=1_000, rate=1_000, seconds=3.0, runs=1)
    return Load(topics=5_000, rate=5_000, seconds=10.0, runs=min(cfg.runs, MAX_RUNS))


def topic_ids(topics: int, prefix: str = "T") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(topics)]


# -- /proc readings ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status(pid: int | str, key: str) -> int:
    """A number from /proc/PID/status (VmRSS in kB, Threads)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {key}")


# -- the publisher process -----------------------------------------------------------------


def publisher(topics: int, rate: int, seconds: float) -> int:
    """Child role: warm up, print ``ready``; on ``go`` publish on schedule, then print
    ``sent COUNT LAG_MAX`` (records acknowledged, worst lateness of a tick in seconds)."""
    from actorwire.actors import configure_logging

    configure_logging(level="warning", stream=sys.stderr)
    from actorwire.adapters.keysquare import KeySession

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    per_tick = max(1, round(rate * TICK))
    ticks = round(seconds / TICK)
    ids = topic_ids(topics)
    url = sys.stdin.readline().strip()
    ks = KeySession(APP, API_KEY, url, timeout=SESSION_TIMEOUT)
    try:
        publish_many = ks.publish_many

        def records(chosen: list[str]) -> list[tuple[str, dict[str, Any]]]:
            now = time.monotonic()
            return [(i, {"symbol": i, "bid": 1.0, "timestamp": now}) for i in chosen]

        for start in range(0, topics, per_tick):
            publish_many(DATA_TYPE, records(topic_ids(per_tick, f"W{start}-")), timeout=10)
        say("ready")
        if sys.stdin.readline().strip() != "go":
            return 1
        sent = 0
        lag = 0.0
        began = time.monotonic()
        for k in range(ticks):
            due = began + k * TICK
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)  # the schedule: a tick every TICK seconds
            else:
                lag = max(lag, now - due)
            first = k * per_tick % topics
            chosen = ids[first : first + per_tick]
            ack = publish_many(DATA_TYPE, records(chosen), timeout=10)
            if ack["status"] != "OK":
                return 1
            sent += len(chosen)
        say(f"sent {sent} {lag!r}")
        sys.stdin.read()  # until the bench closes our stdin
    finally:
        ks.stop()
    return 0


def publisher_process(load: Load) -> contextlib.AbstractContextManager[Child]:
    # Found as ``python -m bench`` found this package (the working directory or PYTHONPATH,
    # both inherited).
    argv = [sys.executable, "-m", "bench.keysquare_topics", "publisher"]
    argv += [str(load.topics), str(load.rate), repr(load.seconds)]
    return child("the publisher process", argv)


# -- one run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    subscriptions: int
    published: int
    delivered: int  # callbacks run
    distinct: int  # distinct (id, seq) delivered
    latencies_ms: list[float]  # sorted
    platform_cpu_s: float
    platform_rss_kb: int
    threads_python: int
    threads_os: int
    rss_kb: int
    rss_growth_kb: int
    setup_s: float
    publisher_lag_s: float

    @property
    def fraction(self) -> float:
        return self.distinct / self.published if self.published else 0.0

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50) if self.latencies_ms else float("inf")

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 99) if self.latencies_ms else float("inf")

    @property
    def cpu_us_per_record(self) -> float:
        return self.platform_cpu_s / self.published * 1e6 if self.published else float("inf")


def _describe(run: Run) -> str:
    return (
        f"{run.distinct}/{run.published} delivered, p50 {run.p50:.2f} ms, p99 {run.p99:.2f} ms, "
        f"platform {run.cpu_us_per_record:.1f} us/record, setup {run.setup_s:.1f}s"
    )


def one_run(load: Load, per_topic: bool, timeout: float) -> Run:
    """Fresh platform and publisher processes, a fresh subscriber session here."""
    from actorwire.adapters.keysquare import KeyMessage, SubscriptionType

    lock = threading.Condition()
    latencies: list[float] = []
    seen: set[tuple[str, int]] = set()
    monotonic = time.monotonic

    def on_record(message: KeyMessage) -> None:
        now = monotonic()
        data, header = message["data"], message["header"]
        with lock:
            latencies.append((now - data["timestamp"]) * 1000.0)
            seen.add((header["id"], header["seq"]))
            lock.notify_all()

    rss_before = status("self", "VmRSS")
    with (
        tempfile.TemporaryDirectory(prefix="bench-keysquare-topics-") as tmp,
        publisher_process(load) as pub,
        platform_process(tmp) as plat,
    ):
        url = platform_url(plat)
        pub.send(url)
        with session(url) as subscriber:
            pub.expect("ready", STARTUP_TIMEOUT + timeout)
            t0 = time.monotonic()

            def subscribe(id_: str) -> None:
                subscriber.subscribe(
                    DATA_TYPE,
                    callback=on_record,
                    schema=SCHEMA,
                    source=APP,
                    group=GROUP,
                    id=id_,
                    subscription_type=SubscriptionType.LIVE_ONLY,
                    timeout=SESSION_TIMEOUT,
                )

            if per_topic:
                with ThreadPoolExecutor(SUBSCRIBE_THREADS, thread_name_prefix="subscribe") as pool:
                    list(pool.map(subscribe, topic_ids(load.topics)))
            else:
                subscribe("")
            setup = time.monotonic() - t0
            threads_python = threading.active_count()
            threads_os = status("self", "Threads")
            cpu_start = cpu_seconds(plat.proc.pid)
            pub.send("go")
            rest = pub.expect("sent", load.seconds * 3 + timeout).split()
            published, lag = int(rest[0]), float(rest[1])
            with lock:
                lock.wait_for(lambda: len(seen) >= published, DRAIN_TIMEOUT)
            platform_cpu = cpu_seconds(plat.proc.pid) - cpu_start
            platform_rss = status(plat.proc.pid, "VmRSS")
            rss = status("self", "VmRSS")
            pub.close()  # its session stops: nothing more is published
            with lock:
                delivered, distinct = len(latencies), len(seen)
                samples = sorted(latencies)
    return Run(
        subscriptions=load.topics if per_topic else 1,
        published=published,
        delivered=delivered,
        distinct=distinct,
        latencies_ms=samples,
        platform_cpu_s=platform_cpu,
        platform_rss_kb=platform_rss,
        threads_python=threads_python,
        threads_os=threads_os,
        rss_kb=rss,
        rss_growth_kb=rss - rss_before,
        setup_s=setup,
        publisher_lag_s=lag,
    )


# -- the benchmark -------------------------------------------------------------------------


def keysquare_topics(cfg: Config) -> list[dict[str, Any]]:
    try:
        return _topics(cfg)
    finally:
        _release_grpc_aio()


def _topics(cfg: Config) -> list[dict[str, Any]]:
    load = _load(cfg)
    progress(
        f"keysquare_topics: {load.topics:,} subscriptions, {load.rate:,} records/s for "
        f"{load.seconds:g}s, {load.runs} run(s) per side"
    )
    variants: dict[str, Callable[[], Run]] = {
        "one_subscription": lambda: one_run(load, False, cfg.timeout),
        "per_topic": lambda: one_run(load, True, cfg.timeout),
    }
    res = interleave("keysquare_topics", variants, load.runs, _describe)
    aw, base = res["per_topic"], res["one_subscription"]

    def med(runs: list[Run], figure: Callable[[Run], float], digits: int = 3) -> float:
        return round(median([figure(r) for r in runs]), digits)

    fraction = min(r.fraction for r in aw)
    duplicates = max(r.delivered - r.distinct for r in aw)
    p99 = med(aw, lambda r: r.p99)
    return [
        {
            "bench": "keysquare_topics",
            "unit": "ms (publish -> callback p99)",
            "actorwire": p99,
            "baseline": med(base, lambda r: r.p99),
            "ratio": round(p99 / med(base, lambda r: r.p99), 3),
            "ratio_meaning": f"p99 with {load.topics:,} per-topic subscriptions / p99 with one "
            "subscription receiving every record, same load, same run (lower is better; "
            "informational)",
            "target": f"delivered fraction 1.0 with no duplicates and p99 <= {TARGET_P99_MS:g} ms",
            "meets_target": fraction == 1.0 and duplicates == 0 and p99 <= TARGET_P99_MS,
            "runs": len(aw),
            "subscriptions": load.topics,
            "rate_records_s": load.rate,
            "seconds": load.seconds,
            "published": [r.published for r in aw],
            "delivered_fraction": fraction,
            "duplicates": duplicates,
            "p50_ms": med(aw, lambda r: r.p50),
            "p99_ms": p99,
            "max_ms": med(aw, lambda r: r.latencies_ms[-1] if r.latencies_ms else float("inf")),
            "subscriber_threads_python": max(r.threads_python for r in aw),
            "subscriber_threads_os": max(r.threads_os for r in aw),
            "subscriber_rss_mb": round(max(r.rss_kb for r in aw) / 1024, 1),
            "subscriber_rss_growth_mb": round(max(r.rss_growth_kb for r in aw) / 1024, 1),
            "platform_cpu_us_per_record": med(aw, lambda r: r.cpu_us_per_record, 2),
            "platform_cpu_share": med(aw, lambda r: r.platform_cpu_s / load.seconds),
            "platform_rss_mb": round(max(r.platform_rss_kb for r in aw) / 1024, 1),
            "subscribe_setup_s": med(aw, lambda r: r.setup_s, 2),
            "publisher_lag_max_s": med(aw, lambda r: r.publisher_lag_s, 4),
            "baseline_delivered_fraction": min(r.fraction for r in base),
            "baseline_p50_ms": med(base, lambda r: r.p50),
            "baseline_platform_cpu_us_per_record": med(base, lambda r: r.cpu_us_per_record, 2),
            "baseline_subscriber_threads_python": max(r.threads_python for r in base),
            "baseline_subscriber_rss_mb": round(max(r.rss_kb for r in base) / 1024, 1),
            "topology": "3 processes: publisher process (python -m bench.keysquare_topics "
            "publisher, KeySession) -> platform process (python -m actorwire.pipelines.cli "
            "serve keysquare --port 0) -> subscriber KeySession in the bench process; "
            "loopback 127.0.0.1",
            "variant": f"subscriber: {load.topics:,} subscribe('{DATA_TYPE}', schema="
            f"'{SCHEMA}', source='{APP}', group='{GROUP}', id=T#####, LIVE_ONLY) on one "
            f"session; publisher: every {TICK * 1000:g} ms one publish_many of the next "
            f"{max(1, round(load.rate * TICK))} topics (each call blocks until acked), each "
            "record's timestamp field = the publisher's time.monotonic(); latency = the "
            "callback's time.monotonic() minus that",
            "baseline_impl": f"the same processes and load; one subscribe('{DATA_TYPE}', "
            "LIVE_ONLY) receiving every record",
            "measures": "delivered fraction = distinct (id, seq) seen by callbacks / records "
            "acknowledged to the publisher; platform CPU = utime + stime of the platform "
            "process from go until the last record arrived (or "
            f"{DRAIN_TIMEOUT:g} s after the last ack), per record acknowledged; threads and "
            "RSS of the bench process (the subscriber) with every subscription live",
            "env": _env(),
        }
    ]


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "publisher":
        return publisher(int(argv[1]), int(argv[2]), float(argv[3]))
    print(
        f"usage: python -m bench.keysquare_topics publisher TOPICS RATE SECONDS; got {argv}",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
