"""Regression tests for the link machine and the adapter kit: each pins down a bug once
found in them (the docstrings tell the input that used to go wrong)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from actorwire.actors import Actor, ActorSystem
from actorwire.actors.callbacks import user_callback
from actorwire.actors.framing import FrameError, LineFramer
from actorwire.actors.ioloop import IOLoop
from actorwire.actors.link import (
    AuthRefused,
    Backoff,
    Link,
    LinkState,
    TcpTransport,
    Transport,
    Wiring,
)
from actorwire.actors.serving import TopicIndex
from actorwire.adapters.feed import FeedAdapter, FeedServer
from actorwire.adapters.feed.protocol import FeedCodec


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    with ActorSystem("review-10") as sys_:
        yield sys_


class _Drop(Actor):
    def on_receive(self, message: object) -> None:
        pass


class _RegisteringTransport(TcpTransport):
    """Logs in inside ``open()`` (as keysquare's transport registers in ``open()``): a peer
    that refuses the credentials makes ``open()`` raise AuthRefused, as documented."""

    async def open(self) -> None:
        await super().open()
        writer, reader = self._writer_stream, self._reader_stream
        assert writer is not None and reader is not None
        writer.write(FeedCodec.encode_auth("not-the-token"))
        await writer.drain()
        answer = await reader.readline()
        if b"bad token" in answer:
            raise AuthRefused("bad token")


class _RegisteringAdapter(FeedAdapter):
    def make_transport(self, wiring: Wiring) -> Transport:
        return _RegisteringTransport(
            self, wiring, self.host, self.port, lambda: FeedCodec(role="client")
        )

    def on_connected(self) -> list[object]:
        return []  # logged in by open() already


def test_auth_refused_in_open_ends_the_link_failed(system: ActorSystem) -> None:
    """AuthRefused raised by ``Transport.open()`` reaches the machine as LoginRefused while it
    is still DIALING; machine.py's table has (LOGGING_IN|UP, LoginRefused) only, so the event
    is dropped and the link stays CONNECTING for good: no FAILED, no redial, no timer.
    (keysquare's transport raises AuthRefused from open() on UNAUTHENTICATED.)"""
    with FeedServer(streams=("A",)) as server:
        consumer = system.spawn(_Drop, name="consumer")
        link = Link(
            system,
            _RegisteringAdapter(server.port),
            consumer,
            name="refused",
            heartbeat_interval=0.05,
            heartbeat_deadline=0.3,
            backoff=Backoff(min=0.01, max=0.05, factor=2.0, jitter=0.0),
        )
        link.start()
        try:
            # The refusal takes one round trip on 127.0.0.1; 5 s is a generous bound.
            failed = link.wait_for(LinkState.FAILED, 5.0)
            status = link.status()
            assert failed, (status["phase"], link.history())
        finally:
            link.close()


def test_line_framer_refuses_a_line_longer_than_max_frame_size() -> None:
    """LineFramer._next compares ``end - pos`` with ``max_frame_size + 1`` whether or not the
    line ends in ``\\r``: a payload of max_frame_size + 1 bytes is accepted."""
    framer = LineFramer(max_frame_size=4)
    framer.receive_data(b"12345\n")
    with pytest.raises(FrameError):
        framer.frames()


def test_line_framer_accepts_a_full_size_crlf_line_split_across_reads() -> None:
    """A 4-byte line ending ``\\r\\n`` is accepted when it comes in one read, but refused when
    the ``\\n`` comes in the next read: the no-newline check counts the ``\\r`` as payload."""
    whole = LineFramer(max_frame_size=4)
    whole.receive_data(b"1234\r\n")
    assert whole.frames() == [b"1234"]
    split = LineFramer(max_frame_size=4)
    split.receive_data(b"1234\r")
    assert split.frames() == []  # raises FrameError today
    split.receive_data(b"\n")
    assert split.frames() == [b"1234"]


def test_topic_index_fan_out_can_drop_a_slow_subscriber() -> None:
    """TopicIndex.match is a lazy generator over the live dicts: dropping a subscriber whose
    outbox refused (the very case the kit is for) while fanning out raises RuntimeError
    ('dictionary changed size during iteration')."""
    index: TopicIndex[str, str] = TopicIndex()
    for conn in ("c1", "c2", "c3"):
        index.add(conn, "EURUSD")
    index.add("w", None)
    told = []
    for conn in index.match("EURUSD"):
        told.append(conn)
        if conn in ("c1", "w"):  # its outbox refused: the server closes it
            index.remove_subscriber(conn)
    assert sorted(told) == ["c1", "c2", "c3", "w"]


def test_async_callbacks_run_in_order() -> None:
    """user_callback submits each call as its own task: an async callback that awaits lets the
    next call overtake it, although the README (and the commit) promise 'run on the system's
    I/O loop, in order'."""
    io = IOLoop("review-10-cb")
    try:
        finished: list[int] = []
        both = threading.Event()

        async def on_event(n: int) -> None:
            if n == 0:
                await asyncio.sleep(0)
            await asyncio.sleep(0)
            finished.append(n)
            if len(finished) == 2:
                both.set()

        run = user_callback(on_event, "on_event", io)
        run(0)
        run(1)
        assert both.wait(5.0)
        assert finished == [0, 1]
    finally:
        io.shutdown()


def test_a_transport_that_misses_a_coroutine_cannot_be_built() -> None:
    class Forgetful(Transport):  # no open(), read(), write() or close_connection()
        pass

    with pytest.raises(TypeError, match="abstract"):
        Forgetful(FeedAdapter(1))  # type: ignore[abstract]
