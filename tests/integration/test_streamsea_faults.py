"""Supervised stream-sea subscriptions through the server's and the network's faults, over
real sockets on 127.0.0.1. Publishers number their messages (n, attempt); what a
subscription got is compared with what the stream holds.

- ``actorwire serve streamsea --store`` killed with SIGKILL five times while a publisher
  publishes over HTTP (a publish that raised is tried again: it may have been stored):
  two fan-out subscriptions each get the stream as the store holds it, once and in order,
  with no gap; the two members of a consumer group, on two connections, get each message
  once between them.
- In process, through a TCP proxy: connections severed (FIN and RST), black-holed past the
  heartbeat deadline, sent garbage, silenced, and closed at a JWT's expiry, while fan-out
  subscriptions and a consumer group take a stream: nothing lost or repeated. A black hole
  the server does not notice until its ping timeout: nothing lost or repeated either.
- A consumer group across a restart on its store, whichever member comes back first (no
  duplicate, no loss), and credentials rotated across a restart: FAILED with the reason
  after one refused login.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from actorwire.actors import Backoff
from actorwire.actors.link import LinkState
from actorwire.adapters.streamsea import (
    CredentialsError,
    FieldType,
    SchemaDefinition,
    StreamSeaConnection,
    Subscription,
    define_stream,
    publish,
    serve,
)
from actorwire.adapters.streamsea.config import ClientConfig, StreamSeaConfig, load_config
from actorwire.adapters.streamsea.server import StreamSeaServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.waiting import wait_until

WAIT = 15.0
STREAM = "faults"
SECRET = "demo-secret"
FAST: dict[str, Any] = {
    "heartbeat_interval": 0.2,
    "heartbeat_deadline": 1.0,
    "connect_timeout": 5.0,
    "backoff": Backoff(min=0.05, max=0.2, factor=2, jitter=0.2),
}

Tag = tuple[int, int]
"""A message's (n, attempt): the publisher's number for it and which try of it this is."""


# -- helpers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def schema() -> SchemaDefinition:
    definition = SchemaDefinition(STREAM, 1, fields=[])
    definition.add_field("n", FieldType.INTEGER)
    definition.add_field("attempt", FieldType.INTEGER)
    return definition


def tag(payload: Any) -> Tag:
    return int(payload["n"]), int(payload["attempt"])


def http_kw(port: int, **kw: Any) -> dict[str, Any]:
    return {
        "remote_host": "127.0.0.1",
        "remote_port": port,
        "client_id": "demo",
        "client_secret": SECRET,
        **kw,
    }


def ws_kw(port: int, **kw: Any) -> dict[str, Any]:
    return {**http_kw(port), **FAST, **kw}


class Recorder:
    """A subscription's callback: the tags of the messages it was given, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.got: list[Tag] = []

    def __call__(self, payload: Any) -> None:
        with self.lock:
            self.got.append(tag(payload))

    def tags(self) -> list[Tag]:
        with self.lock:
            return list(self.got)


class Publisher:
    """Publishes ``{"n", "attempt"}`` from a thread, one message after the other: a publish
    that raises is tried again (the next attempt) until the server accepts it. A publish
    that raised may or may not have been stored; one that returned was."""

    def __init__(self, send: Callable[[dict[str, int]], Any], pace: float = 0.0) -> None:
        self.send = send
        self.pace = pace
        self.cond = threading.Condition()
        self.accepted: list[Tag] = []
        self.failed: list[Tag] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def __enter__(self) -> Publisher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            n = 0
            while not self._stop.is_set():
                attempt = 0
                while True:
                    try:
                        self.send({"n": n, "attempt": attempt})
                    except (ConnectionError, TimeoutError):
                        with self.cond:
                            self.failed.append((n, attempt))
                        attempt += 1
                        # A pause between tries while the server is down; the next try is
                        # the check, so this waits for no condition.
                        self._stop.wait(0.01)
                        continue
                    with self.cond:
                        self.accepted.append((n, attempt))
                        self.cond.notify_all()
                    break
                n += 1
                if self.pace:
                    self._stop.wait(self.pace)  # a publishing rate, not a wait for anything
        except BaseException as exc:
            with self.cond:
                self.errors.append(exc)
                self.cond.notify_all()

    def wait_more(self, count: int, what: str) -> None:
        """Block until ``count`` more messages than now have been accepted."""
        with self.cond:
            target = len(self.accepted) + count
            ok = self.cond.wait_for(lambda: len(self.accepted) >= target or self.errors, WAIT)
            assert not self.errors, self.errors
            assert ok, f"publishing stalled {what} ({len(self.accepted)} accepted)"

    def stop(self) -> None:
        """Stop once the message being published is accepted: the last one accepted is the
        last one the stream holds."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the publisher did not stop"
        assert not self.errors, self.errors


def has_at_least(recorder: Recorder, count: int) -> Callable[[], bool]:
    return lambda: len(recorder.got) >= count


def holds(recorder: Recorder, message: Tag) -> Callable[[], bool]:
    return lambda: message in recorder.tags()


def resumed(sub: Subscription, before: int) -> Callable[[], bool]:
    return lambda: sub.resumes > before


def resumed_all(subs: dict[str, Subscription], before: dict[str, int], what: str) -> None:
    """Wait until every subscription resubscribed since ``before`` (its ``resumes`` then)."""
    for name, sub in subs.items():
        wait_until(resumed(sub, before[name]), WAIT, what=f"{name} resumed after {what}")


def wait_complete(
    stream: list[Tag], fanouts: list[Recorder], members: list[Recorder], what: str
) -> None:
    """Wait until each fan-out has as many messages as ``stream`` and the members as many
    between them (what then differs is an assertion's business, not a wait's)."""
    for i, fan in enumerate(fanouts):
        wait_until(has_at_least(fan, len(stream)), WAIT, what=f"{what}: fan-out {i}")
    wait_until(
        lambda: sum(len(m.got) for m in members) >= len(stream), WAIT, what=f"{what}: the group"
    )


def assert_fanout_exact(stream: list[Tag], fanouts: dict[str, Recorder]) -> None:
    """Each fan-out subscription got ``stream``: every message once, in the stream's order."""
    want = Counter(stream)
    for name, recorder in fanouts.items():
        got = recorder.tags()
        have = Counter(got)
        twice = [t for t in have if have[t] > want[t]]
        assert not twice, f"{name}: delivered more often than the stream holds: {twice[:20]}"
        missing = [t for t in want if have[t] < want[t]]
        assert not missing, f"{name}: in the stream, never delivered: {missing[:20]}"
        assert got == stream, f"{name}: not in the stream's order"


def assert_group_exact(stream: list[Tag], members: dict[str, Recorder]) -> None:
    """The members of one consumer group got every message of ``stream`` once between them."""
    union = Counter(t for recorder in members.values() for t in recorder.tags())
    want = Counter(stream)
    twice = sorted(t for t in union if union[t] > want[t])
    missing = sorted(t for t in want if union[t] < want[t])
    assert not twice and not missing, (
        f"consumer group: {len(twice)} delivered twice (first {twice[:10]}), "
        f"{len(missing)} never delivered (first {missing[:10]})"
    )


# -- 1. SIGKILL x5 with --store ---------------------------------------------------------------

KILLS = 5
PER_RUN = 150  # messages accepted between two kills


class ServerProcess:
    """``actorwire serve streamsea --store``, (re)started on one port and store."""

    def __init__(self, port: int, store: Path) -> None:
        self.port = port
        self.store = store
        self.log = store.with_suffix(".log")  # the servers' stderr, for a failure's message
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        assert self.proc is None
        with self.log.open("ab") as stderr:
            self.proc = proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "actorwire.pipelines.cli",
                    "serve",
                    "streamsea",
                    "--port",
                    str(self.port),
                    "--store",
                    str(self.store),
                ],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        lines: queue.Queue[str] = queue.Queue()
        stdout = proc.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=WAIT)
        except queue.Empty:
            line = ""
        expected = rf"stream-sea server listening on 127\.0\.0\.1:{self.port}\n"
        if not re.fullmatch(expected, line):
            self.kill()
            tail = self.log.read_text(errors="replace")[-2000:]
            raise AssertionError(f"the stream-sea server did not start: {line!r}\n{tail}")

    def kill(self) -> None:
        """SIGKILL, and reap it (a no-op when not running)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(WAIT)
        if proc.stdout is not None:
            proc.stdout.close()


def stored_tags(store: Path) -> list[Tag]:
    """The stream as the store holds it, in seq order, read by the server's own code."""
    kept = StreamSeaServer(store_path=store)
    try:
        return [tag(json.loads(text)) for _, text in kept.groups.logs[STREAM].after(0)]
    finally:
        kept.stop()


@dataclasses.dataclass
class KillRun:
    stored: list[Tag]
    publisher: Publisher
    recorders: dict[str, Recorder]
    subs: dict[str, Subscription]
    stats: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def kill_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KillRun]:
    """Two connections, each with a fan-out subscription and a member of one consumer
    group, through five SIGKILLs of the server (restarted on the same port and store)."""
    server = ServerProcess(free_port(), tmp_path_factory.mktemp("kill") / "streamsea.db")
    try:
        server.start()
        http = http_kw(server.port)
        assert define_stream(**http, stream=STREAM, schema=schema()).status_code == 200
        group = str(uuid.uuid4())
        recorders = {name: Recorder() for name in ("fan-1", "fan-2", "member-1", "member-2")}
        with (
            StreamSeaConnection(**ws_kw(server.port)) as one,
            StreamSeaConnection(**ws_kw(server.port)) as two,
        ):
            subs = {
                "fan-1": one.subscribe(STREAM, callback=recorders["fan-1"]),
                "member-1": one.subscribe(STREAM, group_id=group, callback=recorders["member-1"]),
                "fan-2": two.subscribe(STREAM, callback=recorders["fan-2"]),
                "member-2": two.subscribe(STREAM, group_id=group, callback=recorders["member-2"]),
            }
            with Publisher(lambda p: publish(**http, stream=STREAM, payload=p)) as publisher:
                for kill in range(1, KILLS + 1):
                    publisher.wait_more(PER_RUN, f"before kill {kill}")
                    resumes = {name: sub.resumes for name, sub in subs.items()}
                    server.kill()
                    server.start()
                    resumed_all(subs, resumes, f"kill {kill}")
                publisher.wait_more(PER_RUN, "after the last restart")
            accepted = publisher.accepted
            fanouts = [recorders["fan-1"], recorders["fan-2"]]
            members = [recorders["member-1"], recorders["member-2"]]
            # The last message accepted is the stream's last: wait for it, then for as many
            # messages in the group as in a fan-out.
            for i, fan in enumerate(fanouts, 1):
                wait_until(holds(fan, accepted[-1]), WAIT, what=f"fan-{i}'s last")
            wait_complete(recorders["fan-1"].tags(), fanouts, members, "after the kills")
            stats = {"one": one.stats(), "two": two.stats()}
        server.kill()
        yield KillRun(stored_tags(server.store), publisher, recorders, subs, stats)
    finally:
        server.kill()


@pytest.mark.timeout(60)
def test_sigkill_5_times_with_a_store_each_fanout_gets_every_message_once_in_order(
    kill_run: KillRun,
) -> None:
    stored, publisher = kill_run.stored, kill_run.publisher
    # The kills met publishes: some raised and were tried again.
    assert len(publisher.failed) >= KILLS
    assert set(publisher.accepted) <= set(stored), "publishes accepted, then not stored"
    assert set(stored) <= set(publisher.accepted) | set(publisher.failed)
    assert len(stored) >= (KILLS + 1) * PER_RUN
    assert_fanout_exact(stored, {n: kill_run.recorders[n] for n in ("fan-1", "fan-2")})
    for name in ("fan-1", "fan-2"):
        sub = kill_run.subs[name]
        assert sub.gaps == 0 and sub.resumes >= KILLS, (name, sub.gaps, sub.resumes)
    for name, stats in kill_run.stats.items():
        assert stats["connects"] >= KILLS + 1, (name, stats)
        assert stats["state"] == "connected", (name, stats)
    # The group's members competed (what they got is the next test's).
    assert kill_run.recorders["member-1"].got and kill_run.recorders["member-2"].got


@pytest.mark.timeout(60)
def test_sigkill_5_times_with_a_store_the_group_gets_every_message_once(
    kill_run: KillRun,
) -> None:
    members = {n: kill_run.recorders[n] for n in ("member-1", "member-2")}
    assert_group_exact(kill_run.stored, members)
    gaps = {n: kill_run.subs[n].gaps for n in members}
    assert gaps == dict.fromkeys(members, 0), gaps


# -- 2. TCP-level faults through a proxy, in process -----------------------------------------


class _Pair:
    """A client's connection through the proxy and the proxy's connection upstream."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = upstream
        self.black_hole = False  # drop what either side sends
        self.half_open = False  # once the client leaves, keep the upstream side open


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of ``upstream`` (a port), run by one thread over a
    selector. Each connection accepted is connected upstream at once (closed when that is
    refused). Faults: ``sever`` cuts every connection (FIN, or RST), ``black_hole`` drops
    every byte of the current connections both ways, and ``refuse`` closes new ones."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.port: int = self.listener.getsockname()[1]
        self.refusing = False
        self._pairs: dict[socket.socket, _Pair] = {}  # either side -> its pair
        self._commands: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]]] = queue.Queue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.listener, selectors.EVENT_READ)
        self._sel.register(self._wake_r, selectors.EVENT_READ)
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="tcp-proxy", daemon=True)
        self._thread.start()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- control (any thread) ---------------------------------------------------------------

    def _run(self, command: Callable[[], Any]) -> Any:
        """Run ``command`` on the proxy's thread; its result once it ran."""
        done: queue.Queue[Any] = queue.Queue()
        self._commands.put((command, done))
        self._wake_w.send(b"x")
        ok, value = done.get(timeout=WAIT)
        if not ok:
            raise value
        return value

    def sever(self, *, reset: bool = False) -> int:
        """Cut every connection through the proxy, both sides at once: a FIN each, or an RST
        (``reset``). Returns how many were cut."""

        def cut() -> int:
            pairs = {id(p): p for p in self._pairs.values()}
            for pair in pairs.values():
                self._close(pair, reset=reset)
            return len(pairs)

        count: int = self._run(cut)
        return count

    def black_hole(self, *, half_open: bool = False) -> int:
        """From now on drop every byte of the current connections, both ways; a client that
        gives up closes its side, and the upstream side is closed with it, or (``half_open``)
        left open until the server closes it. Returns how many connections."""

        def drop() -> int:
            pairs = {id(p): p for p in self._pairs.values()}
            for pair in pairs.values():
                pair.black_hole = True
                pair.half_open = half_open
            return len(pairs)

        count: int = self._run(drop)
        return count

    def refuse(self, refusing: bool) -> None:
        """Close (or, with False, connect again) each connection as soon as accepted."""

        def set_refusing() -> None:
            self.refusing = refusing

        self._run(set_refusing)

    def close(self) -> None:
        """Cut every connection, stop listening and stop the thread; idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the proxy's thread did not stop"
        self._wake_w.close()

    # -- the proxy's thread -----------------------------------------------------------------

    def _loop(self) -> None:
        try:
            while not self._closed:
                for key, _ in self._sel.select():
                    sock = key.fileobj
                    if sock is self.listener:
                        self._accept()
                    elif sock is self._wake_r:
                        self._wake_r.recv(4096)
                        self._commands_due()
                    else:
                        assert isinstance(sock, socket.socket)
                        pair = self._pairs.get(sock)
                        if pair is not None:
                            self._forward(pair, sock)
        finally:
            for pair in {id(p): p for p in self._pairs.values()}.values():
                self._close(pair)
            self._commands_due()
            self._sel.close()
            self.listener.close()
            self._wake_r.close()

    def _commands_due(self) -> None:
        while True:
            try:
                command, done = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                done.put((True, command()))
            except Exception as exc:  # handed to the caller
                done.put((False, exc))

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except BlockingIOError:
            return
        if self.refusing:
            client.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=WAIT)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setblocking(True)
            sock.settimeout(WAIT)  # sends only: reads happen when the selector says so
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair = _Pair(client, upstream)
        for sock in (client, upstream):
            self._pairs[sock] = pair
            self._sel.register(sock, selectors.EVENT_READ)

    def _forward(self, pair: _Pair, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            if sock is pair.client and pair.half_open and pair.upstream is not None:
                self._drop(pair.client)  # the client left; the server is not told
                return
            self._close(pair)
            return
        if pair.black_hole:
            return
        other = pair.upstream if sock is pair.client else pair.client
        if other is None:
            return
        try:
            other.sendall(data)
        except OSError:
            self._close(pair)

    def _drop(self, sock: socket.socket, *, reset: bool = False) -> None:
        if self._pairs.pop(sock, None) is None:
            return
        self._sel.unregister(sock)
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _close(self, pair: _Pair, *, reset: bool = False) -> None:
        self._drop(pair.client, reset=reset)
        if pair.upstream is not None:
            self._drop(pair.upstream, reset=reset)
            pair.upstream = None


@pytest.fixture(scope="module")
def jwt_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwt_config(key: rsa.RSAPrivateKey, **limits: Any) -> StreamSeaConfig:
    """The packaged config whose client ``demo`` may also log in with a JWT signed by ``key``."""
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return dataclasses.replace(
        load_config(None), clients=(ClientConfig("demo", SECRET, pem),), **limits
    )


@pytest.fixture
def jwt_server(jwt_key: rsa.RSAPrivateKey) -> Iterator[StreamSeaServer]:
    server = serve(port=0, config=jwt_config(jwt_key))
    try:
        server.define(schema())
        yield server
    finally:
        server.stop()


@pytest.mark.timeout(60)
def test_cuts_black_holes_garbage_silence_and_jwt_expiry_lose_and_repeat_nothing(
    jwt_server: StreamSeaServer, jwt_key: rsa.RSAPrivateKey
) -> None:
    """Connection one logs in with the secret, two with a JWT that expires 1.5 s after each
    login (the server closes the connection then; the client logs in with a new one)."""
    server = jwt_server
    tokens: list[str] = []

    def token() -> str:
        tokens.append(jwt.encode({"exp": time.time() + 1.5}, jwt_key, algorithm="RS512"))
        return tokens[-1]

    group = str(uuid.uuid4())
    recorders = {name: Recorder() for name in ("fan-1", "fan-2", "member-1", "member-2")}
    with (
        Proxy(server.port) as proxy,
        StreamSeaConnection(**ws_kw(proxy.port)) as one,
        StreamSeaConnection(**ws_kw(proxy.port, client_secret=None, jwt=token)) as two,
    ):
        subs = {
            "fan-1": one.subscribe(STREAM, callback=recorders["fan-1"]),
            "member-1": one.subscribe(STREAM, group_id=group, callback=recorders["member-1"]),
            "fan-2": two.subscribe(STREAM, callback=recorders["fan-2"]),
            "member-2": two.subscribe(STREAM, group_id=group, callback=recorders["member-2"]),
        }
        conns = (one, two)

        def silence() -> None:
            server.go_silent()
            # While silent a connection cannot log in again: it stays down until resume().
            wait_until(
                lambda: all(c.state is not LinkState.CONNECTED for c in conns), WAIT, what="drops"
            )
            server.resume()

        faults: list[tuple[str, Callable[[], Any]]] = [
            ("a cut (FIN)", proxy.sever),
            ("a cut (RST)", lambda: proxy.sever(reset=True)),
            ("a black hole past the heartbeat deadline", proxy.black_hole),
            ("garbage", server.send_garbage),
            ("the server's silence past the heartbeat deadline", silence),
            ("another cut (RST)", lambda: proxy.sever(reset=True)),
        ]
        with Publisher(lambda p: server.publish(STREAM, p), pace=0.001) as publisher:
            for what, fault in faults:
                publisher.wait_more(100, f"before {what}")
                resumes = {name: sub.resumes for name, sub in subs.items()}
                fault()
                resumed_all(subs, resumes, what)
            publisher.wait_more(100, "after the faults")
        stream = publisher.accepted  # an in-process publish never fails
        fanouts = [recorders["fan-1"], recorders["fan-2"]]
        members = [recorders["member-1"], recorders["member-2"]]
        wait_complete(stream, fanouts, members, "after the faults")
        stats = [conn.stats() for conn in conns]
        assert_fanout_exact(stream, {n: recorders[n] for n in ("fan-1", "fan-2")})
        assert_group_exact(stream, {n: recorders[n] for n in ("member-1", "member-2")})
        gaps = {name: sub.gaps for name, sub in subs.items()}
        assert gaps == dict.fromkeys(subs, 0), gaps
    for s in stats:
        assert s["connects"] >= len(faults) + 1, s
        assert s["protocol_errors"] >= 1, s  # the garbage, counted
    assert len(tokens) >= 3 and server.stats()["lost"] == 0
    assert all(recorder.got for recorder in recorders.values())


@pytest.mark.timeout(60)
def test_a_half_open_connection_past_the_deadline_loses_and_repeats_nothing(
    jwt_key: rsa.RSAPrivateKey,
) -> None:
    """A black hole the server does not notice (no FIN, no RST reaches it): the client gives
    up after its heartbeat deadline and comes back on a new connection while the server
    still holds the old one, until its ping timeout."""
    config = jwt_config(jwt_key, ping_interval=0.5, ping_timeout=3.0, rejoin_grace=1.0)
    server = serve(port=0, config=config)
    try:
        server.define(schema())
        group = str(uuid.uuid4())
        recorders = {name: Recorder() for name in ("fan", "member-1", "member-2")}
        with (
            Proxy(server.port) as proxy,
            StreamSeaConnection(**ws_kw(proxy.port)) as one,
            StreamSeaConnection(**ws_kw(server.port)) as two,
        ):
            subs = {
                "fan": one.subscribe(STREAM, callback=recorders["fan"]),
                "member-1": one.subscribe(STREAM, group_id=group, callback=recorders["member-1"]),
                "member-2": two.subscribe(STREAM, group_id=group, callback=recorders["member-2"]),
            }
            with Publisher(lambda p: server.publish(STREAM, p), pace=0.001) as publisher:
                publisher.wait_more(100, "before the black hole")
                resumes = {name: sub.resumes for name, sub in subs.items()}
                websockets = server.stats()["websockets"]
                assert proxy.black_hole(half_open=True) == 1
                resumed_all({n: subs[n] for n in ("fan", "member-1")}, resumes, "the black hole")
                # The server holds the old connection and the new one, then drops the old.
                assert server.stats()["websockets"] == websockets + 1
                wait_until(
                    lambda: server.stats()["websockets"] == websockets,
                    WAIT,
                    what="the server's ping timeout",
                )
                wait_until(lambda: server.stats()["orphans"] == 0, WAIT, what="no orphan left")
                publisher.wait_more(100, "after the old connection's end")
            stream = publisher.accepted
            members = {n: recorders[n] for n in ("member-1", "member-2")}
            wait_complete(stream, [recorders["fan"]], list(members.values()), "the end")
            assert_fanout_exact(stream, {"fan": recorders["fan"]})
            assert_group_exact(stream, members)
            gaps = {name: sub.gaps for name, sub in subs.items()}
            assert gaps == dict.fromkeys(subs, 0), gaps
    finally:
        server.stop()


# -- 3. a consumer group across a restart on the store, and credentials rotated -------------


@dataclasses.dataclass
class Member:
    proxy: Proxy
    conn: StreamSeaConnection
    sub: Subscription
    recorder: Recorder


@contextlib.contextmanager
def two_members(port: int) -> Iterator[tuple[Member, Member]]:
    """Two members of one consumer group, each on its own connection through its own proxy
    (so that each can be kept away from the server)."""
    group = str(uuid.uuid4())
    with contextlib.ExitStack() as stack:
        members = []
        for _ in range(2):
            proxy = stack.enter_context(Proxy(port))
            conn = stack.enter_context(StreamSeaConnection(**ws_kw(proxy.port)))
            recorder = Recorder()
            sub = conn.subscribe(STREAM, group_id=group, callback=recorder)
            members.append(Member(proxy, conn, sub, recorder))
        yield members[0], members[1]


def holds_any(members: tuple[Member, ...], message: Tag) -> Callable[[], bool]:
    return lambda: any(message in member.recorder.tags() for member in members)


def message(n: int) -> dict[str, int]:
    return {"n": n, "attempt": 0}


def first_and_second(one: Member, two: Member) -> tuple[Member, Member]:
    """The member that got message 0 (seq 1) and the one that got message 1 (seq 2)."""
    wait_until(lambda: len(one.recorder.got) + len(two.recorder.got) == 2, WAIT, what="both")
    assert len(one.recorder.got) == len(two.recorder.got) == 1, "the members do not compete"
    return (one, two) if one.recorder.got == [(0, 0)] else (two, one)


def restart(server: StreamSeaServer) -> StreamSeaServer:
    """Stop ``server`` and start another on its port and store."""
    server.stop()
    return serve(port=server.port, store_path=server.store_path)


@pytest.mark.timeout(30)
def test_a_group_restarted_on_its_store_repeats_nothing_when_the_member_behind_comes_first(
    tmp_path: Path,
) -> None:
    servers = [serve(port=0, store_path=tmp_path / "streamsea.db")]
    try:
        servers[0].define(schema())
        with two_members(servers[0].port) as (one, two):
            for n in (0, 1):
                servers[0].publish(STREAM, message(n))
            behind, ahead = first_and_second(one, two)
            ahead.proxy.refuse(True)
            servers.append(restart(servers[0]))
            resumes = ahead.sub.resumes
            wait_until(lambda: behind.sub.resumes == 1, WAIT, what="the member behind back")
            ahead.proxy.refuse(False)
            wait_until(lambda: ahead.sub.resumes > resumes, WAIT, what="the member ahead back")
            servers[1].publish(STREAM, message(2))
            wait_until(holds_any((behind, ahead), (2, 0)), WAIT, what="message 2")
            stream = [(0, 0), (1, 0), (2, 0)]
            assert_group_exact(stream, {"1": behind.recorder, "2": ahead.recorder})
    finally:
        for server in servers:
            server.stop()


@pytest.mark.timeout(30)
def test_a_group_restarted_on_its_store_loses_nothing_when_the_member_ahead_comes_first(
    tmp_path: Path,
) -> None:
    servers = [serve(port=0, store_path=tmp_path / "streamsea.db")]
    try:
        servers[0].define(schema())
        with two_members(servers[0].port) as (one, two):
            for n in (0, 1):
                servers[0].publish(STREAM, message(n))
            behind, ahead = first_and_second(one, two)
            # What the server sends the member behind from now on never reaches it.
            behind.proxy.refuse(True)
            behind.proxy.black_hole()
            for n in (2, 3):
                servers[0].publish(STREAM, message(n))
            wait_until(lambda: len(ahead.recorder.got) == 2, WAIT, what="the member ahead's")
            servers.append(restart(servers[0]))
            wait_until(lambda: ahead.sub.resumes == 1, WAIT, what="the member ahead back")
            behind.proxy.refuse(False)
            wait_until(lambda: behind.sub.resumes == 1, WAIT, what="the member behind back")
            servers[1].publish(STREAM, message(4))
            wait_until(holds_any((behind, ahead), (4, 0)), WAIT, what="message 4")
            stream = [(n, 0) for n in range(5)]
            assert_group_exact(stream, {"1": behind.recorder, "2": ahead.recorder})
            assert behind.sub.gaps == 0
    finally:
        for server in servers:
            server.stop()


@pytest.mark.timeout(30)
def test_credentials_rotated_across_a_restart_fail_once_with_the_reason(tmp_path: Path) -> None:
    """The server comes back with a new secret for the client: each connection ends FAILED
    after one refused login, and its subscriptions end with CredentialsError."""
    first = serve(port=0)
    servers = [first]
    try:
        first.define(schema())
        states: list[tuple[LinkState, str]] = []
        conn = StreamSeaConnection(
            **ws_kw(first.port, state_listener=lambda state, why: states.append((state, why)))
        )
        with conn:
            fan = conn.subscribe(STREAM, callback=Recorder())
            member = conn.subscribe(STREAM, group_id=str(uuid.uuid4()), callback=Recorder())
            first.stop()
            rotated = "rotated-secret-7f3a"
            clients = (ClientConfig("demo", rotated),)
            config = dataclasses.replace(load_config(None), clients=clients)
            servers.append(serve(port=first.port, config=config))
            wait_until(lambda: conn.state is LinkState.FAILED, WAIT, what="FAILED")
            assert servers[1].stats()["auth_failures"] == 1  # one try: no redial storm
            assert servers[1].stats()["websockets_opened"] == 1
            state, why = states[-1]
            assert state is LinkState.FAILED and "authentication failed" in why, states
            assert "wrong client id or secret" in why
            for sub in (fan, member):
                assert sub.ended and isinstance(sub.error, CredentialsError), sub.error
                assert "Authentication unsuccessful" in str(sub.error)
            shown = [why, str(fan.error), repr(conn), repr(fan)]
            assert not any(SECRET in text or rotated in text for text in shown), shown
    finally:
        for server in servers:
            server.stop()
