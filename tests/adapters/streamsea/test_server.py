"""The embedded stream-sea server over real sockets on 127.0.0.1: raw HTTP (``http.client``)
and raw websockets (websockets' sans-I/O client over a blocking socket, so pings, close codes,
binary frames and bad UTF-8 are all visible; the asyncio client for TLS). Every route, gzip and
plain bodies, Basic auth, basic and JWT authentication, subscribe replies and deliveries as
the reference clients read them, competing and fan-out groups, resuming after ``kill()`` and
after a restart on the same store (also after SIGKILL), consumer groups restored from the
store whichever member comes back first, a subscription taken over by its client from a new
connection, bad input of every kind with the server serving on, pings and ping timeouts, the
fault switches, bounded logs, paced backlogs, limits and TLS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import gzip
import http.client
import json
import signal
import socket
import sqlite3
import ssl as _ssl
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from actorwire.actors.tls import client_context
from actorwire.adapters.streamsea.config import ClientConfig, StreamSeaConfig, load_config
from actorwire.adapters.streamsea.http import UnknownStream
from actorwire.adapters.streamsea.schema import SchemaDefinition, SchemaError
from actorwire.adapters.streamsea.server import GARBAGE, StreamSeaServer, serve
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from tests.support.tlscerts import make_ca, make_server_cert
from tests.support.waiting import wait_until

HOST = "127.0.0.1"
WAIT = 5.0
"""Seconds a client waits for something that must come."""
QUIET = 0.3
"""Seconds "nothing arrives" must hold in a negative check."""
SECRET = "demo-secret"
AUTH = "Basic " + base64.b64encode(f"demo:{SECRET}".encode()).decode()
BOILER: dict[str, Any] = {
    "name": "boiler",
    "version": 1,
    "fields": [{"name": "t", "type": "float"}, {"name": "site", "type": "string"}],
}


def config(**changes: Any) -> StreamSeaConfig:
    """The packaged default config with ``changes``."""
    return dataclasses.replace(load_config(None), **changes)


def reading(n: int) -> dict[str, Any]:
    return {"t": float(n), "site": f"s{n}"}


# --------------------------------------------------------------------------- HTTP


def call(
    server: StreamSeaServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    gz: bool = False,
    auth: str | None = AUTH,
    raw: bytes | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """One request on its own connection: (status, the JSON reply, headers)."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=WAIT)
    try:
        headers = {"Accept": "application/json"}
        if auth is not None:
            headers["Authorization"] = auth
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if gz and data is not None:
            data = gzip.compress(data)
            headers["Content-Encoding"] = "gzip"
        conn.request(method, "/api/v1" + path, body=data, headers=headers)
        response = conn.getresponse()
        text = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, json.loads(text) if text else None, headers
    finally:
        conn.close()


def define(server: StreamSeaServer, schema: dict[str, Any] = BOILER) -> None:
    status, reply, _ = call(server, "POST", f"/streams/{schema['name']}/define", schema)
    assert status == 200, reply


def publish(server: StreamSeaServer, payload: Any, stream: str = "boiler") -> tuple[int, Any]:
    status, reply, _ = call(server, "POST", f"/streams/{stream}/publish", {"payload": payload})
    return status, reply


# --------------------------------------------------------------------------- websocket


class RawWs:
    """A websocket client: websockets' sans-I/O ClientProtocol over a blocking socket. Pongs
    go out while reading unless ``answer_pings`` is False (then nothing the protocol writes by
    itself is sent)."""

    def __init__(
        self,
        port: int,
        *,
        ssl: _ssl.SSLContext | None = None,
        path: str = "/api/v1/streams",
        answer_pings: bool = True,
    ) -> None:
        sock = socket.create_connection((HOST, port), timeout=WAIT)
        self.sock = ssl.wrap_socket(sock, server_hostname=HOST) if ssl is not None else sock
        scheme = "wss" if ssl is not None else "ws"
        self.proto = ClientProtocol(parse_uri(f"{scheme}://{HOST}:{port}{path}"), max_size=None)
        self.answer_pings = answer_pings
        self.frames: deque[Frame] = deque()
        self.responses: list[Response] = []
        self.eof = False
        self.proto.send_request(self.proto.connect())
        self._write()
        self.response = self._handshake()
        self.next_id = 2

    def _handshake(self) -> Response:
        while not self.responses:
            self._read(WAIT)
        response = self.responses[0]
        if response.status_code != 101:
            raise ConnectionError(f"handshake refused: {response.status_code}")
        return response

    def _write(self, mine: bool = True) -> None:
        for data in self.proto.data_to_send():
            if data and (mine or self.answer_pings):
                self.sock.sendall(data)

    def _read(self, timeout: float) -> None:
        if self.eof:
            raise EOFError("the server closed the connection")
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if data:
            self.proto.receive_data(data)
        else:
            self.eof = True
            self.proto.receive_eof()
        self._write(mine=False)
        for event in self.proto.events_received():
            if isinstance(event, Frame):
                self.frames.append(event)
            elif isinstance(event, Response):
                self.responses.append(event)

    def frame(self, timeout: float = WAIT) -> Frame:
        """The next frame of any kind."""
        deadline = time.monotonic() + timeout
        while not self.frames:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no frame in {timeout}s")
            self._read(left)
        return self.frames.popleft()

    def text(self, timeout: float = WAIT) -> str:
        """The next text message (pings and pongs skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.frame(max(deadline - time.monotonic(), 0.001))
            if frame.opcode is Opcode.TEXT:
                return bytes(frame.data).decode()
            if frame.opcode is Opcode.CLOSE:
                raise EOFError(f"closed: {self.close_code()}")

    def recv(self, timeout: float = WAIT) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.text(timeout))
        return message

    def quiet(self, seconds: float = QUIET) -> None:
        """Nothing but pings and pongs arrives for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = self.frame(left)
            except TimeoutError:
                return
            assert frame.opcode in (Opcode.PING, Opcode.PONG), frame

    def send(self, message: Any) -> None:
        data = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.proto.send_text(data)
        self._write()

    def send_binary(self, data: bytes) -> None:
        self.proto.send_binary(data)
        self._write()

    def auth(self, client_id: str = "demo", secret: str = SECRET) -> dict[str, Any]:
        self.send(
            {
                "id": 1,
                "action": "authenticate",
                "payload": {"type": "basic", "clientId": client_id, "clientSecret": secret},
            }
        )
        return self.recv()

    def auth_jwt(self, token: str, client_id: str = "demo") -> dict[str, Any]:
        self.send(
            {
                "id": 1,
                "action": "authenticate",
                "payload": {"type": "jwt", "clientId": client_id, "jwt": token},
            }
        )
        return self.recv()

    def subscribe(self, stream: str = "boiler", **extra: Any) -> dict[str, Any]:
        mid = self.next_id
        self.next_id += 1
        self.send({"id": mid, "action": "subscribe", "payload": stream, **extra})
        return self.recv()

    def close_code(self, timeout: float = WAIT) -> tuple[int | None, str]:
        """Read until the server closes; the close frame's code and reason (None: no frame)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the server did not close in {timeout}s")
            self.frames.clear()
            self._read(left)
        rcvd = self.proto.close_rcvd
        return (None, "") if rcvd is None else (rcvd.code, rcvd.reason)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def servers() -> Iterator[Callable[..., StreamSeaServer]]:
    """``servers(**kwargs)`` starts a server (``serve(port=0, ...)``), stopped after."""
    started: list[StreamSeaServer] = []

    def start(**kwargs: Any) -> StreamSeaServer:
        server = serve(port=kwargs.pop("port", 0), **kwargs)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture
def server(servers: Callable[..., StreamSeaServer]) -> StreamSeaServer:
    """A server with the default config and the boiler stream defined."""
    out = servers()
    define(out)
    return out


@pytest.fixture
def clients() -> Iterator[Callable[..., RawWs]]:
    """``clients(port, **kwargs)`` opens a RawWs, closed after the test."""
    opened: list[RawWs] = []

    def open_(port: int, **kwargs: Any) -> RawWs:
        client = RawWs(port, **kwargs)
        opened.append(client)
        return client

    try:
        yield open_
    finally:
        for client in opened:
            client.close()


def subscribed(
    clients: Callable[..., RawWs], server: StreamSeaServer, **extra: Any
) -> tuple[RawWs, dict[str, Any]]:
    ws = clients(server.port)
    assert ws.auth()["success"] is True
    reply = ws.subscribe(**extra)
    assert reply["success"] is True, reply
    return ws, reply


def still_serving(clients: Callable[..., RawWs], server: StreamSeaServer) -> None:
    """Another client still authenticates, subscribes and gets what is published."""
    ws, reply = subscribed(clients, server, groupId=str(uuid.uuid4()))
    seq = server.publish("boiler", reading(99))
    delivery = ws.recv()
    assert (delivery["payload"], delivery["seq"]) == (reading(99), seq)
    assert reply["seq"] == seq - 1
    ws.close()


# --------------------------------------------------------------------------- HTTP routes


def test_every_route_with_plain_and_gzip_bodies(servers: Callable[..., StreamSeaServer]) -> None:
    server = servers()
    assert server.http_url == f"http://127.0.0.1:{server.port}/api/v1"
    assert server.ws_url == f"ws://127.0.0.1:{server.port}/api/v1/streams"
    assert call(server, "GET", "/streams/boiler/schema")[:2] == (
        404,
        {"error": "stream 'boiler' has no schema"},
    )
    status, reply, headers = call(server, "POST", "/streams/boiler/define", BOILER, gz=True)
    assert (status, reply, headers["content-type"]) == (200, BOILER, "application/json")
    assert call(server, "GET", "/streams/boiler/schema")[:2] == (200, BOILER)
    js_define = {"version": 1, "fields": [{"name": "x", "type": "integer"}]}  # no name (JS)
    assert call(server, "POST", "/streams/js/define", js_define)[0] == 200
    assert call(server, "POST", "/schema-versions-vector", {"schemaNames": ["boiler", "js", "no"]})[
        :2
    ] == (200, {"versionsVector": [1, 1, None]})
    status, reply, _ = call(
        server, "POST", "/streams/boiler/publish", {"payload": reading(1)}, gz=True
    )
    assert (status, reply) == (200, {"success": True})
    assert publish(server, reading(2)) == (200, {"success": True})
    stats = server.stats()
    assert (stats["publishes"], stats["log_entries"], stats["http_errors"]) == (2, 2, 1)
    assert server.groups.logs["boiler"].last_seq == 2


def test_basic_auth_is_checked_on_every_route(server: StreamSeaServer) -> None:
    wrong = "Basic " + base64.b64encode(b"demo:not-the-secret").decode()
    unknown = "Basic " + base64.b64encode(f"nobody:{SECRET}".encode()).decode()
    for auth in (wrong, unknown, None, "Bearer x"):
        status, reply, headers = call(server, "GET", "/streams/boiler/schema", auth=auth)
        assert (status, headers.get("www-authenticate")) == (401, "Basic")
        assert reply == {"error": "missing or invalid credentials (Basic auth)"}
    assert publish(server, reading(1))[0] == 200
    stats = server.stats()
    assert (stats["auth_failures"], stats["http_errors"], stats["publishes"]) == (4, 4, 1)


def test_publish_refusals(server: StreamSeaServer) -> None:
    assert publish(server, {"t": "hot", "site": "x"}) == (
        400,
        {"error": "t must be a finite number, got string 'hot'", "field": "t"},
    )
    assert publish(server, {"t": 1.0}) == (
        400,
        {"error": "site is missing (expected a string)", "field": "site"},
    )
    status, reply = publish(server, reading(1), stream="undefined")
    assert (status, reply) == (
        404,
        {
            "error": "stream 'undefined' has no schema: define it first "
            "(POST /api/v1/streams/undefined/define)"
        },
    )
    status, reply, _ = call(server, "POST", "/streams/boiler/publish", raw=b"{nope")
    assert status == 400 and reply["error"].startswith("the body is not JSON")
    assert server.stats()["publishes"] == 0


def test_define_keeps_the_same_version_and_refuses_a_lower_one(server: StreamSeaServer) -> None:
    v2 = {**BOILER, "version": 2}
    define(server, v2)
    changed = {**BOILER, "version": 2, "fields": [{"name": "other", "type": "string"}]}
    assert call(server, "POST", "/streams/boiler/define", changed)[0] == 200
    assert call(server, "GET", "/streams/boiler/schema")[1] == v2  # not overwritten
    status, reply, _ = call(server, "POST", "/streams/boiler/define", BOILER)
    assert status == 400
    assert reply["error"] == (
        "stream 'boiler' has schema version 2; version 1 is lower "
        "(define a higher version to change it)"
    )
    status, reply, _ = call(server, "POST", "/streams/boiler/define", {**BOILER, "version": "v3"})
    assert (status, reply["error"]) == (
        400,
        "schema version must be an integer (or its digits), got 'v3'",
    )


def test_oversize_bodies_are_refused_and_others_served(
    servers: Callable[..., StreamSeaServer], clients: Callable[..., RawWs]
) -> None:
    server = servers(config=config(max_body_bytes=2048))
    define(server)
    big = {"t": 1.0, "site": "x" * 4000}
    status, reply = publish(server, big)
    assert (status, reply) == (413, {"error": "request body over 2048 bytes"})
    bomb = gzip.compress(json.dumps({"payload": {"t": 1.0, "site": " " * 100_000}}).encode())
    assert len(bomb) < 2048
    status, reply, _ = call(server, "POST", "/streams/boiler/publish", raw=bomb, gz=False)
    assert status == 400  # gzip bytes without the header: not JSON
    conn = http.client.HTTPConnection(HOST, server.port, timeout=WAIT)
    headers = {"Authorization": AUTH, "Content-Encoding": "gzip"}
    conn.request("POST", "/api/v1/streams/boiler/publish", body=bomb, headers=headers)
    response = conn.getresponse()
    assert response.status == 413 and b"once decompressed" in response.read()
    conn.close()
    still_serving(clients, server)


def test_the_websocket_path_needs_an_upgrade_and_other_paths_are_not_found(
    server: StreamSeaServer,
) -> None:
    assert call(server, "GET", "/streams")[0] == 426
    with pytest.raises(ConnectionError, match="handshake refused: 404"):
        RawWs(server.port, path="/api/v1/elsewhere")


# --------------------------------------------------------------------------- websocket auth


def test_basic_authentication(server: StreamSeaServer, clients: Callable[..., RawWs]) -> None:
    ws = clients(server.port)
    assert ws.response.status_code == 101
    assert ws.auth() == {"id": 1, "action": "authenticate", "success": True}
    bad = clients(server.port)
    reply = bad.auth(secret="wrong-secret")
    assert reply == {
        "id": 1,
        "action": "authenticate",
        "success": False,
        "error": "wrong client id or secret",
    }
    assert bad.close_code() == (1008, "authentication failed")
    assert server.stats()["auth_failures"] == 1


@pytest.fixture
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def jwt_server(
    servers: Callable[..., StreamSeaServer], key: rsa.RSAPrivateKey, **changes: Any
) -> StreamSeaServer:
    cfg = config(clients=(ClientConfig("demo", SECRET, public_pem(key)),), **changes)
    server = servers(config=cfg)
    define(server)
    return server


def test_jwt_authentication(
    servers: Callable[..., StreamSeaServer],
    clients: Callable[..., RawWs],
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    server = jwt_server(servers, rsa_key)
    later = int(time.time()) + 3600
    for algorithm in ("RS512", "RS256"):
        token = jwt.encode({"exp": later}, rsa_key, algorithm=algorithm)
        ws = clients(server.port)
        assert ws.auth_jwt(token) == {"id": 1, "action": "authenticate", "success": True}
        assert ws.subscribe()["success"] is True
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refusals = {
        jwt.encode({"exp": int(time.time()) - 10}, rsa_key, algorithm="RS512"): (
            "JWT expired (its exp has passed)"
        ),
        jwt.encode({"exp": later}, other, algorithm="RS512"): (
            "JWT signature does not verify with the client's public key"
        ),
        jwt.encode(
            {"exp": later, "filter": {"t": "bool", "e": True}}, rsa_key, algorithm="RS512"
        ): ("JWT filter claims are not supported"),
        jwt.encode({"exp": later}, "hmac-key-that-is-long-enough-for-hs256", algorithm="HS256"): (
            "JWT algorithm must be one of RS512, RS256"
        ),
        "not.a.jwt": "JWT is malformed (not a signed JWS compact token)",
    }
    for token, error in refusals.items():
        ws = clients(server.port)
        reply = ws.auth_jwt(token)
        assert reply == {"id": 1, "action": "authenticate", "success": False, "error": error}
        assert token not in json.dumps(reply)
        assert ws.close_code()[0] == 1008
    ws = clients(server.port)
    reply = ws.auth_jwt(jwt.encode({"exp": later}, rsa_key, algorithm="RS512"), client_id="x")
    assert reply["error"] == "client 'x' has no JWT public key"
    assert server.stats()["auth_failures"] == len(refusals) + 1


def test_a_jwt_expiry_closes_the_connection(
    servers: Callable[..., StreamSeaServer],
    clients: Callable[..., RawWs],
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    server = jwt_server(servers, rsa_key)
    ws = clients(server.port)
    token = jwt.encode({"exp": int(time.time()) + 2}, rsa_key, algorithm="RS512")
    assert ws.auth_jwt(token)["success"] is True
    assert ws.close_code(timeout=6.0) == (1008, "credentials expired")


def test_must_fanout_gives_each_subscription_a_group_of_its_own(
    servers: Callable[..., StreamSeaServer],
    clients: Callable[..., RawWs],
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    server = jwt_server(servers, rsa_key)
    token = jwt.encode(
        {"exp": int(time.time()) + 3600, "mustFanout": True}, rsa_key, algorithm="RS512"
    )
    fans = []
    for _ in range(2):
        ws = clients(server.port)
        assert ws.auth_jwt(token)["success"] is True
        assert ws.subscribe()["success"] is True
        fans.append(ws)
    for n in range(1, 4):
        server.publish("boiler", reading(n))
    for ws in fans:
        assert [ws.recv()["seq"] for _ in range(3)] == [1, 2, 3]
    assert server.stats()["groups"] == 2


# --------------------------------------------------------------------------- subscriptions


def test_subscribe_reply_and_deliveries_as_the_reference_clients_read_them(
    server: StreamSeaServer, clients: Callable[..., RawWs]
) -> None:
    ws, reply = subscribed(clients, server)
    assert reply == {
        "id": 2,
        "action": "subscription",
        "success": True,
        "streamName": "boiler",
        "seq": 0,
        "epoch": server.epoch,
    }
    assert server.publish("boiler", reading(1)) == 1
    assert ws.recv() == {
        "id": 2,
        "action": "subscription",
        "streamName": "boiler",
        "payload": reading(1),
        "seq": 1,
    }
    assert server.stats()["deliveries"] == 1


def test_members_of_the_default_group_compete(
    server: StreamSeaServer, clients: Callable[..., RawWs]
) -> None:
    a, _ = subscribed(clients, server)
    b, _ = subscribed(clients, server)
    for n in range(1, 7):
        assert publish(server, reading(n))[0] == 200
    got_a = [a.recv()["seq"] for _ in range(3)]
    got_b = [b.recv()["seq"] for _ in range(3)]
    assert sorted(got_a + got_b) == [1, 2, 3, 4, 5, 6]
    assert got_a == sorted(got_a) and got_b == sorted(got_b)
    a.quiet()
    b.quiet()


def test_uuid_groups_each_get_every_message(
    server: StreamSeaServer, clients: Callable[..., RawWs]
) -> None:
    a, _ = subscribed(clients, server, groupId=str(uuid.uuid4()))
    b, _ = subscribed(clients, server, groupId=str(uuid.uuid4()))
    for n in range(1, 4):
        server.publish("boiler", reading(n))
    assert [a.recv()["payload"] for _ in range(3)] == [reading(n) for n in (1, 2, 3)]
    assert [b.recv()["payload"] for _ in range(3)] == [reading(n) for n in (1, 2, 3)]


def test_unsubscribe_ends_the_deliveries(
    server: StreamSeaServer, clients: Callable[..., RawWs]
) -> None:
    ws, _ = subscribed(clients, server)
    ws.send({"id": 3, "action": "unsubscribe", "payload": 2})
    assert ws.recv() == {"id": 3, "action": "unsubscribe", "success": True, "payload": 2}
    server.publish("boiler", reading(1))
    ws.quiet()
    assert server.stats()["orphans"] == 0  # a clean leave


def test_resume_with_after_seq_after_kill(
    server: StreamSeaServer, clients: Callable[..., RawWs]
) -> None:
    ws, _ = subscribed(clients, server)
    for n in range(1, 4):
        server.publish("boiler", reading(n))
    assert [ws.recv()["seq"] for _ in range(3)] == [1, 2, 3]
    server.kill()
    assert ws.close_code() == (None, "")  # dropped: no close frame
    server.publish("boiler", reading(4))
    server.publish("boiler", reading(5))
    again = clients(server.port)
    assert again.auth()["success"] is True
    reply = again.subscribe(afterSeq=3, epoch=server.epoch)
    assert (reply["seq"], reply["epoch"]) == (3, server.epoch)
    assert [again.recv()["seq"] for _ in range(2)] == [4, 5]
    again.quiet()


def test_what_a_silent_server_swallowed_comes_back_once_after_a_reconnect(
    server: StreamSeaServer, clients: Callable[..., RawWs]
) -> None:
    ws, _ = subscribed(clients, server)
    server.publish("boiler", reading(1))
    assert ws.recv()["seq"] == 1
    server.go_silent()
    server.publish("boiler", reading(2))
    server.publish("boiler", reading(3))
    ws.quiet()
    assert publish(server, reading(4)) == (200, {"success": True})  # HTTP still answers
    server.kill()
    server.resume()
    again = clients(server.port)
    again.auth()
    assert again.subscribe(afterSeq=1, epoch=server.epoch)["seq"] == 1
    got = [again.recv() for _ in range(3)]
    assert [(d["seq"], "redelivered" in d) for d in got] == [(2, False), (3, False), (4, False)]
    again.quiet()
    assert server.stats()["inherited"] == 1


def test_a_member_that_never_comes_back_has_its_messages_redelivered_flagged(
    servers: Callable[..., StreamSeaServer], clients: Callable[..., RawWs]
) -> None:
    server = servers(config=config(rejoin_grace=0.3))
    define(server)
    a, _ = subscribed(clients, server)
    b, _ = subscribed(clients, server)
    for n in range(1, 5):
        server.publish("boiler", reading(n))
    got_b = [b.recv()["seq"] for _ in range(2)]
    a.close()  # gone without a word, whatever it had read
    wait_until(lambda: server.stats()["orphans"] == 1, WAIT)
    again = [b.recv(timeout=WAIT) for _ in range(2)]
    assert sorted(got_b + [d["seq"] for d in again]) == [1, 2, 3, 4]
    assert all(d["redelivered"] is True for d in again)
    assert server.stats()["redelivered"] == 2 and server.stats()["orphans"] == 0


def test_a_restarted_server_on_the_same_store_resumes(
    servers: Callable[..., StreamSeaServer], clients: Callable[..., RawWs], tmp_path: Path
) -> None:
    store = tmp_path / "streamsea.sqlite"
    first = servers(store_path=store)
    define(first)
    for n in range(1, 4):
        first.publish("boiler", reading(n))
    epoch, port = first.epoch, first.port
    first.stop()
    second = servers(store_path=store, port=port)
    assert (second.epoch, second.port) == (epoch, port)
    assert call(second, "GET", "/streams/boiler/schema")[:2] == (200, BOILER)
    ws = clients(port)
    ws.auth()
    assert ws.subscribe(afterSeq=1, epoch=epoch)["seq"] == 1
    assert [ws.recv()["payload"] for _ in range(2)] == [reading(2), reading(3)]
    assert second.publish("boiler", reading(4)) == 4
    assert ws.recv()["seq"] == 4


KILLED_SERVER = """
import sys
from actorwire.adapters.streamsea.schema import SchemaDefinition
from actorwire.adapters.streamsea.server import serve
server = serve(port=0, store_path=sys.argv[1])
server.define(SchemaDefinition("boiler", 1, [{"name": "n", "type": "integer"}]))
for n in range(1, 6):
    server.publish("boiler", {"n": n})
print(server.epoch, flush=True)
sys.stdin.read()
"""


@pytest.mark.timeout(60)
def test_a_store_survives_sigkill(
    servers: Callable[..., StreamSeaServer], clients: Callable[..., RawWs], tmp_path: Path
) -> None:
    store = tmp_path / "streamsea.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_SERVER, str(store)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        epoch = proc.stdout.readline().strip()
        assert epoch, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    server = servers(store_path=store)
    assert server.epoch == epoch
    assert server.groups.logs["boiler"].last_seq == 5
    ws = clients(server.port)
    ws.auth()
    assert ws.subscribe(afterSeq=3, epoch=epoch)["seq"] == 3
    assert [ws.recv()["payload"] for _ in range(2)] == [{"n": 4}, {"n": 5}]


# --------------------------------------------------------------------------- groups on a store


def restarted(
    servers: Callable[..., StreamSeaServer], server: StreamSeaServer, **kwargs: Any
) -> StreamSeaServer:
    """Stop ``server`` and start another on its port and store."""
    server.stop()
    return servers(store_path=server.store_path, port=server.port, **kwargs)


def resubscribe(
    clients: Callable[..., RawWs], server: StreamSeaServer, after: int, **extra: Any
) -> tuple[RawWs, int]:
    """A client back on a new connection: its subscribe with ``afterSeq``; the reply's seq."""
    ws = clients(server.port)
    assert ws.auth()["success"] is True
    reply = ws.subscribe(afterSeq=after, epoch=server.epoch, **extra)
    assert reply["success"] is True, reply
    return ws, int(reply["seq"])


def test_a_group_restarted_on_its_store_repeats_nothing_when_the_member_behind_comes_first(
    servers: Callable[..., StreamSeaServer], clients: Callable[..., RawWs], tmp_path: Path
) -> None:
    server = servers(store_path=tmp_path / "streamsea.sqlite")
    define(server)
    group = {"groupId": str(uuid.uuid4())}
    a, _ = subscribed(clients, server, **group)
    b, _ = subscribed(clients, server, **group)
    server.publish("boiler", reading(1))
    server.publish("boiler", reading(2))
    assert (a.recv()["seq"], b.recv()["seq"]) == (1, 2)
    server = restarted(servers, server)
    assert server.stats()["orphans"] == 2
    a2, seq = resubscribe(clients, server, 1, **group)
    assert seq == 1
    b2, seq = resubscribe(clients, server, 2, **group)
    assert seq == 2
    server.publish("boiler", reading(3))
    server.publish("boiler", reading(4))
    assert sorted([a2.recv()["seq"], b2.recv()["seq"]]) == [3, 4]
    a2.quiet()
    b2.quiet()
    stats = server.stats()
    assert (stats["orphans"], stats["inherited"], stats["redelivered"]) == (0, 2, 0)


def test_a_group_restarted_on_its_store_loses_nothing_when_the_member_ahead_comes_first(
    servers: Callable[..., StreamSeaServer], clients: Callable[..., RawWs], tmp_path: Path
) -> None:
    server = servers(store_path=tmp_path / "streamsea.sqlite")
    define(server)
    group = {"groupId": str(uuid.uuid4())}
    a, _ = subscribed(clients, server, **group)
    b, _ = subscribed(clients, server, **group)
    for n in range(1, 5):
        server.publish("boiler", reading(n))
    assert a.recv()["seq"] == 1  # a was sent 3 too, and never read it
    assert [b.recv()["seq"] for _ in range(2)] == [2, 4]
    server = restarted(servers, server)
    b2, seq = resubscribe(clients, server, 4, **group)
    assert seq == 4
    a2, seq = resubscribe(clients, server, 1, **group)
    assert seq == 1
    delivery = a2.recv()
    assert (delivery["seq"], delivery["payload"]) == (3, reading(3))
    assert "redelivered" not in delivery
    a2.quiet()
    b2.quiet()


def test_a_fanout_member_restarted_on_its_store_resumes_after_its_seq(
    servers: Callable[..., StreamSeaServer], clients: Callable[..., RawWs], tmp_path: Path
) -> None:
    server = servers(store_path=tmp_path / "streamsea.sqlite")
    define(server)
    fan = {"groupId": str(uuid.uuid4())}
    ws, _ = subscribed(clients, server, **fan)
    for n in range(1, 6):
        server.publish("boiler", reading(n))
    assert [ws.recv()["seq"] for _ in range(3)] == [1, 2, 3]
    server = restarted(servers, server)
    again, seq = resubscribe(clients, server, 3, **fan)
    assert seq == 3 and [again.recv()["seq"] for _ in range(2)] == [4, 5]
    assert server.publish("boiler", reading(6)) == 6
    assert again.recv()["seq"] == 6
    again.quiet()


def test_a_members_messages_restored_from_the_store_go_to_the_others_after_the_grace(
    servers: Callable[..., StreamSeaServer], clients: Callable[..., RawWs], tmp_path: Path
) -> None:
    server = servers(store_path=tmp_path / "streamsea.sqlite", config=config(rejoin_grace=0.5))
    define(server)
    group = {"groupId": str(uuid.uuid4())}
    subscribed(clients, server, **group)  # sent 1 and 3
    b, _ = subscribed(clients, server, **group)
    for n in range(1, 5):
        server.publish("boiler", reading(n))
    assert [b.recv()["seq"] for _ in range(2)] == [2, 4]
    server = restarted(servers, server, config=config(rejoin_grace=0.5))
    b2, seq = resubscribe(clients, server, 4, **group)  # a's client never comes back
    assert seq == 4
    again = [b2.recv() for _ in range(2)]
    assert [(d["seq"], d["redelivered"]) for d in again] == [(1, True), (3, True)]
    b2.quiet()
    assert (server.stats()["orphans"], server.stats()["redelivered"]) == (0, 2)


def test_a_group_write_the_store_refuses_is_counted_and_the_delivery_goes_out(
    servers: Callable[..., StreamSeaServer], clients: Callable[..., RawWs], tmp_path: Path
) -> None:
    store = tmp_path / "streamsea.sqlite"
    server = servers(store_path=store)
    define(server)
    ws, _ = subscribed(clients, server, groupId=str(uuid.uuid4()))
    db = sqlite3.connect(store)
    try:
        db.execute(
            "CREATE TRIGGER full BEFORE INSERT ON dispatched "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
        db.commit()
    finally:
        db.close()
    assert server.publish("boiler", reading(1)) == 1  # the message itself is stored
    assert ws.recv()["seq"] == 1
    assert server.stats()["store_errors"] == 1


# --------------------------------------------------------------------------- takeover


def test_a_client_back_before_its_old_connection_dropped_takes_its_subscription_over(
    server: StreamSeaServer, clients: Callable[..., RawWs]
) -> None:
    group = {"groupId": str(uuid.uuid4())}
    old, _ = subscribed(clients, server, **group)
    for n in range(1, 4):
        server.publish("boiler", reading(n))
    assert [old.recv()["seq"] for _ in range(2)] == [1, 2]  # then it reads nothing more
    websockets = server.stats()["websockets"]
    new, seq = resubscribe(clients, server, 2, **group)
    assert seq == 2 and new.recv()["seq"] == 3
    assert server.publish("boiler", reading(4)) == 4
    assert new.recv()["seq"] == 4
    new.quiet()
    stats = server.stats()
    assert (stats["taken_over"], stats["orphans"], stats["members"]) == (1, 0, 1)
    assert stats["websockets"] == websockets + 1  # the old one ends when it answers
    assert old.recv()["seq"] == 3  # sent before the takeover
    assert old.close_code() == (1008, "superseded by a newer connection")
    wait_until(lambda: server.stats()["websockets"] == websockets, WAIT)
    assert (server.stats()["orphans"], server.stats()["redelivered"]) == (0, 0)


def test_a_takeover_leaves_the_old_connections_other_subscriptions_alone(
    server: StreamSeaServer, clients: Callable[..., RawWs]
) -> None:
    group = {"groupId": str(uuid.uuid4())}
    old, _ = subscribed(clients, server, **group)  # id 2
    assert old.subscribe(groupId=str(uuid.uuid4()))["success"] is True  # id 3
    server.publish("boiler", reading(1))
    assert sorted(old.recv()["id"] for _ in range(2)) == [2, 3]
    new, seq = resubscribe(clients, server, 1, **group)
    assert seq == 1
    server.publish("boiler", reading(2))
    assert (new.recv()["seq"], old.recv()["id"]) == (2, 3)
    old.quiet()  # nothing more on id 2, and no close
    assert server.stats()["taken_over"] == 1


def test_a_join_from_another_client_takes_nothing_over(
    servers: Callable[..., StreamSeaServer], clients: Callable[..., RawWs]
) -> None:
    server = servers(
        config=config(clients=(ClientConfig("demo", SECRET), ClientConfig("other", "other-s3cret")))
    )
    define(server)
    group = {"groupId": str(uuid.uuid4())}
    first, _ = subscribed(clients, server, **group)
    server.publish("boiler", reading(1))
    assert first.recv()["seq"] == 1
    ws = clients(server.port)
    assert ws.auth("other", "other-s3cret")["success"] is True
    reply = ws.subscribe(afterSeq=1, epoch=server.epoch, **group)
    assert reply["seq"] == 1
    server.publish("boiler", reading(2))
    server.publish("boiler", reading(3))
    assert (first.recv()["seq"], ws.recv()["seq"]) == (2, 3)  # they compete
    assert server.stats()["taken_over"] == 0


# --------------------------------------------------------------------------- bad input


BAD_INPUT = [
    pytest.param(
        True,
        lambda ws: ws.send(b"{not json"),
        (1008, "Could not decode JSON for message: Expecting property name enclosed in"),
        id="malformed-json",
    ),
    pytest.param(
        False,
        lambda ws: ws.send({"id": 2, "action": "subscribe", "payload": "boiler"}),
        (1008, "the first message must be \"authenticate\" with id 1, got 'subscribe' (id 2)"),
        id="wrong-first-message",
    ),
    pytest.param(
        True,
        lambda ws: ws.send({"id": 1, "action": "subscribe", "payload": "boiler"}),
        (1008, "'subscribe' id 1 is not above the last id 1: ids must increase"),
        id="ids-not-increasing",
    ),
    pytest.param(
        True,
        lambda ws: ws.send_binary(b'{"id": 2}'),
        (1008, "a binary message: stream-sea messages are JSON text"),
        id="binary-frame",
    ),
    pytest.param(
        True,
        lambda ws: ws.send(b'{"id": 2, "action": "subscribe", "payload": "\xff"}'),
        (1007, "a text message that is not UTF-8 (byte 45)"),
        id="bad-utf8",
    ),
    pytest.param(
        True,
        lambda ws: ws.send(json.dumps({"id": 2, "pad": "x" * 5000}).encode()),
        (1009, "frame with 5020 bytes exceeds limit of 4096 bytes"),
        id="oversize-frame",
    ),
]


@pytest.mark.parametrize(("authenticate", "bad", "closed"), BAD_INPUT)
def test_bad_input_closes_that_connection_only(
    servers: Callable[..., StreamSeaServer],
    clients: Callable[..., RawWs],
    authenticate: bool,
    bad: Callable[[RawWs], None],
    closed: tuple[int, str],
) -> None:
    server = servers(config=config(max_message_size=4096))
    define(server)
    bystander, _ = subscribed(clients, server)
    ws = clients(server.port)
    if authenticate:
        assert ws.auth()["success"] is True
    bad(ws)
    code, reason = ws.close_code()
    assert code == closed[0] and reason.startswith(closed[1]), (code, reason)
    assert server.stats()["protocol_errors"] == 1
    still_serving(clients, server)
    server.publish("boiler", reading(1))
    assert [bystander.recv()["payload"] for _ in range(2)] == [reading(99), reading(1)]


def test_a_refused_message_with_a_readable_id_is_answered_and_the_connection_goes_on(
    server: StreamSeaServer, clients: Callable[..., RawWs]
) -> None:
    ws, _ = subscribed(clients, server)
    ws.send({"id": 3, "action": "dance"})
    reply = ws.recv()
    assert (reply["id"], reply["action"]) == (3, "error")
    assert "unknown action 'dance'" in reply["error"]
    server.publish("boiler", reading(1))
    assert ws.recv()["seq"] == 1


# --------------------------------------------------------------------------- pings and faults


def test_every_websocket_is_pinged_and_a_silent_one_is_closed(
    servers: Callable[..., StreamSeaServer], clients: Callable[..., RawWs]
) -> None:
    server = servers(config=config(ping_interval=0.2, ping_timeout=1.0))
    ws = clients(server.port)  # not even authenticated
    pings = [ws.frame() for _ in range(2)]
    assert [f.opcode for f in pings] == [Opcode.PING, Opcode.PING]
    mute = clients(server.port, answer_pings=False)
    deadline = time.monotonic() + 4.0
    while not mute.eof:  # both read, one answers
        assert time.monotonic() < deadline, "the silent websocket was not closed"
        for client in (ws, mute):
            with contextlib.suppress(TimeoutError, EOFError):
                client.frame(timeout=0.05)
    assert mute.close_code() == (1011, "no data for 1 s (ping timeout)")
    assert ws.frame().opcode is Opcode.PING  # the answering one stays
    assert server.stats()["ping_timeouts"] == 1 and server.stats()["pings_sent"] >= 3


def test_go_silent_and_resume(
    servers: Callable[..., StreamSeaServer], clients: Callable[..., RawWs]
) -> None:
    server = servers(config=config(ping_interval=0.1, ping_timeout=5.0))
    define(server)
    ws, _ = subscribed(clients, server)
    assert ws.frame().opcode is Opcode.PING
    server.go_silent()
    ws.frames.clear()
    server.publish("boiler", reading(1))
    with pytest.raises(TimeoutError):
        ws.frame(timeout=0.5)  # no delivery, no ping
    server.resume()
    server.publish("boiler", reading(2))
    assert ws.recv()["seq"] == 2


def test_send_garbage_reaches_authenticated_websockets_only(
    server: StreamSeaServer, clients: Callable[..., RawWs]
) -> None:
    ws, _ = subscribed(clients, server)
    newcomer = clients(server.port)
    server.send_garbage()
    assert ws.text() == GARBAGE.decode()
    with pytest.raises(ValueError):
        json.loads(GARBAGE)
    newcomer.quiet()


# --------------------------------------------------------------------------- bounds


def test_a_log_over_max_log_bytes_drops_its_oldest(
    servers: Callable[..., StreamSeaServer], clients: Callable[..., RawWs]
) -> None:
    server = servers(config=config(max_log_bytes=2048))
    define(server)
    for n in range(100):
        server.publish("boiler", reading(n))
    stats = server.stats()
    log = server.groups.logs["boiler"]
    assert stats["log_bytes"] <= 2048 and stats["log_dropped"] == 100 - stats["log_entries"]
    assert log.first_seq > 1 and log.last_seq == 100
    ws = clients(server.port)
    ws.auth()
    assert ws.subscribe(afterSeq=1, epoch=server.epoch)["seq"] == 100  # 2 is gone: from now on
    start = log.first_seq - 1
    assert (
        ws.subscribe(groupId=str(uuid.uuid4()), afterSeq=start, epoch=server.epoch)["seq"] == start
    )


def test_a_long_backlog_is_paced_through_a_small_outbox(
    servers: Callable[..., StreamSeaServer], clients: Callable[..., RawWs]
) -> None:
    server = servers(max_outbox_bytes=16384)
    define(server)
    for n in range(400):
        server.publish("boiler", {"t": float(n), "site": "x" * 400})
    ws = clients(server.port)
    ws.auth()
    assert ws.subscribe(afterSeq=0, epoch=server.epoch)["seq"] == 0
    assert [ws.recv()["seq"] for _ in range(400)] == list(range(1, 401))
    stats = server.stats()
    assert stats["dropped_slow_readers"] == 0 and stats["peak_outbox_bytes"] <= 16384


def test_a_subscribe_past_max_groups_is_refused_and_the_connection_stays(
    servers: Callable[..., StreamSeaServer], clients: Callable[..., RawWs]
) -> None:
    server = servers(config=config(max_groups=1))
    define(server)
    subscribed(clients, server)
    ws = clients(server.port)
    ws.auth()
    reply = ws.subscribe(groupId=str(uuid.uuid4()))
    assert reply["action"] == "error" and reply["id"] == 2
    assert reply["error"].startswith("subscribe refused: a new consumer group on stream")
    assert server.stats()["subscribe_refusals"] == 1
    # The connection goes on: a subscribe the server can take is answered.
    assert ws.subscribe()["success"] is True


# --------------------------------------------------------------------------- Python side


def test_python_publish_and_define(servers: Callable[..., StreamSeaServer]) -> None:
    server = servers()
    schema = SchemaDefinition("boiler", 1, BOILER["fields"])
    assert server.define(schema) == schema
    assert server.define(SchemaDefinition("boiler", 1, [])) == schema  # kept
    assert server.publish("boiler", reading(1)) == 1
    with pytest.raises(UnknownStream, match="define it first"):
        server.publish("other", reading(1))
    with pytest.raises(SchemaError, match="site"):
        server.publish("boiler", {"t": 1.0})
    with pytest.raises(ValueError, match="lower"):
        server.define(SchemaDefinition("boiler", 0, []))
    assert server.versions(["boiler", "other"]) == [1, None]
    assert server.schema("other") is None


def test_stats_keys(server: StreamSeaServer) -> None:
    stats = server.stats()
    for key in (
        "connections",
        "sessions",
        "websockets",
        "publishes",
        "deliveries",
        "redelivered",
        "lost",
        "auth_failures",
        "protocol_errors",
        "http_errors",
        "accepted",
        "dropped_slow_readers",
        "tls_failures",
        "log_bytes",
        "streams",
        "groups",
        "taken_over",
        "store_errors",
    ):
        assert key in stats, key


def test_start_stop(servers: Callable[..., StreamSeaServer]) -> None:
    server = servers()
    assert server.start() is server
    server.stop()
    server.stop()
    with pytest.raises(RuntimeError, match="make a new one"):
        server.start()
    with pytest.raises(ValueError, match="needs both certfile and keyfile"):
        StreamSeaServer(certfile="x.pem")


# --------------------------------------------------------------------------- TLS


def test_tls_serves_https_and_wss(servers: Callable[..., StreamSeaServer], tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    cert = make_server_cert(tmp_path, ca)
    server = servers(certfile=cert.cert, keyfile=cert.key)
    assert server.tls and server.http_url.startswith("https://") and server.ws_url.startswith("wss")
    ctx = client_context(ca.cert)
    conn = http.client.HTTPSConnection(HOST, server.port, timeout=WAIT, context=ctx)
    conn.request(
        "POST", "/api/v1/streams/boiler/define", json.dumps(BOILER), {"Authorization": AUTH}
    )
    assert conn.getresponse().status == 200
    conn.close()

    async def subscribe_and_get() -> dict[str, Any]:
        async with connect(server.ws_url, ssl=ctx, open_timeout=WAIT) as ws:
            await ws.send(
                json.dumps(
                    {
                        "id": 1,
                        "action": "authenticate",
                        "payload": {"type": "basic", "clientId": "demo", "clientSecret": SECRET},
                    }
                )
            )
            assert json.loads(await ws.recv())["success"] is True
            await ws.send(json.dumps({"id": 2, "action": "subscribe", "payload": "boiler"}))
            assert json.loads(await ws.recv())["success"] is True
            await asyncio.to_thread(server.publish, "boiler", reading(1))
            delivery: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            return delivery

    assert asyncio.run(subscribe_and_get())["payload"] == reading(1)
    plain = socket.create_connection((HOST, server.port), timeout=WAIT)
    plain.sendall(b"GET /api/v1/streams HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_until(lambda: server.stats()["tls_failures"] == 1, WAIT)
    plain.close()
