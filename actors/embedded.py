"""The shell of an embedded server: the lifecycle, threads and locks around the kit's
:class:`~actorwire.actors.tcpserver.TcpServer` that every adapter's server shares.

A subclass brings its protocol and state through a few hooks: the session of a new
connection (``_make_session``), what happens every ``tick_interval`` seconds (``_tick``),
what ``stop()`` releases (``_close_store``), its own counters in ``stats()``
(``_own_stats``), the fields of its listening log line (``_listening_fields``) and its
names (``_name`` for the actor system, the TCP server and the tick thread; ``_noun``,
``_log``, ``_listening_event`` and ``_tick_failed_event`` for errors and logs).

Rules:

1. Control methods (``start``, ``stop``, ``kill``, ``stats`` and a subclass's own) are
   thread-safe; call them from any thread but the I/O loop's (``start`` and ``stop`` wait
   for it, ``kill`` waits for the sessions to end).
2. Two locks, always taken in this order: ``_lock`` (an RLock) guards the subclass's state
   and every session's; the sessions' actors, the tick thread and the control methods take
   it. ``_registry`` (a Condition) guards only the registry of sessions (``_sessions``,
   ``_connections``) and is taken after ``_lock``, never before it.
3. The I/O loop takes only ``_registry`` (to register a new session), so a slow store write
   under ``_lock`` never stalls a socket; nothing holding ``_lock`` waits for the I/O loop
   (the kit's ``send``, ``close`` and ``abort`` only queue).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, TypeVar

import structlog

from .system import ActorSystem
from .tcpserver import (
    DEFAULT_MAX_OUTBOX_BYTES,
    DEFAULT_STALL_DEADLINE,
    ServerConnection,
    Session,
    TcpServer,
)
from .tls import StrPath, server_context

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

__all__ = ["EmbeddedSession", "EmbeddedTcpServer"]


class EmbeddedSession(Session, Protocol):
    """A session an embedded server keeps in its registry: it knows its connection."""

    @property
    def conn(self) -> ServerConnection:
        """The connection the session runs on."""


S = TypeVar("S", bound=EmbeddedSession)


class EmbeddedTcpServer(ABC, Generic[S]):
    """A TCP (or TLS) server with a registry of its sessions and a tick thread (see the
    module's rules); ``start()`` listens, ``stop()`` ends every connection.

    ``certfile`` and ``keyfile`` (PEM, both or neither) serve over TLS. ``max_outbox_bytes``
    and ``stall_deadline`` bound what waits for a peer (the kit's rules). ``system`` runs the
    server on that actor system instead of one of its own. A subclass sets ``tick_interval``
    in its ``__init__``.
    """

    _name: ClassVar[str] = "embedded-server"
    """Names the server's own actor system, its TcpServer and (with ``-tick``) its thread."""
    _noun: ClassVar[str] = "the server"
    """What error messages call the server."""
    _log: ClassVar[FilteringBoundLogger] = structlog.get_logger("actorwire.embedded")
    _listening_event: ClassVar[str] = "server listening"
    _tick_failed_event: ClassVar[str] = "server tick failed"

    tick_interval: float
    """Seconds between two ticks."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        certfile: StrPath | None = None,
        keyfile: StrPath | None = None,
        max_outbox_bytes: int = DEFAULT_MAX_OUTBOX_BYTES,
        stall_deadline: float = DEFAULT_STALL_DEADLINE,
        system: ActorSystem | None = None,
    ) -> None:
        if (certfile is None) != (keyfile is None):
            given = "certfile" if keyfile is None else "keyfile"
            raise ValueError(
                f"{self._noun}'s TLS needs both certfile and keyfile; got only {given}"
            )
        self.host = host
        self._port = port
        self._ssl = server_context(certfile, keyfile) if certfile and keyfile else None
        self.max_outbox_bytes = max_outbox_bytes
        self.stall_deadline = stall_deadline
        # Guards the subclass's state and every session's. Taken by the sessions' actors,
        # the tick thread and the control methods; never by the I/O loop.
        self._lock = threading.RLock()
        # Guards only the registry of sessions (taken after _lock, never before it), so the
        # I/O loop registers a new connection without waiting for a store write.
        self._registry = threading.Condition(threading.Lock())
        self._sessions: dict[S, None] = {}
        self._connections = 0  # under _registry
        self._system_arg = system
        self._system: ActorSystem | None = None
        self._tcp: TcpServer | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._stopped = False
        self._control = threading.Lock()

    # -- hooks ------------------------------------------------------------------------------

    @abstractmethod
    def _make_session(self, conn: ServerConnection) -> S:
        """The session of a new connection; on the I/O loop, so quick and without ``_lock``."""

    @abstractmethod
    def _tick(self, now: float) -> None:
        """The periodic work at ``now`` (monotonic; ``_lock`` held: send, never wait)."""

    def _close_store(self) -> None:
        """Release what outlives the connections (a store), once, from ``stop()`` (``_lock``
        held)."""

    def _own_stats(self) -> dict[str, int]:
        """The subclass's counters for ``stats()`` (``_lock`` held)."""
        return {}

    def _listening_fields(self) -> dict[str, Any]:
        """The fields of the log line ``start()`` writes once listening."""
        return {"address": f"{self.host}:{self.port}", "tls": self.tls}

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the one asked for until started)."""
        return self._port

    @property
    def tls(self) -> bool:
        """True when the server speaks TLS."""
        return self._ssl is not None

    def start(self) -> Self:
        """Listen, and start the tick thread; a no-op while running. Raises RuntimeError after
        ``stop()`` (make a new server on the same store instead)."""
        with self._control:
            if self._tcp is not None:
                return self
            if self._stopped:
                raise RuntimeError(f"{type(self).__name__}.start: it was stopped; make a new one")
            system = self._system_arg or ActorSystem(name=self._name)
            tcp = TcpServer(
                system,
                self._new_session,
                host=self.host,
                port=self._port,
                ssl=self._ssl,
                name=self._name,
                max_outbox_bytes=self.max_outbox_bytes,
                stall_deadline=self.stall_deadline,
            )
            try:
                tcp.start()
            except BaseException:
                if self._system_arg is None:
                    system.shutdown(timeout=5)
                raise
            self._system, self._tcp = system, tcp
            self._port = tcp.port
            self._ticker = threading.Thread(
                target=self._tick_loop, name=f"{self._name}-tick", daemon=True
            )
            self._ticker.start()
        self._log.info(self._listening_event, **self._listening_fields())
        return self

    def stop(self) -> None:
        """Stop listening, end every connection (each handled as a dropped one), stop the
        tick thread and the server's own actor system, and close the store; idempotent."""
        with self._control:
            if self._stopped:
                return
            self._stopped = True
            self._stopping.set()
            ticker, tcp, system = self._ticker, self._tcp, self._system
            self._ticker = self._tcp = self._system = None
            try:
                if ticker is not None:
                    ticker.join()
                if tcp is not None:
                    tcp.stop()
            finally:
                if system is not None and self._system_arg is None:
                    system.shutdown(timeout=5)
                with self._lock:
                    self._close_store()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stats(self) -> dict[str, int]:
        """Counters: the subclass's, the connections' (``accepted``, ``dropped_overflow``,
        ``tls_failures``, ...), ``connections`` (sessions ever opened) and ``sessions``
        (open now)."""
        tcp = self._tcp
        with self._lock:
            out = self._own_stats()
        if tcp is not None:
            out.update(tcp.stats.as_dict())
        with self._registry:
            out["connections"] = self._connections
            out["sessions"] = len(self._sessions)
        return out

    def kill(self, timeout: float = 5.0) -> None:
        """Drop every connection at once, as a crash would: nothing queued is written, and
        each session ends as a dropped one; the server listens on. Returns once the sessions
        have ended (or after ``timeout`` seconds)."""
        killed = self._session_list()
        for session in killed:
            session.conn.abort("killed by the test")
        with self._registry:
            self._registry.wait_for(lambda: not any(s in self._sessions for s in killed), timeout)

    # -- the registry -----------------------------------------------------------------------

    def _new_session(self, conn: ServerConnection) -> S:
        """On the I/O loop: registry only (never ``_lock``)."""
        session = self._make_session(conn)
        with self._registry:
            self._sessions[session] = None
            self._connections += 1
        return session

    def _unregister(self, session: S) -> None:
        """Take an ended session out of the registry (last, in its close path) and wake
        ``kill()``."""
        with self._registry:
            self._sessions.pop(session, None)
            self._registry.notify_all()

    def _session_list(self) -> list[S]:
        """The registered sessions (a snapshot)."""
        with self._registry:
            return list(self._sessions)

    # -- the tick thread --------------------------------------------------------------------

    def _tick_loop(self) -> None:
        while not self._stopping.wait(self.tick_interval):
            try:
                with self._lock:
                    self._tick(time.monotonic())
            except Exception as exc:  # noqa: BLE001 - the ticks must go on
                self._log.exception(self._tick_failed_event, error=repr(exc))
