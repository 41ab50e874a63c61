"""The kit's TcpServer over real sockets on 127.0.0.1: an actor per connection, writes through
a byte-bounded outbox, slow readers dropped (stalled or over the bound), fan-out through a
TopicIndex, bounded reads, and sessions that fail alone."""

from __future__ import annotations

import io
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from actorwire.actors import ActorSystem
from actorwire.actors.framing import LineFramer
from actorwire.actors.serving import TopicIndex
from actorwire.actors.tcpserver import ServerConnection, TcpServer

from tests.support.waiting import wait_until

HOST = "127.0.0.1"
READ_TIMEOUT = 5.0


class Hub:
    """A tiny line protocol on the kit: ``SUB key``, ``PING n``, ``BYE`` (answered, then a
    graceful close) and ``BOOM`` (a session bug). ``publish`` fans out through a TopicIndex."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.index: TopicIndex[str, HubSession] = TopicIndex()
        self.closed: list[str] = []
        self.received = 0
        self.gate: threading.Event | None = None  # set: sessions block on their first read
        self.changed = threading.Condition()

    def session(self, conn: ServerConnection) -> HubSession:
        return HubSession(self, conn)

    def on_change(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def publish(self, key: str, payload: bytes) -> int:
        with self.lock:
            subscribers = self.index.match(key)
            for s in subscribers:
                s.conn.send(b"DATA " + key.encode() + b" " + payload + b"\n")
        return len(subscribers)

    def subscribers(self) -> int:
        with self.lock:
            return len(self.index)


class HubSession:
    def __init__(self, hub: Hub, conn: ServerConnection) -> None:
        self.hub = hub
        self.conn = conn
        self.framer = LineFramer(max_frame_size=1 << 20)

    def on_data(self, data: bytes) -> None:
        hub = self.hub
        if hub.gate is not None:
            hub.gate.wait(10)
        with hub.lock:
            hub.received += len(data)
        self.framer.receive_data(data)
        for line in self.framer.frames():
            verb, _, arg = line.partition(b" ")
            if verb == b"SUB":
                with hub.lock:
                    hub.index.add(self, arg.decode())
                self.conn.send(b"OK " + arg + b"\n")
            elif verb == b"PING":
                self.conn.send(b"PONG " + arg + b"\n")
            elif verb == b"BYE":
                self.conn.send(b"BYE\n")
                self.conn.close()
            elif verb == b"BOOM":
                raise RuntimeError("a session bug")

    def on_closed(self, reason: str) -> None:
        with self.hub.lock:
            self.hub.index.remove_subscriber(self)
            self.hub.closed.append(reason)


class LineClient:
    """A blocking line client; ``rcvbuf`` shrinks its receive buffer (a slow reader's)."""

    def __init__(self, port: int, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(READ_TIMEOUT)
        self.sock.connect((HOST, port))
        self.port = self.sock.getsockname()[1]
        self.framer = LineFramer(max_frame_size=1 << 20)
        self.pending: list[bytes] = []

    def send(self, line: bytes) -> None:
        self.sock.sendall(line + b"\n")

    def recv(self, timeout: float = READ_TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while not self.pending:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.framer.receive_data(chunk)
            self.pending.extend(self.framer.frames())
        return self.pending.pop(0)

    def ask(self, line: bytes) -> bytes:
        self.send(line)
        return self.recv()

    def expect_closed(self, timeout: float = READ_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                if not self.sock.recv(65536):
                    return
            except ConnectionResetError:
                return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    with ActorSystem("tcpserver-test") as sys_:
        yield sys_


@pytest.fixture
def hub() -> Hub:
    return Hub()


@pytest.fixture
def clients() -> Iterator[list[LineClient]]:
    made: list[LineClient] = []
    yield made
    for c in made:
        c.close()


def serve(system: ActorSystem, hub: Hub, **options: Any) -> TcpServer:
    server = TcpServer(system, hub.session, name="kit", on_change=hub.on_change, **options)
    server.start()
    return server


def connect(server: TcpServer, clients: list[LineClient], rcvbuf: int | None = None) -> LineClient:
    c = LineClient(server.port, rcvbuf)
    clients.append(c)
    return c


def conn_actors(system: ActorSystem) -> list[str]:
    return sorted(a.name for a in system.actors() if a.name.startswith("kit.conn-"))


def log_events(log: io.StringIO, event: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]
    return [r for r in rows if r.get("event") == event]


def test_each_connection_gets_an_actor_that_ends_with_it(
    system: ActorSystem, hub: Hub, clients: list[LineClient]
) -> None:
    server = serve(system, hub)
    try:
        trio = [connect(server, clients) for _ in range(3)]
        for n, c in enumerate(trio):
            assert c.ask(b"PING %d" % n) == b"PONG %d" % n
        names = conn_actors(system)
        assert len(names) == 3
        assert names == sorted(conn.name for conn in server.connections())
        assert {conn.peer for conn in server.connections()} == {f"{HOST}:{c.port}" for c in trio}
        for c in trio:
            c.close()
        wait_until(lambda: not conn_actors(system) and len(hub.closed) == 3, what="actors end")
        assert all(reason == "closed by the peer" for reason in hub.closed)
        assert server.stats.accepted == 3 and server.stats.closed == 3
    finally:
        server.stop()


def test_a_graceful_close_writes_what_was_queued_first(
    system: ActorSystem, hub: Hub, clients: list[LineClient]
) -> None:
    server = serve(system, hub)
    try:
        c = connect(server, clients)
        assert c.ask(b"BYE") == b"BYE"
        c.expect_closed()
        wait_until(lambda: hub.closed == ["closed by the server"], what="session closed")
    finally:
        server.stop()


def test_a_reader_that_stops_reading_but_keeps_pinging_is_dropped_after_the_deadline(
    system: ActorSystem, hub: Hub, clients: list[LineClient], json_log: io.StringIO
) -> None:
    deadline = 0.4
    server = serve(
        system,
        hub,
        stall_deadline=deadline,
        max_outbox_bytes=16 << 20,  # far above what waits: only the stall can drop it
        send_buffer=4096,
        write_chunk=16384,
    )
    try:
        slow = connect(server, clients, rcvbuf=4096)
        assert slow.ask(b"SUB k") == b"OK k"  # ...and never reads again
        subscribed = time.monotonic()
        good = connect(server, clients)
        assert good.ask(b"SUB k") == b"OK k"
        payload = b"x" * 8192
        sent = 0
        give_up = time.monotonic() + 10
        while server.stats.dropped_stalled == 0:
            assert time.monotonic() < give_up, "the stalled reader was never dropped"
            assert hub.publish("k", payload) >= 1
            sent += 1
            assert good.recv() == b"DATA k " + payload  # the reading subscriber keeps up
            slow.send(b"PING %d" % sent)  # it keeps talking: still dropped
            with hub.changed:
                hub.changed.wait_for(lambda: server.stats.dropped_stalled > 0, 0.02)
        assert time.monotonic() - subscribed >= deadline
        assert server.stats.dropped_stalled == 1
        assert server.stats.dropped_overflow == 0
        wait_until(lambda: len(server.connections()) == 1, what="the slow connection ends")
        assert any(r.startswith("slow reader dropped: it took nothing for") for r in hub.closed)
        # the other subscriber is still served
        assert hub.publish("k", b"after") == 1
        assert good.recv() == b"DATA k after"
        (event,) = log_events(json_log, "slow reader dropped")
        assert event["peer"] == f"{HOST}:{slow.port}"
        assert event["kind"] == "stalled" and event["level"] == "warning"
    finally:
        server.stop()


def test_an_outbox_that_would_pass_its_bound_drops_the_peer_at_once_and_memory_stays_bounded(
    system: ActorSystem, hub: Hub, clients: list[LineClient]
) -> None:
    bound, chunk = 64 * 1024, 16 * 1024
    server = serve(
        system,
        hub,
        max_outbox_bytes=bound,
        stall_deadline=60.0,  # never reached: only the bound can drop it
        send_buffer=4096,
        write_chunk=chunk,
    )
    try:
        slow = connect(server, clients, rcvbuf=4096)
        assert slow.ask(b"SUB k") == b"OK k"
        good = connect(server, clients)
        assert good.ask(b"SUB k") == b"OK k"
        payload = b"y" * 8000
        frame = len(b"DATA k ") + len(payload) + 1
        for n in range(200):  # 1.6 MB for a reader whose buffers hold a few KB
            hub.publish("k", payload)
            assert good.recv() == b"DATA k " + payload, n
        assert server.stats.dropped_overflow == 1  # counted when refused, not later
        assert server.stats.dropped_stalled == 0
        stats = server.stats.as_dict()
        assert 0 < stats["peak_outbox_bytes"] <= bound
        assert stats["peak_buffered_bytes"] <= bound + 2 * chunk + frame
        wait_until(lambda: len(server.connections()) == 1, what="the slow connection ends")
        assert any("max_outbox_bytes=65536" in r for r in hub.closed)
    finally:
        server.stop()


def test_fan_out_reaches_only_the_matching_subscribers(
    system: ActorSystem, hub: Hub, clients: list[LineClient]
) -> None:
    server = serve(system, hub)
    try:
        many = [connect(server, clients) for _ in range(20)]
        for n, c in enumerate(many):
            assert c.ask(b"SUB k%d" % n) == b"OK k%d" % n
        assert hub.subscribers() == 20
        assert hub.publish("k7", b"seven") == 1
        assert many[7].recv() == b"DATA k7 seven"
        for n, c in enumerate(many):
            # anything published to this client would come before the answer to this ping
            assert c.ask(b"PING %d" % n) == b"PONG %d" % n
        sent = {conn.peer: conn.frames_sent for conn in server.connections()}
        assert sent.pop(f"{HOST}:{many[7].port}") == 3  # OK, DATA, PONG
        assert set(sent.values()) == {2}  # OK, PONG
    finally:
        server.stop()


def test_a_session_that_raises_ends_only_its_own_connection(
    system: ActorSystem, hub: Hub, clients: list[LineClient]
) -> None:
    server = serve(system, hub)
    try:
        bad, other = connect(server, clients), connect(server, clients)
        assert other.ask(b"PING 1") == b"PONG 1"
        bad.send(b"BOOM")
        bad.expect_closed()
        assert server.stats.session_errors == 1
        assert other.ask(b"PING 2") == b"PONG 2"
        wait_until(lambda: hub.closed == ["session failed: RuntimeError"], what="bad session end")
        late = connect(server, clients)
        assert late.ask(b"PING 3") == b"PONG 3"
    finally:
        server.stop()


def test_reads_stop_while_the_connection_actor_is_behind(
    system: ActorSystem, hub: Hub, clients: list[LineClient]
) -> None:
    hub.gate = threading.Event()
    read_size, pending = 4096, 2
    server = serve(system, hub, read_size=read_size, max_pending_reads=pending)
    try:
        c = connect(server, clients)
        c.sock.setblocking(False)
        chunk = (b"z" * 1023 + b"\n") * 64  # lines the session frames and ignores
        sent, limit = 0, 32 << 20
        while sent < limit:
            try:
                sent += c.sock.send(chunk)
            except BlockingIOError:
                # Full for a while: every buffer between the client and the server is full.
                _, writable, _ = select.select([], [c.sock], [], 0.3)
                if not writable:
                    break
        assert sent < limit  # the server stopped reading
        (conn,) = server.connections()
        assert conn.bytes_received <= pending * read_size
        hub.gate.set()
        c.sock.setblocking(True)
        wait_until(lambda: hub.received == sent, 10, what="every byte read once released")
    finally:
        hub.gate.set()
        server.stop()


def test_stop_ends_every_connection_and_start_listens_on_the_same_port(
    system: ActorSystem, hub: Hub, clients: list[LineClient]
) -> None:
    server = serve(system, hub)
    port = server.port
    try:
        a, b = connect(server, clients), connect(server, clients)
        assert a.ask(b"PING 1") == b"PONG 1" and b.ask(b"PING 2") == b"PONG 2"
        server.stop()
        assert not server.listening
        assert server.connections() == []
        assert sorted(hub.closed) == ["server stopped", "server stopped"]  # handled by then
        wait_until(lambda: conn_actors(system) == [], what="the actors stop")
        a.expect_closed()
        b.expect_closed()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((HOST, port), timeout=READ_TIMEOUT).close()
        server.start()
        assert server.port == port
        assert connect(server, clients).ask(b"PING 3") == b"PONG 3"
    finally:
        server.stop()
    server.stop()  # idempotent


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_outbox_bytes", 0),
        ("stall_deadline", 0),
        ("write_chunk", 0),
        ("read_size", True),
        ("max_pending_reads", -1),
        ("handshake_timeout", 0),
        ("send_buffer", 0),
        ("port", 70000),
    ],
)
def test_bad_settings_are_refused_by_name(
    system: ActorSystem, hub: Hub, option: str, value: object
) -> None:
    with pytest.raises(ValueError, match=option):
        TcpServer(system, hub.session, **{option: value})  # type: ignore[arg-type]


def test_an_ssl_option_that_is_not_a_context_is_refused(system: ActorSystem, hub: Hub) -> None:
    with pytest.raises(TypeError, match=r"ssl\.SSLContext"):
        TcpServer(system, hub.session, ssl="cert.pem")  # type: ignore[arg-type]
