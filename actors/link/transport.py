"""Transport actors: one connection at a time, its I/O on the system's asyncio loop.

Commands arrive in the actor's mailbox (Connect, Send, Call, Close); the socket work
happens on the I/O loop, and every piece of connection state lives there (the actor only
submits). Each read's frames are routed once on the loop and handed on with one tell per
read, not per frame. The transport reports Connected, ConnectFailed and Disconnected to the
link's reconnect actor, tagged with the connection's generation so stale reports from an
old connection are ignored. A Call is a request/response on the current connection: it
fails with ConnectionError when no connection is up or the connection ends first.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..actor import Actor
from ..clock import Clock, monotonic
from .adapter import AuthFailed, AuthRefused

if TYPE_CHECKING:
    from ..address import Address
    from .adapter import LinkAdapter

__all__ = [
    "Call",
    "Close",
    "Connect",
    "ConnectFailed",
    "Connected",
    "Disconnected",
    "FrameCodec",
    "Inbound",
    "LinkStats",
    "ProtocolFault",
    "Send",
    "TcpTransport",
    "Transport",
    "Wiring",
]


# -- commands to a transport -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connect:
    gen: int


@dataclass(frozen=True, slots=True)
class Close:
    gen: int | None = None


@dataclass(frozen=True, slots=True)
class Send:
    frames: list[Any]


@dataclass(frozen=True, slots=True)
class Call:
    """A request answered on the current connection; ``future`` gets the answer."""

    request: Any
    future: concurrent.futures.Future[Any]
    timeout: float


# -- reports from a transport ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    gen: int
    peer: str


@dataclass(frozen=True, slots=True)
class ConnectFailed:
    gen: int
    reason: str


@dataclass(frozen=True, slots=True)
class Disconnected:
    gen: int
    reason: str


@dataclass(frozen=True, slots=True)
class ProtocolFault:
    """A frame from the peer could not be understood (counted and logged on the loop)."""

    gen: int
    reason: str
    fatal: bool


@dataclass(frozen=True, slots=True)
class Inbound:
    """One read's data frames, ``(stream, seq, item)`` each, for the sequence actor."""

    gen: int
    data: list[Any]


@dataclass(frozen=True, slots=True)
class ControlEvents:
    gen: int
    events: list[Any]


class LinkStats:
    """Counters shared by a link's actors. Each field has one writer thread."""

    __slots__ = (
        "bytes_in",
        "connects",
        "frames_in",
        "frames_out",
        "frames_unsent",
        "last_inbound",
        "protocol_errors",
        "read_pauses",
        "unmatched_replies",
    )

    def __init__(self) -> None:
        self.last_inbound = 0.0  # clock() of the latest read: heartbeat liveness
        self.frames_in = 0
        self.frames_out = 0
        self.frames_unsent = 0  # sends refused because no connection was up
        self.bytes_in = 0
        self.protocol_errors = 0
        self.connects = 0
        self.read_pauses = 0  # times reads stopped because the consumer fell behind
        self.unmatched_replies = 0  # replies no Link.call waited for (timed out, or pongs)

    def as_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self.__slots__}


class _Peers:
    """Resolves sibling addresses by name on first use (siblings start after us)."""

    def __init__(self, names: dict[str, str]) -> None:
        self._names = names
        self._cache: dict[str, Address] = {}

    def get(self, actor: Actor, role: str) -> Address:
        addr = self._cache.get(role)
        if addr is None:
            addr = actor.system.lookup(self._names[role])
            self._cache[role] = addr
        return addr


@dataclass(frozen=True, slots=True)
class Wiring:
    """What a Link hands each transport it builds: its siblings' names, the link's shared
    counters, the clock, and how many undelivered reads may wait before reads pause."""

    peers: dict[str, str]
    stats: LinkStats = field(default_factory=LinkStats)
    clock: Clock = monotonic
    max_backlog: int = 1000


class _Live:
    """The open connection's state, on the I/O loop only."""

    __slots__ = ("calls", "gen", "outq", "replies")

    def __init__(self, gen: int) -> None:
        self.gen = gen
        self.outq: asyncio.Queue[list[Any]] = asyncio.Queue()
        self.replies: dict[Hashable, asyncio.Future[Any]] = {}
        self.calls: set[asyncio.Future[Any]] = set()


class Transport(Actor):
    """Base transport actor. Subclasses implement the four coroutines below.

    ``open`` connects (raise to fail), ``read`` returns the next decoded frames (raise
    EOFError or ConnectionError when the peer closes), ``write`` sends frames, and
    ``close_connection`` releases the connection. All four run on the I/O loop.
    """

    connect_timeout = 10.0
    _BACKLOG_POLL = 0.005  # seconds between looks at the backlog while paused

    def __init__(self, adapter: LinkAdapter, wiring: Wiring) -> None:
        super().__init__()
        self.adapter = adapter
        self.peer = "?"
        self.stats = wiring.stats
        self.clock: Clock = wiring.clock
        # Reads pause while more than this many reads wait, undelivered, at the sequence
        # actor (its consumer is slow: a full BACKPRESSURE mailbox); they resume below half
        # of it. The socket then stops being read, so the peer sees backpressure rather
        # than the backlog growing in memory.
        self.max_backlog = wiring.max_backlog
        self._peers = _Peers(wiring.peers)
        self._gen = 0
        self._task: asyncio.Task[None] | None = None
        self._live: _Live | None = None  # loop side only

    def _peer(self, role: str) -> Address:
        return self._peers.get(self, role)

    # -- subclass API (on the I/O loop) ------------------------------------------------

    # Abstract: a subclass that forgets one cannot be built at all (it would otherwise fail
    # on every dial and redial for ever).

    @abc.abstractmethod
    async def open(self) -> None:
        """Open the connection (raise AuthRefused if the peer refuses the credentials)."""

    @abc.abstractmethod
    async def read(self) -> list[Any]:
        """The frames of one read; an empty list or an exception ends the connection."""

    @abc.abstractmethod
    async def write(self, frames: list[Any]) -> None:
        """Write frames on the open connection."""

    @abc.abstractmethod
    async def close_connection(self) -> None:
        """Close the connection (idempotent)."""

    def request(self, request: Any) -> Awaitable[Any]:
        """Start one ``Link.call`` on the open connection (on the I/O loop); the awaitable
        gives its answer.

        By default the adapter's frames for it are queued at once, in order with every
        other send, and the answer is the ``Reply`` that ``route`` finds for its key.
        Override for requests the protocol answers out of band (return a coroutine: a
        unary RPC on the same channel), calling ``super().request`` for the rest.
        """
        live = self._live
        if live is None:
            raise ConnectionError(f"not connected to {self.peer}")
        key, frames = self.adapter.request(request)
        waiting = live.replies.get(key)
        if waiting is not None and not waiting.done():
            raise ValueError(f"a call with reply key {key!r} is already waiting")
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        live.replies[key] = answer
        # The key is released once the answer is in, or the call ends without one.
        answer.add_done_callback(lambda _: _release(live.replies, key, answer))
        live.outq.put_nowait(list(frames))
        return answer

    # -- actor side ---------------------------------------------------------------------

    def on_receive(self, message: Any) -> None:
        if isinstance(message, Send):
            self._send(message.frames)
        elif isinstance(message, Call):
            self.system.io.call_soon(self._start_call, message)
        elif isinstance(message, Connect):
            self._connect(message.gen)
        elif isinstance(message, Close):
            if message.gen is None or message.gen == self._gen:
                self._close()
        else:
            super().on_receive(message)

    def on_batch(self, messages: list[Any]) -> None:
        # Consecutive Sends become one write: fewer loop wake-ups and syscalls.
        frames: list[Any] = []
        for message in messages:
            if isinstance(message, Send):
                frames.extend(message.frames)
                continue
            if frames:
                self._send(frames)
                frames = []
            self.on_receive(message)
        if frames:
            self._send(frames)

    def _send(self, frames: list[Any]) -> None:
        self.system.io.call_soon(self._send_on_loop, frames)

    def _send_on_loop(self, frames: list[Any]) -> None:
        live = self._live
        if live is None:
            # Subscriptions are replayed on reconnect; anything else sent while the link is
            # down is refused here, counted and logged, never queued without bound.
            self.stats.frames_unsent += len(frames)
            self.log.warning(
                "send while not connected: frames not sent",
                frames=len(frames),
                total=self.stats.frames_unsent,
            )
            return
        live.outq.put_nowait(frames)

    def _start_call(self, call: Call) -> None:
        future = call.future
        live = self._live
        if future.done():
            return
        if live is None:
            _settle(future, error=ConnectionError(f"not connected to {self.peer}"))
            return
        try:
            answer = self.request(call.request)  # frames queued now: in order with sends
        except Exception as exc:  # noqa: BLE001 - the caller gets what was wrong
            _settle(future, error=exc)
            return
        task = asyncio.ensure_future(asyncio.wait_for(answer, call.timeout))
        live.calls.add(task)
        peer = self.peer

        def finished(task: asyncio.Future[Any]) -> None:
            live.calls.discard(task)
            if isinstance(answer, asyncio.Future):
                answer.cancel()  # a task cancelled before its first step left it waiting
            elif inspect.iscoroutine(answer) and inspect.getcoroutinestate(answer) == _CREATED:
                answer.close()  # never started: nothing to undo
            if task.cancelled():
                # The connection ended (or the caller gave up) before the answer: this
                # runs even for a task cancelled before its first step.
                _settle(
                    future,
                    error=ConnectionError(f"the connection to {peer} ended before the answer"),
                )
            elif task.exception() is not None:
                _settle(future, error=task.exception())
            else:
                _settle(future, task.result())

        task.add_done_callback(finished)
        loop = asyncio.get_running_loop()

        def abandon() -> None:
            task.cancel()
            if isinstance(answer, asyncio.Future):
                answer.cancel()  # done at once: its reply key is free for the next call

        # A caller that cancels its future ends the call and releases its reply key.
        future.add_done_callback(lambda f: f.cancelled() and loop.call_soon_threadsafe(abandon))

    def _connect(self, gen: int) -> None:
        self._close()
        self._gen = gen
        self._task = self.system.io.submit(self._connection(gen))  # type: ignore[assignment]

    def _close(self) -> None:
        task = self._task
        self._task = None
        if task is not None:
            task.cancel()

    def on_stop(self) -> None:
        self._close()

    def on_failure(self, *_exc: Any) -> None:
        self._close()

    # -- loop side ----------------------------------------------------------------------

    async def _connection(self, gen: int) -> None:
        reconnect = self._peer("reconnect")
        try:
            await asyncio.wait_for(self.open(), self.connect_timeout)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self.close_connection()
            raise
        except AuthRefused as exc:
            with contextlib.suppress(Exception):
                await self.close_connection()
            reconnect.tell(ControlEvents(gen, [AuthFailed(str(exc))]))
            return
        except Exception as exc:  # noqa: BLE001 - any connect failure is reported
            with contextlib.suppress(Exception):
                await self.close_connection()
            reconnect.tell(ConnectFailed(gen, f"{type(exc).__name__}: {exc}"))
            return
        self.stats.connects += 1
        self.stats.last_inbound = self.clock()
        live = _Live(gen)
        self._live = live
        writer = asyncio.ensure_future(self._writer(live.outq))
        reconnect.tell(Connected(gen, self.peer))
        reason = "closed"
        try:
            reason = await self._reader(live, reconnect)
        except asyncio.CancelledError:
            reason = "closed by the link"
            raise
        finally:
            if self._live is live:
                self._live = None
            writer.cancel()
            for task in list(live.calls):
                task.cancel()  # each fails its caller with ConnectionError
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self.close_connection()
            if reason != "closed by the link" and reconnect.is_alive():
                # (A link closed meanwhile has no one left to tell: not a dead letter.)
                reconnect.tell(Disconnected(gen, reason))

    async def _wait_for_backlog(self, sequence: Address, low: int) -> None:
        """Stop reading until the sequence actor's backlog is down to ``low``."""
        stats = self.stats
        stats.read_pauses += 1
        self.log.warning(
            "reads paused: the consumer is behind",
            peer=self.peer,
            backlog=sequence.depth(),
            pauses=stats.read_pauses,
        )
        while sequence.depth() > low:
            # Our own slowness is not the peer's silence: keep the heartbeat satisfied.
            stats.last_inbound = self.clock()
            await asyncio.sleep(self._BACKLOG_POLL)
        stats.last_inbound = self.clock()
        self.log.info("reads resumed", peer=self.peer, backlog=sequence.depth())

    async def _reader(self, live: _Live, reconnect: Address) -> str:
        gen = live.gen
        sequence = self._peer("sequence")
        route = self.adapter.route
        stats = self.stats
        clock = self.clock
        high = self.max_backlog
        while True:
            if sequence.depth() > high:
                await self._wait_for_backlog(sequence, high // 2)
            try:
                frames = await self.read()
            except (EOFError, ConnectionError, asyncio.IncompleteReadError) as exc:
                return f"connection lost: {type(exc).__name__}: {exc}".rstrip(": ")
            except Exception as exc:
                self.log.exception("transport read failed", peer=self.peer)
                return f"read failed: {exc!r}"
            stats.last_inbound = clock()
            stats.frames_in += len(frames)
            try:
                routed = route(frames)
            except Exception as exc:
                self.log.exception("adapter failed to route frames", peer=self.peer)
                stats.protocol_errors += 1
                return f"adapter failed to route frames: {exc!r}"
            if routed.errors:
                fatal = None
                for reason, is_fatal in routed.errors:
                    stats.protocol_errors += 1
                    self.log.warning(
                        "protocol error",
                        peer=self.peer,
                        reason=reason,
                        fatal=is_fatal,
                        total=stats.protocol_errors,
                    )
                    reconnect.tell(ProtocolFault(gen, reason, is_fatal))
                    if is_fatal and fatal is None:
                        fatal = reason
                if fatal is not None:
                    if routed.data:
                        sequence.tell(Inbound(gen, routed.data))
                    if routed.replies:
                        self._answer(live, routed.replies)
                    return f"protocol error: {fatal}"
            if routed.data:
                sequence.tell(Inbound(gen, routed.data))
            if routed.control:
                reconnect.tell(ControlEvents(gen, routed.control))
            if routed.replies:
                self._answer(live, routed.replies)

    def _answer(self, live: _Live, replies: list[Any]) -> None:
        for reply in replies:
            waiting = live.replies.pop(reply.key, None)
            if waiting is None or waiting.done():
                # Its call timed out, or nobody asked (a heartbeat's pong): counted.
                self.stats.unmatched_replies += 1
                self.log.debug(
                    "reply for no waiting call",
                    peer=self.peer,
                    key=reply.key,
                    total=self.stats.unmatched_replies,
                )
            elif reply.error is not None:
                waiting.set_exception(reply.error)
            else:
                waiting.set_result(reply.value)

    async def _writer(self, outq: asyncio.Queue[list[Any]]) -> None:
        while True:
            frames = await outq.get()
            while not outq.empty():
                frames.extend(outq.get_nowait())
            try:
                await self.write(frames)
                self.stats.frames_out += len(frames)
            except Exception as exc:  # noqa: BLE001 - the reader sees the closed socket
                self.log.warning("write failed", peer=self.peer, error=repr(exc))
                return


_CREATED = inspect.CORO_CREATED


def _release(waiting: dict[Hashable, Any], key: Hashable, answer: Any) -> None:
    if waiting.get(key) is answer:
        del waiting[key]


def _settle(
    future: concurrent.futures.Future[Any], result: Any = None, error: BaseException | None = None
) -> None:
    """Complete a caller's future unless it is done already (the caller may cancel it)."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class FrameCodec(Protocol):
    """The sans-I/O codec shape a TcpTransport drives (as in websockets and h11)."""

    def receive_data(self, data: bytes) -> None: ...

    def events(self) -> list[Any]: ...


class TcpTransport(Transport):
    """A TCP stream transport: bytes through a sans-I/O codec; frames to write are bytes.

    ``ssl``: a client context (``actorwire.actors.tls.client_context``) to speak TLS, the
    server's certificate checked against ``host``. A failed handshake (an untrusted
    certificate, a plaintext server) is a failed dial: the link redials with backoff.
    """

    if TYPE_CHECKING:
        from ssl import SSLContext  # noqa: PLC0415 - for the annotation only

    read_size = 65536

    def __init__(
        self,
        adapter: LinkAdapter,
        wiring: Wiring,
        host: str,
        port: int,
        codec: Callable[[], FrameCodec],
        ssl: SSLContext | None = None,
    ) -> None:
        super().__init__(adapter, wiring)
        self.host = host
        self.port = port
        self.ssl = ssl
        self._codec_factory = codec
        self._codec: FrameCodec | None = None
        self._reader_stream: asyncio.StreamReader | None = None
        self._writer_stream: asyncio.StreamWriter | None = None
        self.peer = f"{host}:{port}"

    async def open(self) -> None:
        self._codec = self._codec_factory()
        self._reader_stream, self._writer_stream = await asyncio.open_connection(
            self.host, self.port, ssl=self.ssl
        )

    async def read(self) -> list[Any]:
        reader, codec = self._reader_stream, self._codec
        assert reader is not None and codec is not None
        while True:
            data = await reader.read(self.read_size)
            if not data:
                raise EOFError("peer closed the connection")
            self.stats.bytes_in += len(data)
            codec.receive_data(data)
            events = codec.events()
            if events:
                return events

    async def write(self, frames: list[Any]) -> None:
        writer = self._writer_stream
        if writer is None:
            raise ConnectionError("not connected")
        writer.write(b"".join(frames))
        await writer.drain()

    async def close_connection(self) -> None:
        writer = self._writer_stream
        self._writer_stream = None
        self._reader_stream = None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
