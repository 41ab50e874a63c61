"""An embedded feed server with fault injection: kill, restart, silence, skip, repeat,
reorder and garbage. Runs its own asyncio loop thread, bound to 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, Self, TypeVar

from ...actors.ioloop import IOLoop
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


class _Conn(asyncio.Protocol):
    """One client connection; all logic lives in ``FeedServer`` (runs on the loop thread)."""

    def __init__(self, server: FeedServer, loop: asyncio.AbstractEventLoop, generation: int):
        self.server = server
        self.generation = generation
        self.codec = FeedCodec(role="server")
        self.transport: asyncio.Transport | None = None
        self.authed = False
        self.subs: set[str] = set()
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register with the server (or drop at once if it went down meanwhile)."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._on_connect(self)

    def data_received(self, data: bytes) -> None:
        """Hand bytes to the server's command handler."""
        self.server._on_data(self, data)

    def eof_received(self) -> bool:
        """Close our side too when the client half-closes."""
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Unregister and resolve ``closed``."""
        self.server._on_disconnect(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, data: bytes) -> None:
        """Write unless the transport is already closing."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class FeedServer:
    """Controllable feed server on 127.0.0.1, running an asyncio loop on its own thread.

    Control methods are thread-safe and return once their effect has happened on the loop.
    Every published frame is retained forever (per stream, seq from 1) for SUB and REPLAY.
    """

    CALL_TIMEOUT = 10.0

    def __init__(
        self, streams: Iterable[str] = ("A",), token: str = "secret", port: int = 0
    ) -> None:
        names = tuple(streams)
        if not names:
            raise ValueError("at least one stream is required")
        for name in names:
            _field("stream", name)
        self.token = _field("token", token)
        self.streams = names
        self._port = port
        self._history: dict[str, list[bytes]] = {name: [] for name in names}
        # loop-side state (only mutated on the loop thread, or directly while not started)
        self._conns: set[_Conn] = set()
        self._srv: asyncio.Server | None = None
        self._listening = False
        self._generation = 0
        self._silent = False
        self._skip = 0
        self._repeat = 0
        self._reorder = 0
        self._held: list[tuple[str, bytes]] = []
        # counters, read from any thread under _cond
        self._auth_failures = 0
        self._garbage_received = 0
        self._frames_received = 0
        self._subscriptions = 0
        self._replay_requests: list[tuple[str, int, int]] = []
        self._version = 0
        self._cond = threading.Condition(threading.RLock())
        # thread management
        self._control = threading.RLock()
        self._io: IOLoop | None = None

    # -- lifecycle --

    @property
    def port(self) -> int:
        """The bound port (the configured one, 0 by default, until first started)."""
        return self._port

    @property
    def running(self) -> bool:
        """True while the loop thread runs (even if killed)."""
        return self._io is not None

    @property
    def listening(self) -> bool:
        """True while accepting connections (False after ``kill`` until ``restart``)."""
        return self._listening

    def start(self) -> None:
        """Start the loop thread and listen; no-op if already running."""
        with self._control:
            if self._io is not None:
                return
            self._io = IOLoop("FeedServer")
            try:
                self._call_async(self._listen)
            except BaseException:
                self._stop_thread()
                raise

    def stop(self) -> None:
        """Close listener and all connections, stop and join the loop thread; idempotent."""
        with self._control:
            if self._io is None:
                return
            try:
                self._call_async(self._shutdown)
            finally:
                self._stop_thread()

    def kill(self) -> None:
        """Abruptly drop the listener and every connection; history is kept until restart."""
        with self._control:
            if self._io is None:
                return
            self._call_async(self._shutdown)

    def restart(self) -> None:
        """Listen again on the same port (killing first if still up); starts if stopped."""
        with self._control:
            if self._io is None:
                self.start()
                return

            async def again() -> None:
                await self._shutdown()
                await self._listen()

            self._call_async(again)

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
        self._call(lambda: setattr(self, "_skip", self._skip + self._check_k(k)))

    def repeat_next(self, k: int = 1) -> None:
        """Each of the next ``k`` published frames is sent twice."""
        self._call(lambda: setattr(self, "_repeat", self._repeat + self._check_k(k)))

    def reorder_next(self, k: int = 2) -> None:
        """Hold the next ``k`` published frames and send them in reverse once all ``k`` exist."""
        self._call(lambda: setattr(self, "_reorder", self._reorder + self._check_k(k)))

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
            for conn in list(self._conns):
                conn.send(raw)

        self._call(write)

    # -- introspection --

    def connections(self) -> int:
        """Number of currently open client connections."""
        with self._cond:
            return len(self._conns)

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

    # -- thread plumbing --

    def _stop_thread(self) -> None:
        """Stop the loop, join its thread and forget both."""
        io, self._io = self._io, None
        if io is None:
            return
        io.shutdown(self.CALL_TIMEOUT)
        if io.alive:
            raise RuntimeError("FeedServer loop thread did not stop")

    def _check_thread(self) -> IOLoop | None:
        io = self._io
        if io is not None and io.in_loop_thread():
            raise RuntimeError("FeedServer control methods must not run on its loop thread")
        return io

    def _call(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the loop thread and wait for it (directly if not started)."""
        with self._control:
            io = self._check_thread()
            if io is None:
                return fn()
            return io.call(fn, self.CALL_TIMEOUT)

    def _call_async(self, fn: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        """Run coroutine function ``fn`` on the loop thread and wait for its result."""
        with self._control:
            io = self._check_thread()
            assert io is not None
            return io.run(fn(), self.CALL_TIMEOUT)

    # -- loop-side implementation --

    def _changed(self) -> None:
        """Wake ``wait_for`` callers (call with ``_cond`` held)."""
        self._version += 1
        self._cond.notify_all()

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._generation += 1
        generation = self._generation
        self._srv = await loop.create_server(
            lambda: _Conn(self, loop, generation),
            host=HOST,
            port=self._port,
            reuse_address=True,
        )
        self._port = self._srv.sockets[0].getsockname()[1]
        self._listening = True
        with self._cond:
            self._changed()

    async def _shutdown(self) -> None:
        """Close the listener and abort every connection, waiting until they are gone."""
        self._listening = False
        self._generation += 1
        srv, self._srv = self._srv, None
        if srv is not None:
            srv.close()
            await srv.wait_closed()
        conns = list(self._conns)
        for conn in conns:
            if conn.transport is not None:
                conn.transport.abort()
        if conns:
            await asyncio.wait_for(
                asyncio.gather(*(c.closed for c in conns)), timeout=self.CALL_TIMEOUT
            )
        with self._cond:
            self._changed()

    def _on_connect(self, conn: _Conn) -> None:
        if not self._listening or conn.generation != self._generation:
            assert conn.transport is not None
            conn.transport.abort()
            return
        with self._cond:
            self._conns.add(conn)
            self._changed()

    def _on_disconnect(self, conn: _Conn) -> None:
        with self._cond:
            self._conns.discard(conn)
            self._changed()

    def _on_data(self, conn: _Conn, data: bytes) -> None:
        conn.codec.receive_data(data)
        events = conn.codec.events()
        if events:
            with self._cond:
                self._frames_received += len(events)
                self._changed()
        for frame in events:
            if self._silent:
                continue
            if conn.transport is None or conn.transport.is_closing():
                return
            try:
                self._handle(conn, frame)
            except Exception as exc:  # noqa: BLE001 - never let a handler bug kill the connection loop
                conn.send(FeedCodec.encode_err(f"internal error {type(exc).__name__}"))

    def _handle(self, conn: _Conn, frame: Frame) -> None:
        """Answer one decoded client frame."""
        enc = FeedCodec
        if isinstance(frame, Garbage):
            with self._cond:
                self._garbage_received += 1
                self._changed()
            conn.send(enc.encode_err(frame.reason))
            return
        if isinstance(frame, Auth):
            if frame.token == self.token:
                conn.authed = True
                conn.send(enc.encode_ok("auth"))
                return
            with self._cond:
                self._auth_failures += 1
                self._changed()
            conn.send(enc.encode_err("bad token"))
            assert conn.transport is not None
            conn.transport.close()
            return
        if not conn.authed:
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
            # history and going live happen in one loop step: no frame lost or doubled
            for line in history[max(frame.from_seq, 1) - 1 :]:
                conn.send(line)
            conn.subs.add(frame.stream)
            with self._cond:
                self._subscriptions += 1
                self._changed()
        elif isinstance(frame, Replay):
            with self._cond:
                self._replay_requests.append((frame.stream, frame.first, frame.last))
                self._changed()
            history = self._history.get(frame.stream)
            if history is None:
                conn.send(enc.encode_err(f"unknown stream {frame.stream}"))
            elif frame.first < 1 or frame.last < frame.first:
                conn.send(enc.encode_err(f"bad range {frame.first} {frame.last}"))
            else:
                conn.send(enc.encode_ok(f"replay {frame.stream} {frame.first} {frame.last}"))
                for line in history[frame.first - 1 : frame.last]:
                    conn.send(line)
        else:  # cannot happen with role="server", kept for safety
            conn.send(enc.encode_err("unexpected frame"))

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
        with self._cond:
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
        for conn in list(self._conns):
            if stream in conn.subs:
                conn.send(line)
