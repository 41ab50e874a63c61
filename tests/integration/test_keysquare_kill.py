"""KeySquare under kill -9: ``actorwire serve keysquare`` killed with SIGKILL five times while
a publisher and a subscriber run.

- Without a store: nothing is delivered twice; every record the new run acknowledged reaches
  the subscriber; what only a killed run acknowledged is delivered or covered by a ``Gap``
  reported to the subscriber.
- With ``--store``: every acknowledged record, from ``publish`` and ``publish_many`` over
  several topics, reaches the subscriber exactly once and in order per topic, with no gap.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from actorwire.actors import Backoff
from actorwire.adapters.keysquare import Gap, KeyMessage, KeySession, SubscriptionType

WAIT = 20.0
KILLS = 5
OPTS: dict[str, Any] = {
    "timeout": 10,
    "heartbeat_interval": 0.2,
    "heartbeat_deadline": 1.0,
    "backoff": Backoff(min=0.05, max=0.2, factor=2.0, jitter=0.2),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_platform(port: int, store: Path | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "actorwire.pipelines.cli",
            "serve",
            "keysquare",
            "--port",
            str(port),
            *(["--store", str(store)] if store is not None else []),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=WAIT)
    except queue.Empty:
        proc.kill()
        proc.wait()
        raise AssertionError("the platform did not start") from None
    assert re.fullmatch(rf"keysquare platform listening on 127\.0\.0\.1:{port}\n", line), line
    return proc


class Seen:
    def __init__(self) -> None:
        self.bids: list[float] = []
        self.topics: list[str] = []
        self.gaps: list[Gap] = []
        self.cond = threading.Condition()

    def __call__(self, message: KeyMessage) -> None:
        with self.cond:
            self.bids.append(message.data["bid"])
            self.topics.append(message["header"]["id"])
            self.cond.notify_all()

    def gap(self, gap: Gap) -> None:
        with self.cond:
            self.gaps.append(gap)
            self.cond.notify_all()


@pytest.mark.timeout(180)
def test_kill_9_five_times_loses_nothing_acknowledged_by_the_live_run_and_repeats_nothing() -> None:
    port = free_port()
    url = f"127.0.0.1:{port}"
    proc = start_platform(port)
    seen = Seen()
    acked: list[tuple[float, float]] = []  # (bid, when its ack arrived)
    restarts: list[float] = []  # when each new run was up
    stop = threading.Event()
    try:
        with (
            KeySession("demo", "demo-key", url, **OPTS) as sub,
            KeySession("demo", "demo-key", url, **OPTS) as pub,
        ):
            sub.subscribe(
                "Price",
                callback=seen,
                subscription_type=SubscriptionType.LIVE_ONLY,
                gap_callback=seen.gap,
            )

            def publish() -> None:
                i = 0
                while not stop.is_set():
                    i += 1
                    try:
                        pub.publish("Price", f"T{i % 5}", {"bid": float(i)}, timeout=3)
                    except (TimeoutError, RuntimeError):
                        continue  # not acknowledged: no promise made
                    acked.append((float(i), time.monotonic()))

            publisher = threading.Thread(target=publish)
            publisher.start()
            try:
                for _ in range(KILLS):
                    before = len(acked)
                    deadline = time.monotonic() + WAIT
                    while len(acked) < before + 30:
                        assert time.monotonic() < deadline, "publishing stalled"
                        with seen.cond:
                            seen.cond.wait(0.05)
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(WAIT)
                    proc = start_platform(port)
                    restarts.append(time.monotonic())
                before = len(acked)
                deadline = time.monotonic() + WAIT
                while len(acked) < before + 30:
                    assert time.monotonic() < deadline, "publishing stalled after the last restart"
                    with seen.cond:
                        seen.cond.wait(0.05)
            finally:
                stop.set()
                publisher.join(WAIT)
            pub.publish("Price", "END", {"bid": -1.0}, timeout=WAIT)
            with seen.cond:
                assert seen.cond.wait_for(lambda: -1.0 in seen.bids, WAIT), len(seen.bids)
                bids, gaps = list(seen.bids), list(seen.gaps)
    finally:
        proc.kill()
        proc.wait(WAIT)
    assert len(bids) == len(set(bids)), "a record was delivered twice"
    delivered = set(bids)
    last_up = restarts[-1]
    # Acknowledged by the run that is still up: every one delivered.
    assert [b for b, at in acked if at > last_up and b not in delivered] == []
    # Acknowledged only by a killed run and not delivered: each restart is reported.
    lost = [b for b, at in acked if b not in delivered]
    if lost:
        assert len(gaps) >= 1 and all(g.missed is None for g in gaps)
    assert len(gaps) <= KILLS


TOPICS = [f"T{k}" for k in range(5)]


@pytest.mark.timeout(180)
def test_with_a_store_every_acknowledged_record_arrives_exactly_once_in_order_across_5_kills(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"127.0.0.1:{port}"
    store = tmp_path / "platform.db"
    proc = start_platform(port, store)
    seen = Seen()
    acked: list[tuple[str, float]] = []  # (topic, bid) of every acknowledged record
    stop = threading.Event()
    errors: list[BaseException] = []
    try:
        with (
            KeySession("demo", "demo-key", url, **OPTS) as sub,
            KeySession("demo", "demo-key", url, **OPTS) as pub,
        ):
            sub.subscribe(
                "Price",
                callback=seen,
                subscription_type=SubscriptionType.LIVE_ONLY,
                gap_callback=seen.gap,
            )

            def until_acked(send: Any, pid: str) -> None:
                # A publish that timed out may have been applied: retry with its id, which
                # the platform applies once, until it is acknowledged.
                deadline = time.monotonic() + 4 * WAIT
                while True:
                    try:
                        send(pid)
                        return
                    except (TimeoutError, RuntimeError, ConnectionError):
                        assert time.monotonic() < deadline, f"publish {pid} never acknowledged"

            def publish() -> None:
                try:
                    i = 0
                    while not stop.is_set():
                        i += 1
                        if i % 3:
                            topic = TOPICS[i % len(TOPICS)]
                            bid = float(i * 10)
                            until_acked(
                                lambda pid, t=topic, b=bid: pub.publish(
                                    "Price", t, {"bid": b}, timeout=2, publish_id=pid
                                ),
                                f"p{i}",
                            )
                            acked.append((topic, bid))
                        else:
                            batch = [(t, float(i * 10 + k)) for k, t in enumerate(TOPICS)]
                            until_acked(
                                lambda pid, b=batch: pub.publish_many(
                                    "Price",
                                    [(t, {"bid": x}) for t, x in b],
                                    timeout=2,
                                    publish_id=pid,
                                ),
                                f"m{i}",
                            )
                            acked.extend(batch)
                except BaseException as exc:
                    errors.append(exc)

            publisher = threading.Thread(target=publish)
            publisher.start()
            try:
                for _ in range(KILLS):
                    before = len(acked)
                    deadline = time.monotonic() + WAIT
                    while len(acked) < before + 50:
                        assert not errors, errors
                        assert time.monotonic() < deadline, "publishing stalled"
                        with seen.cond:
                            seen.cond.wait(0.05)
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(WAIT)
                    proc = start_platform(port, store)
                before = len(acked)
                deadline = time.monotonic() + WAIT
                while len(acked) < before + 50:
                    assert not errors, errors
                    assert time.monotonic() < deadline, "publishing stalled after the last restart"
                    with seen.cond:
                        seen.cond.wait(0.05)
            finally:
                stop.set()
                publisher.join(4 * WAIT)
            assert not errors, errors
            pub.publish("Price", "END", {"bid": -1.0}, timeout=WAIT)
            with seen.cond:
                assert seen.cond.wait_for(lambda: -1.0 in seen.bids, WAIT), len(seen.bids)
                delivered = [
                    (t, b) for t, b in zip(seen.topics, seen.bids, strict=True) if t != "END"
                ]
                gaps = list(seen.gaps)
    finally:
        proc.kill()
        proc.wait(WAIT)
    assert gaps == []
    assert len(delivered) == len(set(delivered)), "a record was delivered twice"
    missing = set(acked) - set(delivered)
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged records never arrived"
    assert set(delivered) == set(acked), "a record nobody acknowledged was delivered"
    for topic in TOPICS:
        bids = [b for t, b in delivered if t == topic]
        assert bids == sorted(bids), f"{topic} out of order"
        assert len(bids) > 0
