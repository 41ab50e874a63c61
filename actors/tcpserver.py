"""The TCP server of the kit: the I/O shell around :mod:`actorwire.actors.serving`.

Rules:

1. Accept, then one actor per connection. Each accepted connection (after its TLS
   handshake, when the server has an ``ssl`` context) gets a :class:`ServerConnection` (the
   socket side, on the system's I/O loop) and an actor on the system's dispatcher that owns
   the connection's :class:`Session` (the protocol logic, built by the server's
   ``session_factory``). The actor is a thin shell: it hands each read to
   ``Session.on_data``, the end to ``Session.on_closed``, once, and, when the session
   asked for it (``notify_writable``), room in the outbox to ``on_writable``.
2. Every byte for a peer goes through its :class:`~actorwire.actors.serving.Outbox`:
   ``ServerConnection.send`` (from any thread) only queues there, and one writer task per
   connection drains it to the socket a chunk at a time, waiting for the socket to take
   each chunk. A connection holds at most ``max_outbox_bytes`` plus two ``write_chunk``
   sizes (and one frame, for a frame larger than a chunk). A send on the loop thread itself
   writes at once while the socket takes it, so what one loop callback sends is written
   when it returns.
3. A slow reader is dropped, never waited for: at once when its outbox would pass
   ``max_outbox_bytes``, and when it has taken nothing for ``stall_deadline`` seconds while
   data waited, however much it sends meanwhile (pings). Each drop is counted in
   :class:`ServerStats` and logged with the peer's address.
4. Reads are bounded too: while ``max_pending_reads`` reads wait for the connection's actor,
   the socket is not read, so TCP pushes back on the peer instead of memory growing.
5. Bad input never crashes the server: a failed TLS handshake (a plaintext client, a client
   that does not trust us), a session that raises or a peer that vanishes ends that one
   connection, counted and logged with the peer's address.
6. Sessions never touch the loop or a socket; the time the outbox needs comes from the
   system's clock. Fan-out is the session's: a :class:`~actorwire.actors.serving.TopicIndex`
   of sessions, so a publish costs the matching subscribers only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import ssl as _ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from .actor import Actor
from .serving import Outbox

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from .address import Address
    from .system import ActorSystem

__all__ = [
    "DEFAULT_MAX_OUTBOX_BYTES",
    "DEFAULT_STALL_DEADLINE",
    "DEFAULT_WRITE_CHUNK",
    "PacedSession",
    "ServerConnection",
    "ServerStats",
    "Session",
    "SessionFactory",
    "TcpServer",
]

DEFAULT_MAX_OUTBOX_BYTES = 4 * 1024 * 1024
"""Bytes a connection's outbox may hold before its peer is dropped as too slow (4 MiB)."""
DEFAULT_STALL_DEADLINE = 10.0
"""Seconds a peer may take nothing while data waits for it before it is dropped."""
DEFAULT_WRITE_CHUNK = 64 * 1024
"""Bytes handed to the socket per write, and the transport buffer's high-water mark."""

_IDS = itertools.count(1)

# A connection's states: OPEN takes frames; CLOSING writes what waits, then closes (no new
# frames); CLOSED is over (aborted, dropped, or the peer went away).
_OPEN, _CLOSING, _CLOSED = "open", "closing", "closed"


class Session(Protocol):
    """A connection's protocol logic; its actor calls it, one call at a time."""

    def on_data(self, data: bytes) -> None:
        """Bytes read from the peer (one read: any split of the peer's frames)."""

    def on_closed(self, reason: str) -> None:
        """The connection is over (called once, last)."""


class PacedSession(Session, Protocol):
    """A session that sends more than its outbox holds (a long history) in slices: it asks
    ``ServerConnection.notify_writable()`` and sends the next slice from ``on_writable``."""

    def on_writable(self) -> None:
        """The outbox is down to half of ``max_outbox_bytes``: there is room for more."""


SessionFactory = Callable[["ServerConnection"], Session]
"""Builds the session of a new connection; runs on the I/O loop, so it must be quick."""


class ServerStats:
    """A server's counters (thread-safe; they only grow). A FeedServer keeps one across
    restarts by passing it to each TcpServer it makes."""

    __slots__ = (
        "_lock",
        "accepted",
        "bytes_in",
        "bytes_out",
        "closed",
        "dropped_overflow",
        "dropped_stalled",
        "peak_buffered_bytes",
        "peak_outbox_bytes",
        "session_errors",
        "tls_failures",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted = 0  # connections that got a session
        self.closed = 0  # of those, ended
        self.dropped_overflow = 0  # slow readers dropped: outbox over max_outbox_bytes
        self.dropped_stalled = 0  # slow readers dropped: nothing taken for stall_deadline
        self.tls_failures = 0  # TLS handshakes that failed (plaintext, untrusted, timed out)
        self.session_errors = 0  # connections ended because their session raised
        self.bytes_in = 0
        self.bytes_out = 0
        self.peak_outbox_bytes = 0  # most bytes any outbox held
        self.peak_buffered_bytes = 0  # most bytes any connection held (outbox + transport)

    @property
    def dropped_slow_readers(self) -> int:
        """Peers dropped for not reading, for either reason."""
        return self.dropped_overflow + self.dropped_stalled

    def count(self, field: str, n: int = 1) -> int:
        """Add ``n`` to counter ``field``; returns the new total."""
        with self._lock:
            total: int = getattr(self, field) + n
            setattr(self, field, total)
            return total

    def _peak(self, outbox: int, buffered: int) -> None:
        if outbox > self.peak_outbox_bytes or buffered > self.peak_buffered_bytes:
            with self._lock:
                self.peak_outbox_bytes = max(self.peak_outbox_bytes, outbox)
                self.peak_buffered_bytes = max(self.peak_buffered_bytes, buffered)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            out = {k: getattr(self, k) for k in self.__slots__ if k != "_lock"}
        out["dropped_slow_readers"] = out["dropped_overflow"] + out["dropped_stalled"]
        return out

    def __repr__(self) -> str:
        return f"ServerStats({self.as_dict()})"


@dataclass(frozen=True, slots=True)
class _Received:
    data: bytes


@dataclass(frozen=True, slots=True)
class _Closed:
    reason: str


@dataclass(frozen=True, slots=True)
class _Writable:
    pass


class ServerConnection:
    """One accepted connection: its outbox, writer and reader. ``send``, ``close`` and
    ``abort`` may be called from any thread; the rest runs on the I/O loop."""

    def __init__(
        self, server: TcpServer, writer: asyncio.StreamWriter, peer: str, name: str
    ) -> None:
        self.peer = peer
        self.name = name
        self.frames_sent = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self._server = server
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._clock = server.clock
        self._chunk = server.write_chunk
        self._max_pending = server.max_pending_reads
        self._stats = server.stats
        self._lock = threading.Lock()
        # under _lock
        self._outbox = Outbox(server.max_outbox_bytes, server.stall_deadline)
        self._state = _OPEN
        self._end_reason: str | None = None
        self._dropped = False
        self._closing_since = 0.0
        self._writer_idle = False
        self._pending_reads = 0
        self._reads_paused = False
        self._transport_buffered = 0
        self._want_writable = False
        # on the loop
        self._wake = asyncio.Event()
        self._resume = asyncio.Event()
        self._done: asyncio.Future[None] = self._loop.create_future()
        self.address: Address | None = None  # the connection's actor, once spawned

    def __repr__(self) -> str:
        return f"<ServerConnection {self.name} peer={self.peer} {self._state}>"

    # -- any thread ---------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once ``close`` or ``abort`` was called or the connection ended."""
        return self._state != _OPEN

    @property
    def outbox_bytes(self) -> int:
        """Bytes queued for the peer and not yet handed to the socket."""
        return self._outbox.bytes

    def send(self, frames: bytes | Iterable[bytes]) -> bool:
        """Queue bytes (one frame, or several in order) for the peer. False when the
        connection is closed or closing, or when they would take the outbox past
        ``max_outbox_bytes``: the peer is then dropped (counted and logged)."""
        batch = [frames] if isinstance(frames, bytes) else list(frames)
        now = self._clock()
        with self._lock:
            if self._state != _OPEN:
                return False
            outbox = self._outbox
            for frame in batch:
                if not outbox.put(frame, now):
                    break
            refused = outbox.refused
            self._stats._peak(outbox.bytes, outbox.bytes + self._transport_buffered)
            idle = self._writer_idle and not refused
            on_loop = threading.get_ident() == self._loop_thread
            if idle and not on_loop:
                self._writer_idle = False
        if refused:
            self._server._drop(
                self,
                "overflow",
                f"its outbox would pass max_outbox_bytes={outbox.max_bytes}",
            )
            return False
        if idle:
            if on_loop:
                self._write_now()
            else:
                self._call_soon(self._wake.set)
        return True

    @property
    def room(self) -> int:
        """Bytes the outbox takes before its peer would be dropped as too slow."""
        with self._lock:
            return self._outbox.max_bytes - self._outbox.bytes

    def notify_writable(self) -> None:
        """Have the session's ``on_writable`` called (on its actor) once the outbox is down
        to half of ``max_outbox_bytes``: at once if it is already. For sending more than
        the outbox holds, a slice at a time, without the peer ever counting as slow."""
        with self._lock:
            if self._state != _OPEN:
                return
            now = self._outbox.bytes <= self._outbox.max_bytes // 2
            self._want_writable = not now
        if now and self.address is not None:
            self.address.tell(_Writable())

    def _took(self) -> None:
        """After a take (``_lock`` held): tell the actor if its session waits for room."""
        if self._want_writable and self._outbox.bytes <= self._outbox.max_bytes // 2:
            self._want_writable = False
            if self.address is not None:
                self.address.tell(_Writable())

    def close(self) -> None:
        """Close after what is queued has been written; nothing more is taken."""
        with self._lock:
            if self._state != _OPEN:
                return
            self._state = _CLOSING
            self._end_reason = "closed by the server"
            self._closing_since = self._clock()
            wake = self._writer_idle
            self._writer_idle = False
        if wake:
            self._call_soon(self._wake.set)

    def abort(self, reason: str) -> None:
        """Close at once, dropping whatever is queued."""
        self._call_soon(self._abort, reason)

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: so is the connection
            self._loop.call_soon_threadsafe(fn, *args)

    def _read_handled(self) -> None:
        """The actor is done with one read: reads resume once the backlog is down to half."""
        with self._lock:
            self._pending_reads -= 1
            resume = self._reads_paused and self._pending_reads <= self._max_pending // 2
            if resume:
                self._reads_paused = False
        if resume:
            self._call_soon(self._resume.set)

    def _finished(self) -> None:
        """The actor has handled the close (or was stopped): the connection task may end."""
        self._call_soon(_resolve, self._done)

    def _overdue(self, now: float) -> str | None:
        """Why the peer counts as stalled at ``now``, or None."""
        with self._lock:
            if self._state == _CLOSED or self._dropped:
                return None
            box = self._outbox
            if box.stalled(now):
                return f"it took nothing for {box.stall_deadline}s while {box.bytes} bytes waited"
            if self._state == _CLOSING and now - self._closing_since >= box.stall_deadline:
                return f"it did not take its last frames within {box.stall_deadline}s"
        return None

    # -- on the loop --------------------------------------------------------------------

    def _abort(self, reason: str) -> None:
        with self._lock:
            if self._end_reason is None:
                self._end_reason = reason
            self._state = _CLOSED
        self._writer.transport.abort()
        self._resume.set()  # a paused reader sees the end
        self._wake.set()

    def _write_now(self) -> None:
        """A send on the loop thread while the writer task waits for data: hand what waits to
        the socket now, while the transport's buffer is under ``write_chunk`` (so what one
        call sends is written by the time it returns); past that, the writer task takes over
        and waits for the socket."""
        transport = self._writer.transport
        while True:
            with self._lock:
                if not self._writer_idle or self._state != _OPEN:
                    return
                if transport.get_write_buffer_size() >= self._chunk:
                    self._writer_idle = False
                    break
                frames = self._outbox.take(self._chunk, self._clock())
                if not frames:
                    return
                self._took()
            self._write_frames(frames)
        self._wake.set()

    def _write_frames(self, frames: list[bytes]) -> None:
        data = b"".join(frames)
        self.frames_sent += len(frames)  # counted first: the peer may read it at once
        self.bytes_sent += len(data)
        self._stats.count("bytes_out", len(data))
        transport = self._writer.transport
        transport.write(data)
        buffered = transport.get_write_buffer_size()
        with self._lock:
            self._transport_buffered = buffered
            self._stats._peak(self._outbox.bytes, self._outbox.bytes + buffered)

    async def _write(self) -> None:
        """Drain the outbox to the socket until the connection ends or closes."""
        writer = self._writer
        transport = writer.transport
        clock = self._clock
        while True:
            with self._lock:
                frames = self._outbox.take(self._chunk, clock())
                if frames:
                    self._took()
                else:
                    if self._state != _OPEN:
                        break
                    self._writer_idle = True
                    self._wake.clear()
            if not frames:
                await self._wake.wait()
                continue
            self._write_frames(frames)
            await writer.drain()
            self._transport_buffered = transport.get_write_buffer_size()
        if self._state == _CLOSING:
            writer.close()  # the transport closes once its buffer is written

    async def _read(self, reader: asyncio.StreamReader, read_size: int) -> str:
        """Hand each read to the actor; returns why the connection ended."""
        address = self.address
        assert address is not None
        while True:
            with self._lock:
                if self._state == _CLOSED:
                    return self._end_reason or "closed"
                paused = self._pending_reads >= self._max_pending
                if paused:
                    self._reads_paused = True
                    self._resume.clear()
            if paused:
                await self._resume.wait()
                continue
            try:
                data = await reader.read(read_size)
            except OSError as exc:  # ConnectionError, ssl.SSLError
                return self._end_reason or f"connection lost: {type(exc).__name__}: {exc}"
            if not data:
                return self._end_reason or "closed by the peer"
            self.bytes_received += len(data)
            self._stats.count("bytes_in", len(data))
            with self._lock:
                self._pending_reads += 1
            address.tell(_Received(data))


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _ConnectionActor(Actor):
    """The thin shell of one connection: reads to the session, then its close, once."""

    def __init__(self, conn: ServerConnection, session: Session) -> None:
        super().__init__()
        self._conn = conn
        self._session = session
        self._ended = False

    def on_receive(self, message: Any) -> None:
        if type(message) is _Received:
            conn = self._conn
            try:
                if not conn.closed:
                    self._session.on_data(message.data)
            except Exception as exc:  # noqa: BLE001 - a session bug ends its connection only
                conn._server._session_failed(conn, exc)
            finally:
                conn._read_handled()
        elif type(message) is _Writable:
            on_writable = getattr(self._session, "on_writable", None)
            conn = self._conn
            try:
                if on_writable is not None and not conn.closed:
                    on_writable()
            except Exception as exc:  # noqa: BLE001 - a session bug ends its connection only
                conn._server._session_failed(conn, exc)
        elif type(message) is _Closed:
            self._end(message.reason)
            self.system.stop(self.address)
        else:
            super().on_receive(message)

    def on_stop(self) -> None:
        if not self._ended:  # stopped with the system while the connection was open
            self._conn.abort("server shut down")
            self._end("server shut down")

    def _end(self, reason: str) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            self._session.on_closed(reason)
        except Exception:
            self.log.exception("session failed in on_closed", peer=self._conn.peer)
        finally:
            self._conn._finished()


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


class TcpServer:
    """A TCP (or TLS) server on an actor system's I/O loop: one actor per connection,
    outbound bytes through a byte-bounded outbox, slow readers dropped (see the module's
    rules).

    ``session_factory(conn)`` makes each connection's session. ``ssl`` is a server context
    (:func:`actorwire.actors.tls.server_context`); a client that fails its handshake within
    ``handshake_timeout`` is counted and closed. ``send_buffer`` sets the kernel's send
    buffer of each connection (None: the kernel's autotuning). ``stats`` may be shared
    with an earlier server so counters run on across restarts; ``on_change()`` is called
    (on any thread) whenever a connection opens or ends or a counter of a failure moves.
    ``start`` and ``stop`` block; call them from any thread but the I/O loop's.
    """

    call_timeout = 10.0
    """Seconds ``start`` and ``stop`` wait for the loop."""
    close_timeout = 5.0
    """Seconds a closed connection waits for its actor to handle the close."""

    def __init__(
        self,
        system: ActorSystem,
        session_factory: SessionFactory,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl: _ssl.SSLContext | None = None,
        name: str = "tcpserver",
        max_outbox_bytes: int = DEFAULT_MAX_OUTBOX_BYTES,
        stall_deadline: float = DEFAULT_STALL_DEADLINE,
        write_chunk: int = DEFAULT_WRITE_CHUNK,
        read_size: int = 65536,
        max_pending_reads: int = 64,
        handshake_timeout: float = 10.0,
        send_buffer: int | None = None,
        stats: ServerStats | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        if not stall_deadline > 0:
            raise ValueError(
                f"TcpServer stall_deadline must be > 0 seconds, got {stall_deadline!r}"
            )
        for what, value in (
            ("max_outbox_bytes", max_outbox_bytes),
            ("write_chunk", write_chunk),
            ("read_size", read_size),
            ("max_pending_reads", max_pending_reads),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TcpServer {what} must be an int >= 1, got {value!r}")
        if send_buffer is not None and (
            isinstance(send_buffer, bool) or not isinstance(send_buffer, int) or send_buffer < 1
        ):
            raise ValueError(
                f"TcpServer send_buffer must be an int >= 1 or None, got {send_buffer!r}"
            )
        if not handshake_timeout > 0:
            raise ValueError(
                f"TcpServer handshake_timeout must be > 0 seconds, got {handshake_timeout!r}"
            )
        if ssl is not None and not isinstance(ssl, _ssl.SSLContext):
            raise TypeError(f"TcpServer ssl must be an ssl.SSLContext or None, got {ssl!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"TcpServer port must be an int in 0..65535, got {port!r}")
        self.system = system
        self.host = host
        self.name = name
        self.ssl = ssl
        self.max_outbox_bytes = max_outbox_bytes
        self.stall_deadline = float(stall_deadline)
        self.write_chunk = write_chunk
        self.read_size = read_size
        self.max_pending_reads = max_pending_reads
        self.handshake_timeout = float(handshake_timeout)
        self.send_buffer = send_buffer
        self.stats = stats if stats is not None else ServerStats()
        self.clock = system.clock
        self._factory = session_factory
        self._on_change = on_change
        self._port = port
        self._log: FilteringBoundLogger = structlog.get_logger("actorwire.server").bind(server=name)
        # on the loop
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._listening = False
        self._tasks: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._conn_of: dict[asyncio.Task[Any], ServerConnection] = {}
        self._conns: dict[ServerConnection, None] = {}

    def __repr__(self) -> str:
        tls = " tls" if self.ssl is not None else ""
        return f"<TcpServer {self.name} {self.host}:{self._port}{tls} conns={len(self._conns)}>"

    # -- control (any thread but the loop's) ----------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the one asked for until the first ``start``)."""
        return self._port

    @property
    def listening(self) -> bool:
        return self._listening

    def connections(self) -> list[ServerConnection]:
        """The open connections (a snapshot)."""
        return list(self._conns)

    def start(self) -> None:
        """Listen (on the same port again after a ``stop``); no-op while listening."""
        self.system.io.run(self._listen(), self.call_timeout)

    def stop(self) -> None:
        """Stop listening and end every connection; returns once each connection's actor
        has handled its close. Idempotent."""
        if not self.system.io.alive:
            return
        self.system.io.run(self._close("server stopped"), self.call_timeout)

    # -- loop side ------------------------------------------------------------------------

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:  # noqa: BLE001 - a listener cannot break the server
                self._log.exception("on_change listener failed")

    async def _listen(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._accept, self.host, self._port, reuse_address=True
        )
        self._port = self._server.sockets[0].getsockname()[1]
        self._listening = True
        self._sweeper = asyncio.ensure_future(self._sweep())
        self._log.info("listening", address=f"{self.host}:{self._port}", tls=self.ssl is not None)
        self._changed()

    async def _close(self, reason: str) -> None:
        self._listening = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
        for task, writer in list(self._tasks.items()):
            conn = self._conn_of.get(task)
            if conn is not None:
                conn._abort(reason)
            else:
                writer.transport.abort()
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.close_timeout + 1.0)
            if pending:
                self._log.warning("connections did not all end in time", pending=len(pending))
        self._changed()

    async def _sweep(self) -> None:
        """Drop every peer whose outbox is stalled, a few times per ``stall_deadline``."""
        interval = min(self.stall_deadline / 4, 1.0)
        while True:
            await asyncio.sleep(interval)
            now = self.clock()
            for conn in list(self._conns):
                why = conn._overdue(now)
                if why is not None:
                    self._drop(conn, "stalled", why)

    def _drop(self, conn: ServerConnection, kind: str, why: str) -> None:
        """Drop a slow reader (any thread): counted, logged with its address, aborted."""
        with conn._lock:
            if conn._dropped or conn._state == _CLOSED:
                return
            conn._dropped = True
            waiting = conn._outbox.bytes
        total = self.stats.count("dropped_overflow" if kind == "overflow" else "dropped_stalled")
        self._log.warning(
            "slow reader dropped",
            peer=conn.peer,
            reason=why,
            kind=kind,
            waiting_bytes=waiting,
            total=total,
        )
        conn.abort(f"slow reader dropped: {why}")
        self._changed()

    def _session_failed(self, conn: ServerConnection, exc: Exception) -> None:
        total = self.stats.count("session_errors")
        self._log.error(
            "session failed: connection closed",
            peer=conn.peer,
            error=repr(exc),
            total=total,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        conn.abort(f"session failed: {type(exc).__name__}")
        self._changed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks[task] = writer  # also keeps the task referenced until it ends
        peer = _peer_name(writer)
        try:
            await self._serve(task, reader, writer, peer)
        except Exception:  # noqa: BLE001 - one connection's failure is logged, not spread
            self._log.exception("connection failed", peer=peer)
            writer.transport.abort()
        finally:
            self._tasks.pop(task, None)
            self._conn_of.pop(task, None)

    async def _serve(
        self,
        task: asyncio.Task[Any],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
    ) -> None:
        if not self._listening:
            writer.transport.abort()
            return
        if self.send_buffer is not None:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        if self.ssl is not None and not await self._handshake(writer, peer):
            return
        if not self._listening:
            writer.transport.abort()
            return
        writer.transport.set_write_buffer_limits(high=self.write_chunk)
        conn = ServerConnection(self, writer, peer, f"{self.name}.conn-{next(_IDS)}")
        self._conn_of[task] = conn
        try:
            session = self._factory(conn)
        except Exception as exc:  # noqa: BLE001 - refused, counted and logged
            self._session_failed(conn, exc)
            return
        try:
            conn.address = self.system.spawn(_ConnectionActor, conn, session, name=conn.name)
        except Exception as exc:  # noqa: BLE001 - e.g. the system is shutting down
            self._log.warning("connection refused: no actor", peer=peer, error=repr(exc))
            conn._abort("no actor for the connection")
            with contextlib.suppress(Exception):
                session.on_closed("no actor for the connection")
            return
        self._conns[conn] = None
        self.stats.count("accepted")
        self._log.debug("connection opened", peer=peer, actor=conn.name)
        self._changed()
        writing = asyncio.ensure_future(conn._write())
        reason = "closed"
        try:
            reason = await conn._read(reader, self.read_size)
        finally:
            conn._abort(reason)
            writing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writing
            await self._end(conn, reason)

    async def _handshake(self, writer: asyncio.StreamWriter, peer: str) -> bool:
        assert self.ssl is not None
        try:
            await writer.start_tls(self.ssl, ssl_handshake_timeout=self.handshake_timeout)
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            writer.transport.abort()
            if not self._listening:
                return False  # cut short by stop(): not the client's failure
            total = self.stats.count("tls_failures")
            self._log.warning(
                "TLS handshake failed: connection closed",
                peer=peer,
                error=f"{type(exc).__name__}: {exc}",
                total=total,
            )
            self._changed()
            return False
        return True

    async def _end(self, conn: ServerConnection, reason: str) -> None:
        """Tell the actor the connection is over and wait until it has handled that."""
        address = conn.address
        assert address is not None
        try:
            if address.is_alive():
                address.tell(_Closed(reason))
                await asyncio.wait_for(asyncio.shield(conn._done), self.close_timeout)
        except TimeoutError:
            self._log.warning("connection actor did not handle the close in time", peer=conn.peer)
        finally:
            self._conns.pop(conn, None)
            self.stats.count("closed")
            self._log.debug("connection closed", peer=conn.peer, reason=reason)
            self._changed()
