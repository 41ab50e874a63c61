"""Link fault tests: a real TCP feed server on 127.0.0.1 that dies, goes silent, skips,
repeats and reorders frames and sends garbage; the consumer must see every frame exactly
once and in order."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from actorwire.actors import Actor, ActorSystem, Mailbox, Overflow
from actorwire.actors.link import Backoff, Link, LinkState, Ordering
from actorwire.adapters.feed import FeedAdapter, FeedServer, Ping

from tests.support.feedlink import SYNC, RecordingConsumer, Sink
from tests.support.waiting import wait_until

FAST = {
    "heartbeat_interval": 0.05,
    "heartbeat_deadline": 0.3,
    "backoff": Backoff(min=0.01, max=0.1, factor=2.0, jitter=0.2),
    "recovery_timeout": 2.0,
}


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer(streams=("A", "B")) as srv:
        yield srv


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    with ActorSystem("link-test") as sys_:
        yield sys_


class Harness:
    def __init__(self, system: ActorSystem, server: FeedServer, **kw: Any) -> None:
        self.server = server
        self.rec = RecordingConsumer()
        self.states: list[tuple[LinkState, str]] = []
        self.lock = threading.Lock()
        consumer = system.spawn(Sink, self.rec, name="consumer")
        self.consumer = consumer
        self._pings = 0
        opts = {**FAST, **kw}
        adapter = opts.pop("adapter", None) or FeedAdapter(server.port)
        self.link = Link(
            system, adapter, consumer, name="feed", state_listener=self._on_state, **opts
        )

    def _on_state(self, state: LinkState, reason: str) -> None:
        with self.lock:
            self.states.append((state, reason))

    def start(self, *streams: str) -> Harness:
        self.link.start()
        assert self.link.wait_for(LinkState.CONNECTED, 5), self.link.history()
        before = self.server.subscriptions
        for s in streams:
            self.link.subscribe(s, 1)
        # Publish only once the server has the subscriptions, so faults hit live frames.
        self.server.wait_for(lambda: self.server.subscriptions >= before + len(streams))
        return self

    def expect(self, n: int, stream: str = "A") -> None:
        """Every frame 1..n of ``stream`` arrived, once, in order, and nothing after: the
        comparison waits until any late duplicate already sent would have arrived."""
        arrived = self.rec.wait_for_count(n, 10, stream=stream)
        assert arrived, (len(self.rec.seqs(stream)), n, self.link.history()[-5:])
        self.settle()
        assert self.rec.seqs(stream) == list(range(1, n + 1))

    def settle(self, timeout: float = 10.0) -> None:
        """Return once everything the server sent so far has reached the consumer: a ping
        round trip (frames sent before the pong were read and routed before it), then an
        ask of the sequence actor and of the consumer (each answers after what it was told
        before). A connection that drops meanwhile is waited out and the ping sent again."""
        give_up = time.monotonic() + timeout
        while True:
            self._pings += 1
            try:
                self.link.call(Ping(10**9 + self._pings), timeout=2.0)
                break
            except (ConnectionError, TimeoutError):
                assert time.monotonic() < give_up, self.link.history()[-5:]
                self.link.wait_for(LinkState.CONNECTED, max(give_up - time.monotonic(), 0.1))
        self.link.status()
        self.consumer.ask(SYNC, timeout=timeout)

    def seen_states(self) -> set[LinkState]:
        with self.lock:
            return {s for s, _ in self.states}


def test_in_order_once_across_five_server_restarts(system: ActorSystem, server: FeedServer) -> None:
    h = Harness(system, server).start("A")
    total = 0
    for _ in range(5):
        server.publish("A", 20)
        total += 20
        h.expect(total)
        server.kill()
        server.publish("A", 7)  # published while the link is down: recovered on resubscribe
        total += 7
        assert h.link.wait_for(LinkState.RECONNECTING, 5)
        server.restart()
        assert h.link.wait_for(LinkState.CONNECTED, 5), h.link.history()[-3:]
    server.publish("A", 10)
    total += 10
    h.expect(total)
    status = h.link.status()
    assert status["reconnects"] >= 5
    assert status["connects"] >= 6


def test_silent_server_hits_heartbeat_deadline_and_reconnects(
    system: ActorSystem, server: FeedServer
) -> None:
    h = Harness(system, server).start("A")
    server.publish("A", 10)
    h.expect(10)
    server.go_silent()
    server.publish("A", 5)  # not sent while silent
    assert h.link.wait_for(LinkState.RECONNECTING, 5)
    reasons = [r for s, r in h.link.history() if s is LinkState.RECONNECTING]
    assert any("heartbeat" in r for r in reasons), reasons
    server.resume()
    h.expect(15)


def _silent_restart(server: FeedServer, n: int) -> None:
    """The server goes silent, dies and comes back still silent: the link's next login is
    read and ignored; then the server answers again, and says "not authenticated" to
    whatever that connection sends next."""
    server.go_silent()
    server.kill()
    server.publish("A", n)
    before = server.frames_received
    server.restart()
    server.wait_for(lambda: server.frames_received > before, timeout=10)  # the lost login
    server.resume()


FAULTS = ("skip", "repeat", "reorder", "garbage", "kill", "silent", "none")


def arm_fault(server: FeedServer, rng: random.Random, fault: str) -> None:
    """Set up a fault that acts on the next frames published (skip, repeat, reorder), or
    send garbage now; kill and silent act in ``publish_through``."""
    if fault == "skip":
        server.skip_next(rng.randint(1, 5))
    elif fault == "repeat":
        server.repeat_next(rng.randint(1, 5))
    elif fault == "reorder":
        server.reorder_next(rng.randint(2, 6))
    elif fault == "garbage":
        server.send_garbage()


def publish_through(server: FeedServer, fault: str, n: int) -> None:
    """Publish ``n`` frames of stream A through ``fault``, then clear every fault."""
    if fault == "kill":
        server.kill()
        server.publish("A", n)
        server.restart()
    elif fault == "silent":
        _silent_restart(server, n)
    else:
        server.publish("A", n)
    server.clear_faults()


def test_silence_during_a_login_never_ends_the_link_failed(
    system: ActorSystem, server: FeedServer
) -> None:
    h = Harness(system, server).start("A")
    server.publish("A", 10)
    h.expect(10)
    for _ in range(3):
        _silent_restart(server, 5)
        assert h.link.wait_for(LinkState.CONNECTED, 10), h.link.history()[-4:]
    server.publish("A", 5)
    h.expect(30)
    assert LinkState.FAILED not in h.seen_states(), h.link.history()


def test_quiet_but_alive_server_does_not_flap(system: ActorSystem, server: FeedServer) -> None:
    h = Harness(system, server).start("A")
    # The server answers pings, so a link with no data stays up past several deadlines.
    pings_before = server.frames_received
    server.wait_for(lambda: server.frames_received >= pings_before + 20, timeout=5)
    assert LinkState.RECONNECTING not in h.seen_states()
    assert h.link.state is LinkState.CONNECTED


def test_gaps_are_recovered_by_replay(system: ActorSystem, server: FeedServer) -> None:
    h = Harness(system, server).start("A")
    server.publish("A", 5)
    for k in (1, 3, 10):
        server.skip_next(k)
        server.publish("A", k + 5)
    total = 5 + sum(k + 5 for k in (1, 3, 10))
    h.expect(total)
    assert len(server.replay_requests) >= 3
    assert server.replay_requests[0] == ("A", 6, 6)
    assert LinkState.RECOVERING in h.seen_states()
    assert h.link.wait_for(LinkState.CONNECTED, 5)
    assert h.link.status()["gaps"] >= 3


def test_duplicates_and_reordering_delivered_once_in_order(
    system: ActorSystem, server: FeedServer
) -> None:
    h = Harness(system, server).start("A")
    server.repeat_next(10)
    server.publish("A", 10)
    server.reorder_next(8)
    server.publish("A", 8)
    server.repeat_next(4)
    server.reorder_next(4)
    server.publish("A", 4)
    h.expect(22)
    status = h.link.status()
    assert status["duplicates"] >= 10
    assert status["delivered"] == 22


def test_garbage_frames_are_counted_and_the_link_recovers(
    system: ActorSystem, server: FeedServer
) -> None:
    h = Harness(system, server).start("A")
    server.publish("A", 5)
    h.expect(5)
    for _ in range(3):
        server.send_garbage(b"\x00\xff garbage\n")
    server.send_garbage(b"DATA A notanumber x\n")
    server.publish("A", 5)
    h.expect(10)
    status = h.link.status()
    assert status["protocol_errors"] == 4
    assert status["connects"] == 1  # recoverable garbage does not drop the connection


def test_two_streams_resubscribed_after_reconnect(system: ActorSystem, server: FeedServer) -> None:
    h = Harness(system, server).start("A", "B")
    server.publish("A", 5)
    server.publish("B", 5)
    h.expect(5, "A")
    h.expect(5, "B")
    server.kill()
    server.publish("A", 3)
    server.publish("B", 4)
    server.restart()
    h.expect(8, "A")
    h.expect(9, "B")


def test_bad_token_fails_visibly_without_retrying(system: ActorSystem, server: FeedServer) -> None:
    h = Harness(system, server, adapter=FeedAdapter(server.port, token="wrong"))
    h.link.start()
    assert h.link.wait_for(LinkState.FAILED, 5)
    _, reason = h.link.history()[-1]
    assert "authentication failed" in reason
    assert "wrong" not in reason  # the credential itself never appears
    assert server.auth_failures == 1


def test_attempt_limit_ends_in_failed_state(system: ActorSystem) -> None:
    srv = FeedServer()
    srv.start()
    port = srv.port
    srv.stop()  # nothing listens on the port now
    h = Harness(system, srv, adapter=FeedAdapter(port), max_attempts=3)
    h.link.start()
    assert h.link.wait_for(LinkState.FAILED, 5), h.link.history()
    _, reason = h.link.history()[-1]
    assert "gave up after 3 attempts" in reason
    states = [s for s, _ in h.link.history()]
    assert states == [LinkState.CONNECTING, LinkState.RECONNECTING, LinkState.FAILED]


def test_state_listener_sees_each_change_and_close(system: ActorSystem, server: FeedServer) -> None:
    h = Harness(system, server).start("A")
    server.kill()
    assert h.link.wait_for(LinkState.RECONNECTING, 5)
    server.restart()
    assert h.link.wait_for(LinkState.CONNECTED, 5)
    h.link.close()
    states = [s for s, _ in h.states]
    assert states[0] is LinkState.CONNECTING
    assert states[-1] is LinkState.CLOSED
    assert {LinkState.CONNECTED, LinkState.RECONNECTING} <= set(states)
    assert all(isinstance(r, str) and r for _, r in h.states)
    assert all(a[0] is not b[0] for a, b in zip(h.states, h.states[1:], strict=False))
    assert h.states == h.link.history()


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_random_faults_lose_and_duplicate_nothing(
    system: ActorSystem, server: FeedServer, seed: int
) -> None:
    rng = random.Random(seed)
    h = Harness(system, server).start("A")
    total = 0
    for _ in range(12):
        fault = rng.choice(FAULTS)
        arm_fault(server, rng, fault)
        n = rng.randint(5, 30)
        publish_through(server, fault, n)
        total += n
    h.expect(total)
    assert LinkState.FAILED not in h.seen_states(), h.link.history()


class _BuggyAdapter(FeedAdapter):
    """Raises on the first read that carries data (a bug in adapter code)."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.bugs = 1

    def route(self, frames: list[Any]) -> Any:
        if self.bugs and any(getattr(f, "seq", None) for f in frames):
            self.bugs -= 1
            raise RuntimeError("adapter bug")
        return super().route(frames)


def test_adapter_bug_drops_the_connection_not_the_link(
    system: ActorSystem, server: FeedServer
) -> None:
    h = Harness(system, server, adapter=_BuggyAdapter(server.port)).start("A")
    server.publish("A", 10)
    h.expect(10)  # the read that hit the bug is re-fetched after the redial
    status = h.link.status()
    assert status["protocol_errors"] >= 1
    assert status["reconnects"] >= 1


def test_send_while_down_is_counted_and_unsubscribe_stops_delivery(
    system: ActorSystem, server: FeedServer
) -> None:
    h = Harness(system, server).start("A", "B")
    server.publish("A", 3)
    server.publish("B", 3)
    h.expect(3, "A")
    h.expect(3, "B")
    h.link.unsubscribe("B")
    assert h.link.status()["subscriptions"] == {"A": 1}
    server.kill()
    assert h.link.wait_for(LinkState.RECONNECTING, 5)
    h.link.send(b"PING 99\n")
    wait_until(lambda: h.link.status()["frames_unsent"] >= 1, 5)
    assert h.link.status()["frames_unsent"] == 1
    server.restart()
    assert h.link.wait_for(LinkState.CONNECTED, 5)
    server.publish("B", 2)
    server.publish("A", 2)
    h.expect(5, "A")
    assert h.rec.seqs("B") == [1, 2, 3]  # resubscribed A only


class _Gate(Actor):
    """A consumer that blocks on its first item until the test opens the gate."""

    def __init__(self, gate: threading.Event, got: list[Any]) -> None:
        super().__init__()
        self.gate = gate
        self.got = got

    def on_receive(self, message: Any) -> None:
        self.gate.wait(10)
        self.got.append(message.seq)


def test_slow_consumer_with_fail_mailbox_is_counted_not_a_crash(
    system: ActorSystem, server: FeedServer
) -> None:
    gate = threading.Event()
    got: list[int] = []
    consumer = system.spawn(
        _Gate, gate, got, name="gate", mailbox=Mailbox(capacity=5, overflow=Overflow.FAIL)
    )
    link = Link(system, FeedAdapter(server.port), consumer, name="slow", **FAST).start()
    assert link.wait_for(LinkState.CONNECTED, 5)
    link.subscribe("A", 1)
    server.wait_for(lambda: server.subscriptions >= 1)
    server.publish("A", 50)
    wait_until(lambda: link.status()["delivered"] == 50, 5)
    rejected = link.status()["consumer_rejected"]
    gate.set()
    assert rejected > 0  # the full FAIL mailbox refused frames...
    wait_until(lambda: len(got) == 50 - rejected, 5)  # ...and every other one arrived
    assert got == sorted(got)
    assert len(set(got)) == len(got)
    assert system.metrics()["actors"]["slow.sequence"]["restarts"] == 0
    assert link.state is LinkState.CONNECTED
    link.close()


def test_a_slow_backpressure_consumer_pauses_reads_and_loses_nothing(
    system: ActorSystem, server: FeedServer
) -> None:
    # The consumer's bounded BACKPRESSURE mailbox fills while it is blocked: the sequence
    # actor then blocks on it, and the transport stops reading once max_backlog reads wait
    # there. The backlog stays bounded, nothing is dropped, the link stays up.
    gate = threading.Event()
    got: list[int] = []
    consumer = system.spawn(
        _Gate, gate, got, name="gate", mailbox=Mailbox(capacity=5, overflow=Overflow.BACKPRESSURE)
    )
    link = Link(
        system, FeedAdapter(server.port), consumer, name="slow", max_backlog=4, **FAST
    ).start()
    assert link.wait_for(LinkState.CONNECTED, 5)
    link.subscribe("A", 1)
    server.wait_for(lambda: server.subscriptions >= 1)
    sequence = system.lookup("slow.sequence")
    deepest = 0
    for _ in range(40):  # 40 separate bursts: many separate reads
        server.publish("A", 25)
        deepest = max(deepest, sequence.depth())
    wait_until(lambda: link.stats.read_pauses > 0, 10)  # (status() would ask the blocked actor)
    for _ in range(20):  # paused: the backlog does not grow past the mark
        deepest = max(deepest, sequence.depth())
    assert deepest <= 4 + 1
    gate.set()
    wait_until(lambda: len(got) == 1000, 20)
    assert got == list(range(1, 1001))
    assert link.status()["consumer_rejected"] == 0
    assert link.state is LinkState.CONNECTED
    link.close()


def test_protocol_errors_reach_the_link_state_machine(
    system: ActorSystem, server: FeedServer
) -> None:
    h = Harness(system, server).start("A")
    server.send_garbage(b"\xfe\xfe\n")
    server.publish("A", 1)
    h.expect(1)
    wait_until(lambda: h.link.status()["last_protocol_error"] is not None, 5)
    assert "not utf-8" in h.link.status()["last_protocol_error"]


class _LatestFeed(FeedAdapter):
    ordering = Ordering.LATEST

    def recover(self, stream: Any, first: int, last: int) -> list[Any] | None:
        raise AssertionError("LATEST ordering never asks for a replay")


def test_latest_ordering_drops_older_and_accepts_gaps(
    system: ActorSystem, server: FeedServer
) -> None:
    h = Harness(system, server, adapter=_LatestFeed(server.port)).start("A")
    server.skip_next(2)  # frames 1-2 never sent live: a gap LATEST accepts
    server.publish("A", 4)
    server.reorder_next(3)  # 5,6,7 arrive as 7,6,5: 6 and 5 are older than 7
    server.publish("A", 3)
    server.repeat_next(1)  # 8 arrives twice
    server.publish("A", 1)
    wait_until(lambda: h.link.status()["stale"] == 3, 5)
    assert h.rec.wait_for_count(4, 5, stream="A")
    assert h.rec.seqs("A") == [3, 4, 7, 8]
    assert server.replay_requests == []


class BrokenPingAdapter(FeedAdapter):
    """Its ping raises: the heartbeat actor fails on every beat, the link's supervisor
    restarts it (and the reconnect actor after it) until its restart intensity is spent."""

    def ping(self, n: int) -> Any:
        raise RuntimeError("no ping today")


def test_a_link_whose_supervisor_gives_up_ends_failed(
    system: ActorSystem, server: FeedServer
) -> None:
    h = Harness(
        system, server, adapter=BrokenPingAdapter(server.port), max_restarts=2, restart_window=60
    )
    h.link.start()
    assert h.link.wait_for(LinkState.FAILED, 30), h.link.history()[-5:]
    state, reason = h.link.history()[-1]
    assert state is LinkState.FAILED and "link supervisor gave up" in reason
    assert LinkState.FAILED in h.seen_states()  # the state listener was told
