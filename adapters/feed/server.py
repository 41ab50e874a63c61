"""An embedded feed server with fault injection: kill, restart, silence, skip, repeat,
reorder and garbage. Bound to 127.0.0.1, optionally over TLS.

It is built on the kit's :class:`~actorwire.actors.tcpserver.TcpServer`: one actor per
connection runs that client's ``_FeedSession`` (its codec and login), every frame for a
client goes through the client's byte-bounded outbox, and a client that stops reading is
dropped (``max_outbox_bytes``, ``stall_deadline``), counted and logged. Published frames
fan out through a :class:`~actorwire.actors.serving.TopicIndex` of subscriptions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Self, TypeVar

from ...actors.serving import TopicIndex
from ...actors.system import ActorSystem
from ...actors.tcpserver import (
    DEFAULT_MAX_OUTBOX_BYTES,
    DEFAULT_STALL_DEADLINE,
    ServerConnection,
    ServerStats,
    TcpServer,
)
from ...actors.tls import StrPath, server_context
from .protocol import (
    HOST,
    Auth,
    FeedCodec,
    Frame,
    Garbage,
    Ping,
    Replay,
    Sub,
    _field,
)

__all__ = ["FeedServer"]

_T = TypeVar("_T")


class _FeedSession:
    """One client: its codec and login. Its connection actor calls it; the server's lock
    guards everything it shares."""

    __slots__ = ("authed", "catchup", "codec", "conn", "server")

    def __init__(self, server: FeedServer, conn: ServerConnection) -> None:
        self.server = server
        self.conn = conn
        self.codec = FeedCodec(role="server")
        self.authed = False
        self.catchup: dict[str, int] = {}  # stream -> next seq of its history to send

    def on_data(self, data: bytes) -> None:
        self.server._on_data(self, data)

    def on_writable(self) -> None:
        self.server._on_writable(self)

    def on_closed(self, reason: str) -> None:
        self.server._on_closed(self)

    def __repr__(self) -> str:
        return f"<_FeedSession {self.conn.peer} authed={self.authed}>"


class FeedServer:
    """Controllable feed server on 127.0.0.1.

    Control methods are thread-safe and return once their effect has happened on the loop:
    what they send is handed to each client's socket (or, for a client that has fallen
    behind, queued in its outbox). Every published frame is retained
    forever (per stream, seq from 1) for SUB and REPLAY.

    ``max_outbox_bytes`` and ``stall_deadline`` bound what waits for a client: one whose
    outbox would pass the bound, or that takes nothing for ``stall_deadline`` seconds while
    frames wait (however much it pings), is dropped and counted (``slow_readers_dropped``).
    A SUB sends the retained history a slice at a time as the client takes it (a history
    larger than the bound is fine), then goes live; a REPLAY's range is queued at once, so it
    must fit in the bound.
    ``certfile`` and ``keyfile`` (PEM) serve over TLS; a client whose handshake fails is
    counted (``tls_failures``) and closed. ``system`` runs the server on that actor
    system's dispatcher and I/O loop instead of one of its own.
    """

    CALL_TIMEOUT = 10.0

    def __init__(
        self,
        streams: Iterable[str] = ("A",),
        token: str = "secret",
        port: int = 0,
        *,
        max_outbox_bytes: int = DEFAULT_MAX_OUTBOX_BYTES,
        stall_deadline: float = DEFAULT_STALL_DEADLINE,
        certfile: StrPath | None = None,
        keyfile: StrPath | None = None,
        system: ActorSystem | None = None,
    ) -> None:
        names = tuple(streams)
        if not names:
            raise ValueError("at least one stream is required")
        for name in names:
            _field("stream", name)
        self.token = _field("token", token)
        self.streams = names
        if (certfile is None) != (keyfile is None):
            given = "certfile" if keyfile is None else "keyfile"
            raise ValueError(f"FeedServer TLS needs both certfile and keyfile; got only {given}")
        self._ssl = server_context(certfile, keyfile) if certfile and keyfile else None
        if (
            isinstance(max_outbox_bytes, bool)
            or not isinstance(max_outbox_bytes, int)
            or max_outbox_bytes < 1
        ):
            raise ValueError(
                f"FeedServer max_outbox_bytes must be an int >= 1, got {max_outbox_bytes!r}"
            )
        if not stall_deadline > 0:
            raise ValueError(
                f"FeedServer stall_deadline must be > 0 seconds, got {stall_deadline!r}"
            )
        self.max_outbox_bytes = max_outbox_bytes
        self.stall_deadline = float(stall_deadline)
        self._port = port
        self._system_arg = system
        self._history: dict[str, list[bytes]] = {name: [] for name in names}
        # Shared state, guarded by the lock of _cond (control methods and sessions alike).
        self._sessions: dict[_FeedSession, None] = {}
        self._index: TopicIndex[str, _FeedSession] = TopicIndex()
        self._silent = False
        self._skip = 0
        self._repeat = 0
        self._reorder = 0
        self._held: list[tuple[str, bytes]] = []
        self._auth_failures = 0
        self._garbage_received = 0
        self._frames_received = 0
        self._subscriptions = 0
        self._replay_requests: list[tuple[str, int, int]] = []
        self._version = 0
        self._cond = threading.Condition(threading.RLock())
        self._stats = ServerStats()  # runs on across kill, restart, stop and start
        # lifecycle
        self._control = threading.RLock()
        self._system: ActorSystem | None = None
        self._tcp: TcpServer | None = None

    # -- lifecycle --

    @property
    def port(self) -> int:
        """The bound port (the configured one, 0 by default, until first started)."""
        return self._port

    @property
    def tls(self) -> bool:
        """True when the server speaks TLS (``certfile`` and ``keyfile`` given)."""
        return self._ssl is not None

    @property
    def running(self) -> bool:
        """True while started (even if killed)."""
        return self._tcp is not None

    @property
    def listening(self) -> bool:
        """True while accepting connections (False after ``kill`` until ``restart``)."""
        tcp = self._tcp
        return tcp is not None and tcp.listening

    def start(self) -> None:
        """Start (its actor system, unless one was given) and listen; no-op if running."""
        with self._control:
            if self._tcp is not None:
                return
            own = self._system_arg is None
            system = ActorSystem("FeedServer") if own else self._system_arg
            assert system is not None
            tcp = TcpServer(
                system,
                self._open_session,
                host=HOST,
                port=self._port,
                ssl=self._ssl,
                name="feed",
                max_outbox_bytes=self.max_outbox_bytes,
                stall_deadline=self.stall_deadline,
                stats=self._stats,
                on_change=self._notify,
            )
            tcp.call_timeout = self.CALL_TIMEOUT
            try:
                self._check_thread(system)
                tcp.start()
            except BaseException:
                if own:
                    system.shutdown(self.CALL_TIMEOUT)
                raise
            self._system, self._tcp = system, tcp
            self._port = tcp.port

    def stop(self) -> None:
        """Close the listener and every connection and stop its own actor system (threads
        joined); idempotent."""
        with self._control:
            tcp, system = self._tcp, self._system
            if tcp is None or system is None:
                return
            self._check_thread(system)
            try:
                tcp.stop()
            finally:
                self._tcp = self._system = None
                if self._system_arg is None:
                    system.shutdown(self.CALL_TIMEOUT)
                    if system.io.alive:
                        raise RuntimeError("FeedServer loop thread did not stop")

    def kill(self) -> None:
        """Abruptly drop the listener and every connection; history is kept until restart."""
        with self._control:
            tcp = self._tcp
            if tcp is None:
                return
            self._check_thread(tcp.system)
            tcp.stop()

    def restart(self) -> None:
        """Listen again on the same port (killing first if still up); starts if stopped."""
        with self._control:
            tcp = self._tcp
            if tcp is None:
                self.start()
                return
            self._check_thread(tcp.system)
            tcp.stop()
            tcp.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- publishing and fault injection --

    def publish(
        self, stream: str, n: int = 1, payload_fn: Callable[[int], str] | None = None
    ) -> list[int]:
        """Append ``n`` frames to ``stream`` and send them live; returns their seqs.

        ``payload_fn(seq)`` gives each payload (default ``f"{stream}-{seq}"``).
        """
        if stream not in self._history:
            raise KeyError(f"unknown stream {stream!r}")
        if n < 0:
            raise ValueError("n must be >= 0")
        return self._call(lambda: self._publish(stream, n, payload_fn))

    def skip_next(self, k: int = 1) -> None:
        """The next ``k`` published frames are retained but not sent live (a gap)."""
        k = self._check_k(k)
        self._call(lambda: setattr(self, "_skip", self._skip + k))

    def repeat_next(self, k: int = 1) -> None:
        """Each of the next ``k`` published frames is sent twice."""
        k = self._check_k(k)
        self._call(lambda: setattr(self, "_repeat", self._repeat + k))

    def reorder_next(self, k: int = 2) -> None:
        """Hold the next ``k`` published frames and send them in reverse once all ``k`` exist."""
        k = self._check_k(k)
        self._call(lambda: setattr(self, "_reorder", self._reorder + k))

    def clear_faults(self) -> None:
        """Cancel pending skip/repeat/reorder; frames held for reordering are sent (reversed)."""

        def clear() -> None:
            self._skip = self._repeat = self._reorder = 0
            self._flush_held()

        self._call(clear)

    def go_silent(self) -> None:
        """Ignore every command (no replies, not even PONG) and send no data; keep sockets."""
        self._call(lambda: setattr(self, "_silent", True))

    def resume(self) -> None:
        """Answer again; nothing missed while silent is sent."""
        self._call(lambda: setattr(self, "_silent", False))

    def send_garbage(self, data: bytes = b"\x00\xffnot a frame\n") -> None:
        """Write raw bytes to every open connection (even while silent)."""
        raw = bytes(data)

        def write() -> None:
            for session in list(self._sessions):
                session.conn.send(raw)

        self._call(write)

    # -- introspection --

    def connections(self) -> int:
        """Number of currently open client connections."""
        with self._cond:
            return len(self._sessions)

    @property
    def auth_failures(self) -> int:
        """Number of AUTH commands with a wrong token."""
        with self._cond:
            return self._auth_failures

    @property
    def garbage_received(self) -> int:
        """Number of undecodable lines received from clients."""
        with self._cond:
            return self._garbage_received

    @property
    def frames_received(self) -> int:
        """Number of lines (valid or not) received from clients, including while silent."""
        with self._cond:
            return self._frames_received

    @property
    def subscriptions(self) -> int:
        """Number of accepted SUB commands since creation (cumulative)."""
        with self._cond:
            return self._subscriptions

    @property
    def replay_requests(self) -> list[tuple[str, int, int]]:
        """Copy of every (stream, first, last) REPLAY received from authenticated clients."""
        with self._cond:
            return list(self._replay_requests)

    @property
    def slow_readers_dropped(self) -> int:
        """Clients dropped for not reading: an outbox over ``max_outbox_bytes`` or nothing
        taken for ``stall_deadline`` seconds (both in ``server_stats()``)."""
        return self._stats.dropped_slow_readers

    @property
    def tls_failures(self) -> int:
        """Connections closed because their TLS handshake failed (e.g. a plaintext client)."""
        return self._stats.tls_failures

    def server_stats(self) -> dict[str, int]:
        """The connection counters since creation: ``accepted``, ``closed``,
        ``dropped_overflow``, ``dropped_stalled``, ``dropped_slow_readers``,
        ``tls_failures``, ``session_errors``, ``bytes_in``, ``bytes_out``,
        ``peak_outbox_bytes`` (the most any client's outbox held) and
        ``peak_buffered_bytes`` (outbox plus socket buffer)."""
        return self._stats.as_dict()

    def outbox_bytes(self) -> int:
        """Bytes waiting in the open connections' outboxes now."""
        tcp = self._tcp
        return sum(c.outbox_bytes for c in tcp.connections()) if tcp is not None else 0

    def last_seq(self, stream: str) -> int:
        """Highest seq published on ``stream`` (0 if none)."""
        with self._cond:
            return len(self._history[stream])

    def wait_for(self, predicate: Callable[[], _T], timeout: float = 5.0) -> _T:
        """Re-check ``predicate`` on every state change until truthy; raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                seen = self._version
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            with self._cond:
                if self._version == seen:
                    self._cond.wait(min(remaining, 0.05))

    # -- plumbing --

    @staticmethod
    def _check_thread(system: ActorSystem) -> None:
        if system.io.in_loop_thread():
            raise RuntimeError("FeedServer control methods must not run on its loop thread")

    def _call(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` with the state lock held: on the loop thread while started (so what it
        sends is handed to the sockets by the time it returns), directly otherwise."""

        def locked() -> _T:
            with self._cond:
                return fn()

        with self._control:
            tcp = self._tcp
            if tcp is None:
                return locked()
            self._check_thread(tcp.system)
            return tcp.system.io.call(locked, self.CALL_TIMEOUT)

    def _changed(self) -> None:
        """Wake ``wait_for`` callers (call with ``_cond`` held)."""
        self._version += 1
        self._cond.notify_all()

    def _notify(self) -> None:
        with self._cond:
            self._changed()

    # -- sessions (on their connection actors) --

    def _open_session(self, conn: ServerConnection) -> _FeedSession:
        session = _FeedSession(self, conn)
        with self._cond:
            self._sessions[session] = None
            self._changed()
        return session

    def _on_closed(self, session: _FeedSession) -> None:
        with self._cond:
            self._sessions.pop(session, None)
            self._index.remove_subscriber(session)
            session.catchup.clear()
            self._changed()

    def _on_data(self, session: _FeedSession, data: bytes) -> None:
        session.codec.receive_data(data)
        events = session.codec.events()
        if not events:
            return
        conn = session.conn
        with self._cond:
            self._frames_received += len(events)
            self._changed()
            for frame in events:
                if self._silent:
                    continue
                if conn.closed:
                    return
                try:
                    self._handle(session, frame)
                except Exception as exc:  # noqa: BLE001 - a handler bug must not end the session
                    conn.send(FeedCodec.encode_err(f"internal error {type(exc).__name__}"))

    def _handle(self, session: _FeedSession, frame: Frame) -> None:
        """Answer one decoded client frame (``_cond`` held)."""
        enc = FeedCodec
        conn = session.conn
        if isinstance(frame, Garbage):
            self._garbage_received += 1
            self._changed()
            conn.send(enc.encode_err(frame.reason))
            return
        if isinstance(frame, Auth):
            if frame.token == self.token:
                session.authed = True
                conn.send(enc.encode_ok("auth"))
                return
            self._auth_failures += 1
            self._changed()
            conn.send(enc.encode_err("bad token"))
            conn.close()
            return
        if not session.authed:
            conn.send(enc.encode_err("not authenticated"))
            return
        if isinstance(frame, Ping):
            conn.send(enc.encode_pong(frame.n))
        elif isinstance(frame, Sub):
            history = self._history.get(frame.stream)
            if history is None:
                conn.send(enc.encode_err(f"unknown stream {frame.stream}"))
                return
            conn.send(enc.encode_ok(f"sub {frame.stream} {frame.from_seq}"))
            self._index.remove(session, frame.stream)  # a resubscribe starts over
            session.catchup[frame.stream] = max(frame.from_seq, 1)
            self._catch_up(session, frame.stream)
            self._subscriptions += 1
            self._changed()
        elif isinstance(frame, Replay):
            self._replay_requests.append((frame.stream, frame.first, frame.last))
            self._changed()
            history = self._history.get(frame.stream)
            if history is None:
                conn.send(enc.encode_err(f"unknown stream {frame.stream}"))
            elif frame.first < 1 or frame.last < frame.first:
                conn.send(enc.encode_err(f"bad range {frame.first} {frame.last}"))
            else:
                ok = enc.encode_ok(f"replay {frame.stream} {frame.first} {frame.last}")
                conn.send([ok, *history[frame.first - 1 : frame.last]])
        else:  # cannot happen with role="server", kept for safety
            conn.send(enc.encode_err("unexpected frame"))

    def _on_writable(self, session: _FeedSession) -> None:
        with self._cond:
            for stream in list(session.catchup):
                if session.conn.closed:
                    return
                self._catch_up(session, stream)

    def _catch_up(self, session: _FeedSession, stream: str) -> None:
        """Send the next slice of ``stream``'s history (``_cond`` held): half the outbox's
        room at a time, so a history larger than the outbox never makes the subscriber a
        slow reader. What is published meanwhile joins the history and goes in a later
        slice; once the slice reaches the newest frame the subscriber goes live, under
        the same lock: no frame is lost or doubled between history and live."""
        conn = session.conn
        history = self._history[stream]
        nxt = session.catchup[stream]
        budget = max(conn.room // 2, 1)
        chunk: list[bytes] = []
        size = 0
        while nxt <= len(history) and (size < budget or not chunk):
            line = history[nxt - 1]
            if chunk and size + len(line) > budget:
                break
            chunk.append(line)
            size += len(line)
            nxt += 1
        if chunk and not conn.send(chunk):
            return  # dropped (or closing): nothing more for it
        if nxt > len(history):
            del session.catchup[stream]
            self._index.add(session, stream)
        else:
            session.catchup[stream] = nxt
            conn.notify_writable()

    # -- publishing (``_cond`` held) --

    @staticmethod
    def _check_k(k: int) -> int:
        if not isinstance(k, int) or k < 0:
            raise ValueError("k must be a non-negative int")
        return k

    def _publish(self, stream: str, n: int, payload_fn: Callable[[int], str] | None) -> list[int]:
        history = self._history[stream]
        first = len(history) + 1
        seqs = list(range(first, first + n))
        lines = [
            FeedCodec.encode_data(
                stream, seq, payload_fn(seq) if payload_fn is not None else f"{stream}-{seq}"
            )
            for seq in seqs
        ]
        history.extend(lines)
        self._changed()
        for line in lines:
            self._emit(stream, line)
        return seqs

    def _emit(self, stream: str, line: bytes) -> None:
        """Send one freshly published frame live, applying pending faults."""
        if self._skip:
            self._skip -= 1
            return
        copies = 1
        if self._repeat:
            self._repeat -= 1
            copies = 2
        if self._reorder:
            self._held.extend([(stream, line)] * copies)
            self._reorder -= 1
            if not self._reorder:
                self._flush_held()
            return
        for _ in range(copies):
            self._send_live(stream, line)

    def _flush_held(self) -> None:
        held, self._held = self._held, []
        for stream, line in reversed(held):
            self._send_live(stream, line)

    def _send_live(self, stream: str, line: bytes) -> None:
        if self._silent:
            return
        for session in self._index.match(stream):  # the stream's subscribers only
            session.conn.send(line)
