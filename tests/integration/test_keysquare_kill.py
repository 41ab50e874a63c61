"""KeySquare under kill -9: ``actorwire serve keysquare`` (no store) killed with SIGKILL five
times while a publisher and a subscriber run. Nothing is delivered twice; every record the
new run acknowledged reaches the subscriber; what only a killed run acknowledged is
delivered or covered by a ``Gap`` reported to the subscriber."""

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


def start_platform(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "actorwire.pipelines.cli",
            "serve",
            "keysquare",
            "--port",
            str(port),
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
        self.gaps: list[Gap] = []
        self.cond = threading.Condition()

    def __call__(self, message: KeyMessage) -> None:
        with self.cond:
            self.bids.append(message.data["bid"])
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
