"""Transport actors: one connection at a time, its I/O on the system's asyncio loop.

Commands arrive in the actor's mailbox (Connect, Send, Close); the socket work happens on
the I/O loop. Each read's frames are routed once on the loop and handed on with one tell
per read, not per frame. The transport reports Connected, ConnectFailed and Disconnected
to the link's reconnect actor, tagged with the connection's generation so stale reports
from an old connection are ignored.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..actor import Actor
from ..clock import Clock, monotonic
from .adapter import AuthFailed, AuthRefused

if TYPE_CHECKING:
    from ..address import Address
    from .adapter import LinkAdapter

__all__ = [
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


class Transport(Actor):
    """Base transport actor. Subclasses implement the four coroutines below.

    ``open`` connects (raise to fail), ``read`` returns the next decoded frames (raise
    EOFError or ConnectionError when the peer closes), ``write`` sends frames, and
    ``close_connection`` releases the connection. All four run on the I/O loop.
    """

    connect_timeout = 10.0
    # Reads pause while more than this many reads wait, undelivered, at the sequence actor
    # (its consumer is slow: a full BACKPRESSURE mailbox); they resume below half of it.
    # The socket then stops being read, so the peer sees backpressure rather than the
    # backlog growing in memory. The Link sets it (``max_backlog``).
    max_backlog = 1000
    _BACKLOG_POLL = 0.005  # seconds between looks at the backlog while paused

    def __init__(self, adapter: LinkAdapter) -> None:
        super().__init__()
        self.adapter = adapter
        self.peer = "?"
        self.stats = LinkStats()
        self.clock: Clock = monotonic
        self._peers: _Peers | None = None
        self._gen = 0
        self._task: asyncio.Task[None] | None = None
        self._outq: asyncio.Queue[list[Any]] | None = None

    def wire(self, peers: dict[str, str], stats: LinkStats, clock: Clock) -> None:
        """Called by the Link before start: sibling names, shared stats, the clock."""
        self._peers = _Peers(peers)
        self.stats = stats
        self.clock = clock

    def _peer(self, role: str) -> Address:
        assert self._peers is not None, "transport used outside a Link"
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

    # -- actor side ---------------------------------------------------------------------

    def on_receive(self, message: Any) -> None:
        if isinstance(message, Send):
            self._send(message.frames)
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
        outq = self._outq
        if outq is None:
            # Subscriptions are replayed on reconnect; anything else sent while the link is
            # down is refused here, counted and logged, never queued without bound.
            self.stats.frames_unsent += len(frames)
            self.log.warning(
                "send while not connected: frames not sent",
                frames=len(frames),
                total=self.stats.frames_unsent,
            )
            return
        self.system.io.call_soon(outq.put_nowait, frames)

    def _connect(self, gen: int) -> None:
        self._close()
        self._gen = gen
        self._outq = None
        self._task = self.system.io.submit(self._connection(gen))  # type: ignore[assignment]

    def _close(self) -> None:
        task = self._task
        self._task = None
        self._outq = None
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
        outq: asyncio.Queue[list[Any]] = asyncio.Queue()
        self._outq = outq
        writer = asyncio.ensure_future(self._writer(outq))
        reconnect.tell(Connected(gen, self.peer))
        reason = "closed"
        try:
            reason = await self._reader(gen, reconnect)
        except asyncio.CancelledError:
            reason = "closed by the link"
            raise
        finally:
            writer.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self.close_connection()
            if reason != "closed by the link":
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

    async def _reader(self, gen: int, reconnect: Address) -> str:
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
                    return f"protocol error: {fatal}"
            if routed.data:
                sequence.tell(Inbound(gen, routed.data))
            if routed.control:
                reconnect.tell(ControlEvents(gen, routed.control))

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


class FrameCodec(Protocol):
    """The sans-I/O codec shape a TcpTransport drives (as in websockets and h11)."""

    def receive_data(self, data: bytes) -> None: ...

    def events(self) -> list[Any]: ...


class TcpTransport(Transport):
    """A TCP stream transport: bytes through a sans-I/O codec; frames to write are bytes."""

    read_size = 65536

    def __init__(
        self, adapter: LinkAdapter, host: str, port: int, codec: Callable[[], FrameCodec]
    ) -> None:
        super().__init__(adapter)
        self.host = host
        self.port = port
        self._codec_factory = codec
        self._codec: FrameCodec | None = None
        self._reader_stream: asyncio.StreamReader | None = None
        self._writer_stream: asyncio.StreamWriter | None = None
        self.peer = f"{host}:{port}"

    async def open(self) -> None:
        self._codec = self._codec_factory()
        self._reader_stream, self._writer_stream = await asyncio.open_connection(
            self.host, self.port
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
