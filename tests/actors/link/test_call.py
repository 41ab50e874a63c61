"""Link.call: a request/response on the current connection, over a real feed server.

The feed protocol's ``PING n`` is answered by ``PONG n``; ``Link.call(Ping(n))`` returns
the matching ``Pong``. A call fails with ConnectionError when no connection is up or the
connection ends first, with TimeoutError when the peer stays silent, and with TypeError for
a request the adapter does not know.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from typing import Any

import pytest
from actorwire.actors import ActorSystem
from actorwire.actors.link import Backoff, Call, Close, Link, LinkState, Routed
from actorwire.adapters.feed import FeedAdapter, FeedCodec, FeedServer, Ping, Pong

from tests.support.feedlink import RecordingConsumer, Sink
from tests.support.waiting import wait_until

FAST: dict[str, Any] = {
    "heartbeat_interval": 0.5,
    "heartbeat_deadline": 2.0,
    "backoff": Backoff(min=0.01, max=0.1, factor=2.0, jitter=0.2),
}


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    with ActorSystem("call-test") as sys_:
        yield sys_


def _link(system: ActorSystem, server: FeedServer, **kw: Any) -> Link:
    consumer = system.spawn(Sink, RecordingConsumer(), name="consumer")
    return Link(system, FeedAdapter(server.port), consumer, name="feed", **{**FAST, **kw})


def test_call_returns_the_peers_answer_for_its_request(system: ActorSystem) -> None:
    with FeedServer(streams=("A",)) as server, _link(system, server) as link:
        assert link.wait_for(LinkState.CONNECTED, 5)
        assert link.call(Ping(41), timeout=5) == Pong(41)
        futures = [link.submit(Ping(n), timeout=5) for n in range(1000, 1020)]
        assert [f.result(5) for f in futures] == [Pong(n) for n in range(1000, 1020)]


def test_call_while_no_connection_is_up_raises_connection_error(system: ActorSystem) -> None:
    with FeedServer(streams=("A",)) as server, _link(system, server) as link:
        assert link.wait_for(LinkState.CONNECTED, 5)
        server.kill()
        assert link.wait_for(LinkState.RECONNECTING, 5)
        with pytest.raises(ConnectionError, match="not connected"):
            link.call(Ping(1), timeout=5)
        server.restart()
        assert link.wait_for(LinkState.CONNECTED, 5)
        assert link.call(Ping(2), timeout=5) == Pong(2)


def test_call_fails_when_its_connection_ends_before_the_answer(system: ActorSystem) -> None:
    with FeedServer(streams=("A",)) as server, _link(system, server) as link:
        assert link.wait_for(LinkState.CONNECTED, 5)
        server.go_silent()  # the ping is read but never answered
        pending = link.submit(Ping(7), timeout=30)
        wait_until(lambda: server.frames_received >= 2, timeout=5)
        server.kill()
        with pytest.raises(ConnectionError, match="ended before the answer"):
            pending.result(10)


def test_call_to_a_silent_peer_times_out_and_later_calls_are_answered(
    system: ActorSystem,
) -> None:
    with FeedServer(streams=("A",)) as server, _link(system, server) as link:
        assert link.wait_for(LinkState.CONNECTED, 5)
        server.go_silent()
        with pytest.raises(TimeoutError, match=r"no answer to Ping within 0\.2s"):
            link.call(Ping(9), timeout=0.2)
        server.resume()
        assert link.call(Ping(10), timeout=5) == Pong(10)


def test_a_reply_no_call_waits_for_is_counted(system: ActorSystem) -> None:
    # On a quiet link the heartbeat pings; its pongs are replies nobody asked for.
    with FeedServer(streams=("A",)) as server, _link(system, server) as link:
        assert link.wait_for(LinkState.CONNECTED, 5)
        wait_until(lambda: link.stats.unmatched_replies >= 1, timeout=5)
        assert link.state is LinkState.CONNECTED


def test_call_with_a_request_the_adapter_does_not_know_raises_type_error(
    system: ActorSystem,
) -> None:
    with FeedServer(streams=("A",)) as server, _link(system, server) as link:
        assert link.wait_for(LinkState.CONNECTED, 5)
        with pytest.raises(TypeError, match="answers Ping requests only"):
            link.call("hello", timeout=5)
        with pytest.raises(ValueError, match="timeout must be > 0"):
            link.submit(Ping(1), timeout=0)


def test_a_cancelled_call_releases_its_reply_key(system: ActorSystem) -> None:
    with FeedServer(streams=("A",)) as server, _link(system, server) as link:
        assert link.wait_for(LinkState.CONNECTED, 5)
        server.go_silent()
        pending = link.submit(Ping(3), timeout=30)
        wait_until(lambda: server.frames_received >= 2, timeout=5)
        assert pending.cancel()
        server.resume()
        assert link.call(Ping(3), timeout=5) == Pong(3)  # the same key is free again
        with pytest.raises(concurrent.futures.CancelledError):
            pending.result(0)


class _PongOrder(FeedAdapter):
    """Notes the order pongs arrive in (route runs on the I/O loop, one read at a time)."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.pongs: list[int] = []

    def route(self, frames: list[Any]) -> Routed:
        self.pongs.extend(f.n for f in frames if isinstance(f, Pong))
        return super().route(frames)


def test_a_calls_frames_go_out_before_frames_sent_after_it(system: ActorSystem) -> None:
    with FeedServer(streams=("A",)) as server:
        adapter = _PongOrder(server.port)
        consumer = system.spawn(Sink, RecordingConsumer(), name="consumer")
        opts = {**FAST, "heartbeat_interval": 30.0, "heartbeat_deadline": 60.0}
        with Link(system, adapter, consumer, name="feed", **opts) as link:
            assert link.wait_for(LinkState.CONNECTED, 5)
            for i in range(30):
                answer = link.submit(Ping(1000 + i), timeout=5)
                link.send(FeedCodec.encode_ping(2000 + i))
                assert answer.result(5) == Pong(1000 + i)
            wait_until(lambda: len(adapter.pongs) >= 60, timeout=5)
            expected = [n for i in range(30) for n in (1000 + i, 2000 + i)]
            assert adapter.pongs == expected


def test_a_call_behind_a_close_fails_at_once_with_connection_error(system: ActorSystem) -> None:
    # What the reconnect actor does on a heartbeat deadline, with a call right behind it.
    with FeedServer(streams=("A",)) as server, _link(system, server) as link:
        assert link.wait_for(LinkState.CONNECTED, 5)
        transport = system.lookup("feed.transport")
        for n in range(20):
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            transport.tell(Close(None))
            transport.tell(Call(Ping(n), future, 0.5))
            with pytest.raises(ConnectionError):
                future.result(0.4)  # before the call's own timeout: settled, not expired
            assert link.wait_for(LinkState.CONNECTED, 5)
            wait_until(lambda: link.state is LinkState.CONNECTED, timeout=5)


def test_submit_after_close_fails_with_connection_error(system: ActorSystem) -> None:
    with FeedServer(streams=("A",)) as server:
        link = _link(system, server).start()
        assert link.wait_for(LinkState.CONNECTED, 5)
        link.close()
        with pytest.raises(ConnectionError, match="closed"):
            link.submit(Ping(1), timeout=5).result(1)


def test_call_from_the_io_loop_is_refused_at_once(system: ActorSystem) -> None:
    with FeedServer(streams=("A",)) as server, _link(system, server) as link:
        assert link.wait_for(LinkState.CONNECTED, 5)
        with pytest.raises(RuntimeError, match="would block the I/O loop"):
            system.io.call(lambda: link.call(Ping(1), timeout=5))
        answer = system.io.call(lambda: link.submit(Ping(2), timeout=5))
        assert answer.result(5) == Pong(2)
