"""A trading bot's feed through platform restarts: every acknowledged record in a bar, once.

    platform    ``actorwire serve keysquare --port P --store FILE``, a subprocess
    publisher   a thread with its own KeySession publishing Price records for four symbols
    pipeline    keysquare source (LIVE_ONLY) -> count -> 1 s OHLC bars per symbol -> a list

While the publisher runs, the platform is stopped (SIGTERM, or SIGKILL with ``--kill``) and
started again on the same port, ``--restarts`` times. The publisher counts the volume of
each publish the platform acknowledged; a publish that timed out is sent again with the
same ``publish_id=``, so it is applied once and counted once. After each restart the
pipeline's subscription resumes from the platform's journal. At the end the bars' volume
per symbol must equal the acknowledged volume. A gap (what a resume could not cover) is
logged as a warning and counted in the source's stats (``source_gaps``).

Run:  python examples/restart_bot.py [--restarts 3] [--rate 500] [--kill]
                                     [--store FILE | --no-store] [--seconds-between 1.5]
It ends with ``OK: bar volume equals acknowledged volume ...`` (exit 0) or ``MISMATCH: ...``
(exit 1). Without a store a restarted platform starts a new journal: what the stopped run
had accepted but not yet delivered is lost, reported as a gap. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import functools
import queue
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actorwire.actors import Backoff, configure_logging
from actorwire.adapters.keysquare import KeySession
from actorwire.pipelines import Pipeline

SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN")
APP, API_KEY = "demo", "demo-key"  # the platform's default config
INTERVAL, DEADLINE = 0.2, 1.0  # a ping after 0.2 s of quiet; a dead platform seen in 1 s
BACKOFF = Backoff(min=0.05, max=0.2, factor=2.0, jitter=0.2)  # then a redial within 0.2 s
WAIT = 30.0  # seconds any one condition may take before the run gives up on it
Record = tuple[str, dict[str, Any]]


class Platform:
    """``actorwire serve keysquare`` in a subprocess: any free port, then the same one."""

    def __init__(self, store: str | None, log: Path) -> None:
        self.port, self.store, self.log = 0, store, log  # log: its stderr, appended
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        store = ["--store", self.store] if self.store else []
        command = ["serve", "keysquare", "--port", str(self.port), *store]
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "actorwire.pipelines.cli", *command],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.proc.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=WAIT).strip()
        except queue.Empty:
            line = "(nothing)"
        up = re.fullmatch(r"keysquare platform listening on 127\.0\.0\.1:(\d+)", line)
        if up is None or self.port not in (0, int(up[1])):
            said = self.log.read_text().strip().splitlines()[-3:]
            raise RuntimeError(f"the platform did not start on port {self.port}: {line} {said}")
        self.port = int(up[1])

    def stop(self, kill: bool) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Publisher(threading.Thread):
    """``rate`` Price records a second, in batches of 10 ms, sent alternately with one
    ``publish_many`` and with a ``publish`` per record; counts what was acknowledged."""

    def __init__(self, session: KeySession, rate: float) -> None:
        super().__init__(name="publisher", daemon=True)
        self.session, self.rate = session, rate
        self.records: Counter[str] = Counter()
        self.volume: Counter[str] = Counter()
        self.retries = self.unresolved = 0
        self.error: BaseException | None = None  # what ended it early, if anything
        self.stopping, self.abort = threading.Event(), threading.Event()
        self.lock = threading.Lock()
        self._run_id = uuid.uuid4().hex[:8]  # publish ids unique to this run
        self._rng = random.Random(7)
        self._last = dict.fromkeys(SYMBOLS, 100.0)

    def acked(self) -> int:
        with self.lock:
            return self.records.total()

    def progressed(self, since: int) -> bool:
        return self.acked() > since or not self.is_alive()

    def record(self) -> Record:
        symbol = self._rng.choice(SYMBOLS)
        last = self._last[symbol] = round(self._last[symbol] * (1 + self._rng.gauss(0, 1e-3)), 4)
        data = {"symbol": symbol, "last": last, "bid": last - 0.01, "ask": last + 0.01}
        return symbol, {**data, "volume": self._rng.randint(1, 500), "timestamp": time.time()}

    def run(self) -> None:
        try:
            self.publish()
        except BaseException as exc:  # reported at the end
            self.error = exc

    def publish(self) -> None:
        size = max(1, round(self.rate / 100))
        tick, number = time.monotonic(), 0
        while not self.stopping.is_set():
            batch, pid = [self.record() for _ in range(size)], f"bot-{self._run_id}-{number}"
            if number % 2 == 0:  # the batch in one request
                parts = [(batch, pid)]
            else:  # a request per record
                parts = [([record], f"{pid}/{i}") for i, record in enumerate(batch)]
            for records, publish_id in parts:
                if not self.until_acknowledged(records, publish_id):
                    return
                with self.lock:
                    for symbol, data in records:
                        self.records[symbol] += 1
                        self.volume[symbol] += data["volume"]
            number += 1
            tick = max(tick + size / self.rate, time.monotonic() - 1.0)
            self.stopping.wait(max(0.0, tick - time.monotonic()))  # the pace, not a condition

    def until_acknowledged(self, records: list[Record], pid: str) -> bool:
        """Publish; after a timeout or a lost connection, again with the same id (applied
        once). True once acknowledged; False when given up (then maybe applied, maybe not)."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                if len(records) > 1:
                    self.session.publish_many("Price", records, timeout=3, publish_id=pid)
                else:
                    ((symbol, data),) = records
                    self.session.publish("Price", symbol, data, timeout=3, publish_id=pid)
                return True
            except (TimeoutError, ConnectionError):
                self.retries += 1
                if self.abort.is_set() or time.monotonic() > deadline:
                    self.unresolved += 1
                    return False


class Feed:
    """What reached the pipeline: records per symbol (its ``count`` stage), and the bars."""

    def __init__(self) -> None:
        self.received = Counter(dict.fromkeys(SYMBOLS, 0))  # written by one stage only
        self.bars: list[dict[str, Any]] = []

    def count(self, record: dict[str, Any]) -> None:
        self.received[record["symbol"]] += 1


def build(url: str, feed: Feed) -> Pipeline:
    p = Pipeline("restart-bot")
    prices = p.source(
        "keysquare",
        name="prices",
        url=url,
        application_name=APP,
        api_key=API_KEY,
        data_type="Price",
        subscription_type="LIVE_ONLY",  # subscribed before the first publish: sees each one
        heartbeat_interval=INTERVAL,
        heartbeat_deadline=DEADLINE,
        **{f"backoff_{k}": getattr(BACKOFF, k) for k in ("min", "max", "factor", "jitter")},
    )
    counted = prices.then("tap", name="count", fn=feed.count)
    # Bars by event time: a bar closes once the newest event time is past its end by
    # allowed_lateness (no idle_timeout: the stage's clock does not close bars while the
    # platform is down). The drain at the end flushes the bars still open.
    window = {"size": 1.0, "key": "symbol", "time_field": "timestamp", "allowed_lateness": 10.0}
    bars = counted.then("tumbling_window", name="bars", aggregations=["ohlc"], **window)
    bars.to(feed.bars.append, name="collect")
    return p


def wait_for(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll ``condition`` until it holds (True) or the deadline passes (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)  # a polling interval: the condition is checked again
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restarts", type=int, default=3, help="platform restarts (3)")
    parser.add_argument("--rate", type=float, default=500.0, help="records a second (500)")
    parser.add_argument("--kill", action="store_true", help="SIGKILL instead of SIGTERM")
    parser.add_argument("--store", help="the platform's store (default: in a temporary folder)")
    parser.add_argument("--no-store", action="store_true", help="run the platform without one")
    parser.add_argument("--seconds-between", type=float, default=1.5, help="between restarts")
    args = parser.parse_args(argv)
    if args.store and args.no_store:
        parser.error("--store and --no-store exclude each other")
    if args.restarts < 0 or args.rate <= 0 or args.seconds_between <= 0:
        parser.error("need --restarts >= 0, --rate > 0 and --seconds-between > 0")
    configure_logging("console", "warning")
    with tempfile.TemporaryDirectory(prefix="restart-bot-") as tmp:
        store = None if args.no_store else args.store or str(Path(tmp) / "platform.sqlite")
        platform = Platform(store, Path(tmp) / "platform.log")
        try:
            return run(args, platform)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            return 130
        except RuntimeError as exc:  # the platform or the pipeline did not start
            print(f"MISMATCH: nothing checked: {exc}", flush=True)
            return 1
        finally:
            platform.stop(kill=True)


def run(args: argparse.Namespace, platform: Platform) -> int:
    platform.start()
    url = f"127.0.0.1:{platform.port}"
    print(f"platform on {url}, store {platform.store or '(none)'}", flush=True)
    feed = Feed()
    pipeline = build(url, feed)
    session = KeySession(
        APP, API_KEY, url, backoff=BACKOFF, heartbeat_interval=INTERVAL, heartbeat_deadline=DEADLINE
    )
    publisher, problems = Publisher(session, args.rate), list[str]()
    try:
        pipeline.start()  # subscribed once this returns
        publisher.start()
        for n in range(1, args.restarts + 2):
            before = publisher.acked()
            time.sleep(args.seconds_between)  # the scenario's pace, not a wait for a condition
            if not wait_for(functools.partial(publisher.progressed, before)):
                problems.append(f"no publish acknowledged for {WAIT:g} s")
            if problems or not publisher.is_alive() or n > args.restarts:
                break
            began = time.monotonic()
            platform.stop(kill=args.kill)
            platform.start()
            print(
                f"restart {n}/{args.restarts}: {'SIGKILL' if args.kill else 'SIGTERM'}, back in "
                f"{time.monotonic() - began:.2f} s ({publisher.acked()} acknowledged so far)",
                flush=True,
            )
        publisher.stopping.set()
        publisher.join(WAIT + 5)  # it finishes the publish it is in
        acked = publisher.acked()
        wait_for(lambda: feed.received.total() >= acked)  # the last record in; then the drain
    finally:
        publisher.abort.set()
        publisher.stopping.set()
        if not pipeline.stop(drain=True):
            problems.append("the pipeline did not drain in time")
        session.stop()
    gaps = pipeline.stats()["prices"]["source_gaps"]
    return report(args.restarts, publisher, feed, problems, gaps)


def report(restarts: int, publisher: Publisher, feed: Feed, problems: list[str], gaps: int) -> int:
    received, volume, bars = feed.received, Counter[str](), Counter[str]()
    for bar in feed.bars:
        volume[bar["key"]] += bar["volume"]
        bars[bar["key"]] += 1
    for s in SYMBOLS:
        print(
            f"{s:<5} published {publisher.records[s]:>6} records, volume {publisher.volume[s]:>8}"
            f"   received {received[s]:>6} records   bars {bars[s]:>3}, volume {volume[s]:>8}"
        )
    print(f"gaps: {gaps}   publishes retried: {publisher.retries}", flush=True)
    acked = publisher.acked()
    if publisher.error is not None:
        problems.append(f"the publisher failed: {publisher.error!r}")
    if publisher.unresolved:
        problems.append(f"{publisher.unresolved} publish given up unacknowledged: may be applied")
    if received != publisher.records:
        problems.append(f"{received.total()} records received for {acked} acknowledged")
    if volume != publisher.volume:
        problems.append("the bar volume is not the acknowledged volume")
    if problems:
        print("MISMATCH: " + "; ".join(problems), flush=True)
        return 1
    print(f"OK: bar volume equals acknowledged volume ({acked} records, {restarts} restarts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
