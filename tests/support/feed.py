"""Test support: a tiny line-based TCP "feed" protocol and a controllable feed server.

Wire format (UTF-8, one frame per line, each line ends with b"\\n"; a line may hold at most
``MAX_LINE`` bytes, not counting its newline)::

    client -> server   AUTH <token> | SUB <stream> <from_seq> | REPLAY <stream> <first> <last>
                       | PING <n>
    server -> client   OK <what> | ERR <reason> | DATA <stream> <seq> <payload> | PONG <n>

Server replies: every command gets exactly one reply line (``OK``/``ERR``, or ``PONG`` for
``PING``) written *before* any ``DATA`` the command triggers: ``AUTH`` -> ``OK auth``,
``SUB A 3`` -> ``OK sub A 3`` then the retained frames of ``A`` with seq >= 3 then live frames,
``REPLAY A 2 5`` -> ``OK replay A 2 5`` then the retained frames 2..5.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

__all__ = [
    "HOST",
    "MAX_LINE",
    "Auth",
    "Data",
    "Err",
    "FeedCodec",
    "FeedServer",
    "Frame",
    "Garbage",
    "Ok",
    "Ping",
    "Pong",
    "Replay",
    "Sub",
]

HOST = "127.0.0.1"
MAX_LINE = 64 * 1024
"""Largest allowed line, in bytes, excluding the terminating newline."""

_T = TypeVar("_T")
_INT_RE = re.compile(r"[0-9]{1,19}")


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True, slots=True)
class Auth:
    """Client -> server: authenticate with a token."""

    token: str


@dataclass(frozen=True, slots=True)
class Sub:
    """Client -> server: subscribe to a stream, replaying retained frames from ``from_seq``."""

    stream: str
    from_seq: int


@dataclass(frozen=True, slots=True)
class Replay:
    """Client -> server: resend retained frames ``first..last`` (inclusive)."""

    stream: str
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class Ping:
    """Client -> server: liveness probe, answered by ``Pong(n)``."""

    n: int


@dataclass(frozen=True, slots=True)
class Data:
    """Server -> client: one sequenced frame of a stream."""

    stream: str
    seq: int
    payload: str


@dataclass(frozen=True, slots=True)
class Pong:
    """Server -> client: answer to ``Ping(n)``."""

    n: int


@dataclass(frozen=True, slots=True)
class Ok:
    """Server -> client: positive acknowledgement."""

    what: str


@dataclass(frozen=True, slots=True)
class Err:
    """Server -> client: error report."""

    reason: str


@dataclass(frozen=True, slots=True)
class Garbage:
    """A line that could not be decoded (``raw`` is capped at ``max_line + 1`` bytes)."""

    raw: bytes
    reason: str


Frame = Auth | Sub | Replay | Ping | Data | Pong | Ok | Err | Garbage

_COMMANDS = frozenset({"AUTH", "SUB", "REPLAY", "PING"})
_REPLIES = frozenset({"OK", "ERR", "DATA", "PONG"})


# --------------------------------------------------------------------------- codec


def _field(name: str, value: str) -> str:
    """Validate a single space-free field (token, stream name)."""
    if not isinstance(value, str) or not value or " " in value or "\n" in value:
        raise ValueError(f"{name} must be a non-empty str without spaces or newlines: {value!r}")
    return value


def _text(name: str, value: str) -> str:
    """Validate a rest-of-line field (payload, what, reason)."""
    if not isinstance(value, str) or "\n" in value:
        raise ValueError(f"{name} must be a str without newlines: {value!r}")
    return value


def _uint(name: str, value: int) -> int:
    """Validate a non-negative integer field."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 10**19:
        raise ValueError(f"{name} must be an int in [0, 10**19): {value!r}")
    return value


def _line(text: str) -> bytes:
    """Encode one line, enforcing ``MAX_LINE``."""
    raw = text.encode("utf-8")
    if len(raw) > MAX_LINE:
        raise ValueError(f"frame of {len(raw)} bytes exceeds MAX_LINE={MAX_LINE}")
    return raw + b"\n"


class FeedCodec:
    """Sans-I/O feed codec: feed bytes with ``receive_data``, drain frames with ``events``.

    ``role`` selects what is decoded: "server" accepts only commands, "client" accepts only
    server frames, "any" accepts both; anything else becomes a ``Garbage`` event.
    """

    def __init__(
        self, role: Literal["any", "server", "client"] = "any", max_line: int = MAX_LINE
    ) -> None:
        if role not in ("any", "server", "client"):
            raise ValueError(f"bad role {role!r}")
        if max_line < 1:
            raise ValueError("max_line must be >= 1")
        self.role = role
        self.max_line = max_line
        self._accepted = {
            "any": _COMMANDS | _REPLIES,
            "server": _COMMANDS,
            "client": _REPLIES,
        }[role]
        self._buf = bytearray()
        self._discarding = False
        self._events: list[Frame] = []

    @property
    def buffered(self) -> int:
        """Bytes currently held for an incomplete line (never more than ``max_line + 1``)."""
        return len(self._buf)

    def receive_data(self, data: bytes) -> None:
        """Feed raw bytes; complete lines become events, a partial line is kept."""
        data = bytes(data)
        pos, size = 0, len(data)
        while pos < size:
            nl = data.find(b"\n", pos)
            if self._discarding:  # skipping the tail of an oversize line
                if nl < 0:
                    return
                self._discarding = False
                pos = nl + 1
                continue
            end = nl if nl >= 0 else size
            room = self.max_line + 1 - len(self._buf)
            if end - pos >= room:  # would exceed the limit: report and skip to newline
                self._buf += data[pos : pos + room]
                self._events.append(Garbage(bytes(self._buf), "line too long"))
                self._buf.clear()
                if nl < 0:
                    self._discarding = True
                    return
                pos = nl + 1
                continue
            self._buf += data[pos:end]
            if nl < 0:
                return
            line = bytes(self._buf)
            self._buf.clear()
            self._events.append(self._parse(line))
            pos = nl + 1

    def events(self) -> list[Frame]:
        """Return and forget the frames decoded so far."""
        out, self._events = self._events, []
        return out

    def _parse(self, line: bytes) -> Frame:
        """Decode one line (without its newline) into a frame or ``Garbage``."""
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return Garbage(line, "not utf-8")
        verb, sep, rest = text.partition(" ")
        if not verb:
            return Garbage(line, "empty verb")
        if verb not in _COMMANDS | _REPLIES:
            return Garbage(line, "unknown verb")
        if verb not in self._accepted:
            return Garbage(line, f"unexpected {verb}")
        if verb == "OK":
            return Ok(rest)
        if verb == "ERR":
            return Err(rest)
        if verb == "DATA":
            parts = rest.split(" ", 2) if sep else []
            fixed, tail = parts[:2], parts[2:]
            if len(parts) != 3:
                return Garbage(line, f"bad field count for {verb}")
        else:
            parts = rest.split(" ") if sep else []
            fixed, tail = parts, []
            arity = {"AUTH": 1, "SUB": 2, "REPLAY": 3, "PING": 1, "PONG": 1}[verb]
            if len(parts) != arity:
                return Garbage(line, f"bad field count for {verb}")
        if not all(fixed):
            return Garbage(line, f"empty field in {verb}")
        if verb == "AUTH":
            return Auth(fixed[0])
        nums = fixed[1:] if verb in ("SUB", "REPLAY", "DATA") else fixed
        if not all(_INT_RE.fullmatch(n) for n in nums):
            return Garbage(line, f"bad integer in {verb}")
        ints = [int(n) for n in nums]
        if verb == "SUB":
            return Sub(fixed[0], ints[0])
        if verb == "REPLAY":
            return Replay(fixed[0], ints[0], ints[1])
        if verb == "DATA":
            return Data(fixed[0], ints[0], tail[0])
        if verb == "PING":
            return Ping(ints[0])
        return Pong(ints[0])

    # -- encoders (raise ValueError on values that cannot be framed) --

    @staticmethod
    def encode_auth(token: str) -> bytes:
        """Encode ``AUTH <token>``."""
        return _line(f"AUTH {_field('token', token)}")

    @staticmethod
    def encode_sub(stream: str, from_seq: int) -> bytes:
        """Encode ``SUB <stream> <from_seq>``."""
        return _line(f"SUB {_field('stream', stream)} {_uint('from_seq', from_seq)}")

    @staticmethod
    def encode_replay(stream: str, first: int, last: int) -> bytes:
        """Encode ``REPLAY <stream> <first> <last>``."""
        s = _field("stream", stream)
        return _line(f"REPLAY {s} {_uint('first', first)} {_uint('last', last)}")

    @staticmethod
    def encode_ping(n: int) -> bytes:
        """Encode ``PING <n>``."""
        return _line(f"PING {_uint('n', n)}")

    @staticmethod
    def encode_data(stream: str, seq: int, payload: str) -> bytes:
        """Encode ``DATA <stream> <seq> <payload>``."""
        s = _field("stream", stream)
        return _line(f"DATA {s} {_uint('seq', seq)} {_text('payload', payload)}")

    @staticmethod
    def encode_pong(n: int) -> bytes:
        """Encode ``PONG <n>``."""
        return _line(f"PONG {_uint('n', n)}")

    @staticmethod
    def encode_ok(what: str) -> bytes:
        """Encode ``OK <what>``."""
        return _line(f"OK {_text('what', what)}")

    @staticmethod
    def encode_err(reason: str) -> bytes:
        """Encode ``ERR <reason>``."""
        return _line(f"ERR {_text('reason', reason)}")

    @staticmethod
    def encode(frame: Frame) -> bytes:
        """Encode any frame except ``Garbage`` (which has no wire form)."""
        match frame:
            case Auth(token):
                return FeedCodec.encode_auth(token)
            case Sub(stream, from_seq):
                return FeedCodec.encode_sub(stream, from_seq)
            case Replay(stream, first, last):
                return FeedCodec.encode_replay(stream, first, last)
            case Ping(n):
                return FeedCodec.encode_ping(n)
            case Data(stream, seq, payload):
                return FeedCodec.encode_data(stream, seq, payload)
            case Pong(n):
                return FeedCodec.encode_pong(n)
            case Ok(what):
                return FeedCodec.encode_ok(what)
            case Err(reason):
                return FeedCodec.encode_err(reason)
        raise ValueError(f"cannot encode {frame!r}")


# --------------------------------------------------------------------------- server


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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    @property
    def port(self) -> int:
        """The bound port (the configured one, 0 by default, until first started)."""
        return self._port

    @property
    def running(self) -> bool:
        """True while the loop thread runs (even if killed)."""
        return self._loop is not None

    @property
    def listening(self) -> bool:
        """True while accepting connections (False after ``kill`` until ``restart``)."""
        return self._listening

    def start(self) -> None:
        """Start the loop thread and listen; no-op if already running."""
        with self._control:
            if self._loop is not None:
                return
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=self._run_loop, args=(loop,), name="FeedServer-loop", daemon=True
            )
            self._loop, self._thread = loop, thread
            thread.start()
            try:
                self._call_async(self._listen)
            except BaseException:
                self._stop_thread()
                raise
            thread.name = f"FeedServer-{self._port}"

    def stop(self) -> None:
        """Close listener and all connections, stop and join the loop thread; idempotent."""
        with self._control:
            if self._loop is None:
                return
            try:
                self._call_async(self._shutdown)
            finally:
                self._stop_thread()

    def kill(self) -> None:
        """Abruptly drop the listener and every connection; history is kept until restart."""
        with self._control:
            if self._loop is None:
                return
            self._call_async(self._shutdown)

    def restart(self) -> None:
        """Listen again on the same port (killing first if still up); starts if stopped."""
        with self._control:
            if self._loop is None:
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

    def _run_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Body of the loop thread: run until stopped, then tidy up and close the loop."""
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def _stop_thread(self) -> None:
        """Stop the loop, join its thread and forget both."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(self.CALL_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError("FeedServer loop thread did not stop")

    def _check_thread(self) -> asyncio.AbstractEventLoop | None:
        loop, thread = self._loop, self._thread
        if thread is not None and threading.current_thread() is thread:
            raise RuntimeError("FeedServer control methods must not run on its loop thread")
        return loop

    def _call(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the loop thread and wait for it (directly if not started)."""
        with self._control:
            loop = self._check_thread()
            if loop is None:
                return fn()

            async def run() -> _T:
                return fn()

            return asyncio.run_coroutine_threadsafe(run(), loop).result(self.CALL_TIMEOUT)

    def _call_async(self, fn: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        """Run coroutine function ``fn`` on the loop thread and wait for its result."""
        with self._control:
            loop = self._check_thread()
            assert loop is not None

            async def run() -> _T:
                return await fn()

            return asyncio.run_coroutine_threadsafe(run(), loop).result(self.CALL_TIMEOUT)

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
            except Exception as exc:  # never let a handler bug kill the connection loop
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
