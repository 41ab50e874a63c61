"""The embedded servers' shell (actors/embedded.py) over real sockets on 127.0.0.1, with a
tiny echo server: start and stop (idempotent, no restart after stop), kill waiting for the
sessions to end, the tick thread (under the lock, going on after a failing tick), the own or
a given actor system, and TLS (both files or neither)."""

from __future__ import annotations

import io
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from actorwire.actors import ActorSystem
from actorwire.actors.embedded import EmbeddedTcpServer
from actorwire.actors.tcpserver import ServerConnection
from actorwire.actors.tls import client_context

from tests.support.tlscerts import make_ca, make_server_cert
from tests.support.waiting import wait_until

HOST = "127.0.0.1"
READ_TIMEOUT = 5.0


class EchoSession:
    """Sends back what it reads; its close path may be held (to test ``kill``)."""

    def __init__(self, server: EchoServer, conn: ServerConnection) -> None:
        self.server = server
        self.conn = conn

    def on_data(self, data: bytes) -> None:
        with self.server._lock:
            self.server.echoed += len(data)
            self.conn.send(data)

    def on_closed(self, reason: str) -> None:
        server = self.server
        with server.closing:
            server.closes_entered += 1
            server.closing.notify_all()
        if server.hold_close is not None:
            server.hold_close.wait(READ_TIMEOUT)
        with server._lock:
            server._unregister(self)


class EchoServer(EmbeddedTcpServer[EchoSession]):
    """The smallest subclass: echo sessions, a tick that records (and fails on demand)."""

    _name = "echo-server"
    _noun = "the echo server"
    _log = structlog.get_logger("tests.embedded")
    _listening_event = "echo server listening"
    _tick_failed_event = "echo tick failed"

    def __init__(self, *, port: int = 0, tick_interval: float = 0.01, **kwargs: Any) -> None:
        super().__init__(HOST, port, **kwargs)
        self.tick_interval = tick_interval
        self.echoed = 0
        self.ticks: list[tuple[float, bool]] = []  # (now, _lock held)
        self.failing_ticks = 0  # the next ticks that raise
        self.stores_closed = 0
        self.hold_close: threading.Event | None = None
        self.closing = threading.Condition()
        self.closes_entered = 0

    def _make_session(self, conn: ServerConnection) -> EchoSession:
        return EchoSession(self, conn)

    def _tick(self, now: float) -> None:
        self.ticks.append((now, self._lock._is_owned()))  # type: ignore[attr-defined]
        if self.failing_ticks:
            self.failing_ticks -= 1
            raise RuntimeError("tick bug")

    def _close_store(self) -> None:
        self.stores_closed += 1

    def _own_stats(self) -> dict[str, int]:
        return {"echoed": self.echoed, "ticks": len(self.ticks)}


@pytest.fixture
def make_server() -> Iterator[Any]:
    """Build EchoServers; every one is stopped after the test."""
    servers: list[EchoServer] = []

    def make(**kwargs: Any) -> EchoServer:
        server = EchoServer(**kwargs)
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            if server.hold_close is not None:
                server.hold_close.set()
            server.stop()


@pytest.fixture
def clients() -> Iterator[list[socket.socket]]:
    """Client sockets, all closed after the test."""
    socks: list[socket.socket] = []
    try:
        yield socks
    finally:
        for sock in socks:
            sock.close()


def connect(server: EchoServer, clients: list[socket.socket]) -> socket.socket:
    sock = socket.create_connection((HOST, server.port), timeout=READ_TIMEOUT)
    clients.append(sock)
    return sock


def echo(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(len(data) - len(got))
        if not chunk:
            break
        got += chunk
    return got


def ended_by_server(sock: socket.socket) -> bool:
    """True when the server ended the connection (an EOF or a reset)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def events(log: io.StringIO, name: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]
    return [row for row in rows if row.get("event") == name]


def tick_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "echo-server-tick"]


# -- lifecycle ----------------------------------------------------------------------------------


def test_start_listens_and_is_a_no_op_while_running_and_stop_is_idempotent(
    make_server: Any, clients: list[socket.socket], json_log: io.StringIO
) -> None:
    server = make_server()
    assert server.port == 0
    assert server.start() is server
    port = server.port
    assert port != 0
    assert server.start() is server  # running: nothing new
    assert server.port == port
    assert len(tick_threads()) == 1
    (listening,) = events(json_log, "echo server listening")
    assert listening["address"] == f"{HOST}:{port}"
    assert listening["tls"] is False

    sock = connect(server, clients)
    assert echo(sock, b"hello") == b"hello"
    stats = server.stats()
    assert stats["echoed"] == 5
    assert stats["accepted"] == stats["connections"] == stats["sessions"] == 1

    server.stop()
    assert ended_by_server(sock)
    assert tick_threads() == []
    assert server.stats()["sessions"] == 0
    server.stop()
    assert server.stores_closed == 1


def test_start_after_stop_raises(make_server: Any) -> None:
    server = make_server().start()
    server.stop()
    with pytest.raises(RuntimeError, match=r"EchoServer\.start: it was stopped; make a new one"):
        server.start()
    never_started = make_server()
    never_started.stop()
    assert never_started.stores_closed == 1
    with pytest.raises(RuntimeError, match="it was stopped"):
        never_started.start()


def test_a_start_that_cannot_listen_raises_and_shuts_its_own_system_down(
    make_server: Any,
) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        server = make_server(port=taken.getsockname()[1])
        with pytest.raises(OSError):
            server.start()
        assert server._system is None
        assert tick_threads() == []
    # The no_leaks guard fails the test if the server's own system was left running.


def test_a_context_manager_starts_and_stops(clients: list[socket.socket]) -> None:
    with EchoServer() as server:
        assert echo(connect(server, clients), b"x") == b"x"
    assert tick_threads() == []
    assert server.stores_closed == 1


# -- kill ---------------------------------------------------------------------------------------


def test_kill_returns_once_every_session_has_ended_and_the_server_listens_on(
    make_server: Any, clients: list[socket.socket]
) -> None:
    server = make_server().start()
    server.hold_close = threading.Event()
    socks = [connect(server, clients) for _ in range(2)]
    for sock in socks:
        assert echo(sock, b"ping") == b"ping"
    wait_until(lambda: server.stats()["sessions"] == 2, what="two sessions")

    killer = threading.Thread(target=server.kill, name="killer")
    killer.start()
    try:
        with server.closing:
            assert server.closing.wait_for(lambda: server.closes_entered == 2, READ_TIMEOUT)
        killer.join(0.2)
        assert killer.is_alive(), "kill returned while the sessions were still ending"
    finally:
        server.hold_close.set()
        killer.join(READ_TIMEOUT)
    assert not killer.is_alive()
    assert server.stats()["sessions"] == 0  # no wait: kill returned after they ended
    for sock in socks:
        assert ended_by_server(sock)

    server.hold_close = None
    assert echo(connect(server, clients), b"again") == b"again"
    assert server.stats()["connections"] == 3


def test_kill_gives_up_waiting_after_its_timeout(
    make_server: Any, clients: list[socket.socket]
) -> None:
    server = make_server().start()
    server.hold_close = threading.Event()
    assert echo(connect(server, clients), b"ping") == b"ping"
    wait_until(lambda: server.stats()["sessions"] == 1, what="the session")
    started = time.monotonic()
    server.kill(timeout=0.2)
    assert 0.2 <= time.monotonic() - started < READ_TIMEOUT
    assert server.stats()["sessions"] == 1  # still in its (held) close path
    server.hold_close.set()
    wait_until(lambda: server.stats()["sessions"] == 0, what="the session to end")


# -- the tick -----------------------------------------------------------------------------------


def test_the_tick_runs_under_the_lock_and_goes_on_after_a_failing_tick(
    make_server: Any, json_log: io.StringIO
) -> None:
    server = make_server()
    server.failing_ticks = 2
    server.start()
    wait_until(lambda: len(server.ticks) >= 5, what="five ticks")
    server.stop()
    nows = [now for now, _ in server.ticks]
    assert nows == sorted(nows)
    assert all(held for _, held in server.ticks)
    failed = events(json_log, "echo tick failed")
    assert len(failed) == 2
    assert all("tick bug" in row["error"] for row in failed)


def test_the_tick_waits_for_its_interval(make_server: Any) -> None:
    server = make_server(tick_interval=60.0).start()
    server.stop()  # the tick thread wakes at once on stop, without a tick
    assert server.ticks == []


# -- actor systems ------------------------------------------------------------------------------


def test_the_server_runs_its_own_system_and_shuts_it_down(make_server: Any) -> None:
    server = make_server().start()
    own = server._system
    assert own is not None
    assert own.name == "echo-server"
    server.stop()
    assert own.is_shut_down


def test_a_given_system_is_used_and_left_running(
    make_server: Any, system: ActorSystem, clients: list[socket.socket]
) -> None:
    server = make_server(system=system).start()
    assert server._system is system
    assert echo(connect(server, clients), b"mine") == b"mine"
    server.stop()
    assert not system.is_shut_down
    assert system.io.alive


# -- TLS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["certfile", "keyfile"])
def test_tls_needs_both_files(given: str, tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match=f"the echo server's TLS needs both certfile and keyfile; got only {given}",
    ):
        EchoServer(**{given: tmp_path / "server.pem"})


def test_tls_with_both_files(make_server: Any, tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    cert = make_server_cert(tmp_path, ca)
    server = make_server(certfile=cert.cert, keyfile=cert.key).start()
    assert server.tls
    context = client_context(ca.cert)
    with (
        socket.create_connection((HOST, server.port), timeout=READ_TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=HOST) as sock,
    ):
        assert isinstance(sock, ssl.SSLSocket)
        assert echo(sock, b"secret") == b"secret"
    assert not make_server().tls
