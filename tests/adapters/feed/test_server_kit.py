"""FeedServer on the kit's TcpServer, over real sockets: an actor per client, a subscriber that
stops reading dropped (after the stall deadline, or at once past the outbox bound), counted
and logged while the others keep receiving every frame, and fan-out to matching subscribers
only."""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from actorwire.actors import ActorSystem
from actorwire.actors.tcpserver import DEFAULT_WRITE_CHUNK
from actorwire.adapters.feed import Data, FeedCodec, FeedServer, Ok, Pong

from tests.integration.test_link import Harness
from tests.support.feedclient import Client
from tests.support.waiting import wait_until

PAYLOAD = "p" * 16000  # ~16 KB a frame: the slow reader's socket fills in a few hundred


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    with ActorSystem("feed-server-kit") as sys_:
        yield sys_


def subscribed_slow_reader(server: FeedServer) -> Client:
    """A client that subscribes to A's live frames and then never reads (its socket holds a
    few KB)."""
    before = server.subscriptions
    slow = Client(server.port, rcvbuf=4096)
    slow.auth()
    live = server.last_seq("A") + 1
    slow.send(FeedCodec.encode_sub("A", live))
    assert slow.recv() == Ok(f"sub A {live}")
    server.wait_for(lambda: server.subscriptions > before)
    return slow


def log_events(log: io.StringIO, event: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]
    return [r for r in rows if r.get("event") == event]


def test_a_subscriber_that_stops_reading_but_keeps_pinging_is_dropped_after_the_deadline(
    system: ActorSystem, json_log: io.StringIO
) -> None:
    deadline = 0.5
    with FeedServer(streams=("A",), stall_deadline=deadline, max_outbox_bytes=64 << 20) as server:
        h = Harness(system, server).start("A")
        slow = subscribed_slow_reader(server)
        try:
            subscribed = time.monotonic()
            total = 0
            give_up = subscribed + 20
            while server.slow_readers_dropped == 0:
                assert time.monotonic() < give_up, server.server_stats()
                server.publish("A", 4, payload_fn=lambda seq: PAYLOAD)
                total += 4
                slow.send(FeedCodec.encode_ping(total))  # talking is not reading
                with contextlib.suppress(TimeoutError):  # paces the rounds
                    server.wait_for(lambda: server.slow_readers_dropped > 0, timeout=0.02)
            assert time.monotonic() - subscribed >= deadline
            stats = server.server_stats()
            assert stats["dropped_stalled"] == 1 and stats["dropped_overflow"] == 0
            server.wait_for(lambda: server.connections() == 1)  # the link's is left
            server.publish("A", 5)
            h.expect(total + 5)  # the other subscriber: every frame, once, in order
            (event,) = log_events(json_log, "slow reader dropped")
            assert event["peer"] == slow.peer and event["kind"] == "stalled"
            assert event["level"] == "warning"
        finally:
            slow.close()
            h.link.close()


def test_a_subscriber_past_the_outbox_bound_is_dropped_at_once_and_memory_stays_bounded(
    system: ActorSystem,
) -> None:
    bound = 256 * 1024
    with FeedServer(streams=("A",), max_outbox_bytes=bound, stall_deadline=60.0) as server:
        h = Harness(system, server).start("A")
        slow = subscribed_slow_reader(server)
        try:
            total = 0
            give_up = time.monotonic() + 20
            while server.slow_readers_dropped == 0:  # counted by the publish that overflowed
                assert time.monotonic() < give_up, server.server_stats()
                server.publish("A", 4, payload_fn=lambda seq: PAYLOAD)
                total += 4
                assert server.server_stats()["peak_outbox_bytes"] <= bound
            stats = server.server_stats()
            assert stats["dropped_overflow"] == 1 and stats["dropped_stalled"] == 0
            frame = len(FeedCodec.encode_data("A", total, PAYLOAD))
            assert bound // 2 < stats["peak_outbox_bytes"] <= bound
            assert stats["peak_buffered_bytes"] <= bound + 2 * DEFAULT_WRITE_CHUNK + frame
            server.wait_for(lambda: server.connections() == 1)
            assert server.outbox_bytes() < bound
            server.publish("A", 5)
            h.expect(total + 5)
        finally:
            slow.close()
            h.link.close()


def test_fan_out_reaches_only_the_matching_subscribers() -> None:
    with FeedServer(streams=("A", "B")) as server:
        clients = [Client(server.port) for _ in range(4)]
        try:
            wants = [("A",), ("B",), ("A", "B"), ()]
            for c, streams in zip(clients, wants, strict=True):
                c.auth()
                for s in streams:
                    c.send(FeedCodec.encode_sub(s, 1))
                    assert c.recv() == Ok(f"sub {s} 1")
            server.wait_for(lambda: server.subscriptions == 4)
            server.publish("A", 2)
            server.publish("B")
            expected = [
                [Data("A", 1, "A-1"), Data("A", 2, "A-2")],
                [Data("B", 1, "B-1")],
                [Data("A", 1, "A-1"), Data("A", 2, "A-2"), Data("B", 1, "B-1")],
                [],
            ]
            for n, (c, frames) in enumerate(zip(clients, expected, strict=True)):
                c.send(FeedCodec.encode_ping(n))  # answered after anything sent to it before
                assert c.recv_n(len(frames) + 1) == [*frames, Pong(n)]
        finally:
            for c in clients:
                c.close()


@pytest.mark.parametrize(
    ("option", "value"), [("max_outbox_bytes", 0), ("max_outbox_bytes", 1.5), ("stall_deadline", 0)]
)
def test_bad_limits_are_refused_by_name(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        FeedServer(**{option: value})  # type: ignore[arg-type]


def test_the_drop_counters_run_on_across_kill_and_restart(system: ActorSystem) -> None:
    with FeedServer(streams=("A",), max_outbox_bytes=64 * 1024) as server:
        for round_ in (1, 2):
            slow = subscribed_slow_reader(server)
            try:
                give_up = time.monotonic() + 20
                while server.slow_readers_dropped < round_:
                    assert time.monotonic() < give_up, server.server_stats()
                    server.publish("A", 4, payload_fn=lambda seq: PAYLOAD)
            finally:
                slow.close()
            server.kill()
            server.restart()
        assert server.slow_readers_dropped == 2
        assert server.server_stats()["accepted"] == 2


def test_each_client_gets_an_actor_on_the_system_given(system: ActorSystem) -> None:
    def conn_actors() -> list[str]:
        return [a.name for a in system.actors() if a.name.startswith("feed.conn-")]

    server = FeedServer(system=system)
    server.start()
    try:
        clients = [Client(server.port) for _ in range(3)]
        try:
            for c in clients:
                c.auth()
            assert len(conn_actors()) == 3
            clients[0].close()
            server.wait_for(lambda: server.connections() == 2)
            wait_until(lambda: len(conn_actors()) == 2, what="its actor stops")
        finally:
            for c in clients:
                c.close()
    finally:
        server.stop()
    wait_until(lambda: conn_actors() == [], what="the actors stop")
    assert not system.is_shut_down  # not its system to stop
    assert system.io.alive


def test_a_history_larger_than_the_outbox_goes_out_in_slices_then_live(
    system: ActorSystem,
) -> None:
    bound = 128 * 1024
    with FeedServer(streams=("A",), max_outbox_bytes=bound, stall_deadline=60.0) as server:
        server.publish("A", 200, payload_fn=lambda seq: PAYLOAD)  # ~3 MB: 25 outboxes
        h = Harness(system, server).start("A")
        server.publish("A", 50, payload_fn=lambda seq: PAYLOAD)  # joins the catch-up
        h.expect(250)
        server.publish("A", 5)  # live now
        h.expect(255)
        stats = server.server_stats()
        assert stats["dropped_overflow"] == 0 and stats["dropped_stalled"] == 0
        assert stats["peak_outbox_bytes"] <= bound
        h.link.close()
