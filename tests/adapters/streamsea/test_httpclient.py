"""The blocking HTTP/1.1 client for stream-sea's API, over real sockets on 127.0.0.1.

Servers: the stdlib's threaded HTTP/1.1 server (which checks the headers and inflates the
bodies it gets), raw socket servers for the broken, silent and closing cases, TLS with
throwaway certificates, and the project's own HTTP API core (``HttpSession``) behind a
socket, which takes what stream-sea-client 0.7.0 sends."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import pickle
import selectors
import socket
import ssl
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from actorwire.actors.errors import ActorwireError
from actorwire.actors.tls import server_context
from actorwire.adapters.streamsea.http import HttpSession, Send, UnknownStream
from actorwire.adapters.streamsea.httpclient import HttpClient, HttpError, HttpResponse
from actorwire.adapters.streamsea.schema import SchemaDefinition, validate

from tests.support.tlscerts import make_ca, make_server_cert

HOST = "127.0.0.1"
SECRET = "s3cr3t-do-not-show"
AUTH = ("demo", SECRET)
TOKEN = base64.b64encode(f"demo:{SECRET}".encode()).decode()


# --- a keep-alive JSON server on the stdlib ---------------------------------------------------


@dataclass
class Seen:
    """One request as the server read it (the body inflated when it was gzip)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    port: int


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5  # a connection the client left open ends the handler thread by then
    disable_nagle_algorithm = True  # the head and the body go out in two writes
    server: JsonServer

    def do_GET(self) -> None:
        self.handle_request()

    def do_POST(self) -> None:
        self.handle_request()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle_request(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        if headers.get("content-encoding") == "gzip" and body:
            body = gzip.decompress(body)
        path = self.path
        self.server.record(Seen(self.command, path, headers, body, self.client_address[1]))
        route = ROUTES.get(path)
        if route is None:
            self.reply(404, {"error": f"no route {path}"})
        else:
            route(self, headers, body)

    def reply(self, status: int, obj: Any, raw: bytes | None = None, **headers: str) -> None:
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(data)

    def chunked(self, pieces: Sequence[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")


def route_echo(h: Handler, headers: dict[str, str], body: bytes) -> None:
    assert headers.get("content-type") == "application/json"
    assert headers.get("accept") == "application/json"
    user = None
    if "authorization" in headers:
        scheme, _, token = headers["authorization"].partition(" ")
        assert scheme == "Basic"
        user = base64.b64decode(token).decode().partition(":")[0]
    h.reply(
        200,
        {
            "method": h.command,
            "json": json.loads(body) if body else None,
            "encoding": headers.get("content-encoding"),
            "length": headers.get("content-length"),
            "user": user,
            "host": headers.get("host"),
        },
    )


def route_gzip(h: Handler, headers: dict[str, str], body: bytes) -> None:
    h.reply(
        200, None, gzip.compress(json.dumps({"big": "x" * 5000}).encode()), Content_Encoding="gzip"
    )


def route_chunked(h: Handler, headers: dict[str, str], body: bytes) -> None:
    h.chunked([b'{"parts": [', b"1, 2,", b" 3]}"])


def route_big(h: Handler, headers: dict[str, str], body: bytes) -> None:
    h.reply(200, None, b"x" * 5000)


def route_big_chunked(h: Handler, headers: dict[str, str], body: bytes) -> None:
    h.chunked([b"x" * 800] * 4)


def route_bomb(h: Handler, headers: dict[str, str], body: bytes) -> None:
    h.reply(200, None, gzip.compress(b"0" * 100_000), Content_Encoding="gzip")


def route_missing(h: Handler, headers: dict[str, str], body: bytes) -> None:
    h.reply(404, {"error": "no stream 'nope'"})


def route_nan(h: Handler, headers: dict[str, str], body: bytes) -> None:
    h.reply(200, None, b'{"x": NaN}')


def route_bye(h: Handler, headers: dict[str, str], body: bytes) -> None:
    # A reply that says nothing about closing, then the server closes the connection.
    h.reply(200, {"bye": True})
    h.close_connection = True


ROUTES: dict[str, Callable[[Handler, dict[str, str], bytes], None]] = {
    "/echo": route_echo,
    "/gzip": route_gzip,
    "/chunked": route_chunked,
    "/big": route_big,
    "/big-chunked": route_big_chunked,
    "/bomb": route_bomb,
    "/missing": route_missing,
    "/nan": route_nan,
    "/bye": route_bye,
}


class JsonServer(ThreadingHTTPServer):
    # Handler threads are joined on close, so none outlives its test.
    daemon_threads = False
    request_queue_size = 64  # the default 5 drops the SYNs of a burst of clients

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__((HOST, 0), Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.port = self.server_address[1]
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def ports(self) -> list[int]:
        with self._lock:
            return [s.port for s in self.seen]


@pytest.fixture
def server() -> Iterator[JsonServer]:
    srv = JsonServer()
    thread = threading.Thread(
        target=srv.serve_forever, args=(0.05,), name="json-server", daemon=True
    )
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def client(server: JsonServer) -> Iterator[HttpClient]:
    with HttpClient(HOST, server.port, timeout=5.0) as c:
        yield c


# --- raw socket servers -----------------------------------------------------------------------

ConnHandler = Callable[[socket.socket, int, threading.Event], None]


class RawServer:
    """Accepts connections and runs ``handler(sock, index, stop)`` for each in its own
    thread. Stopping shuts every connection down and joins every thread."""

    def __init__(self, handler: ConnHandler) -> None:
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.stop_event = threading.Event()
        self._handler = handler
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._loop = threading.Thread(target=self._accept_loop, name="raw-server", daemon=True)
        self._loop.start()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self.listener, selectors.EVENT_READ)
            while not self.stop_event.is_set():
                # A bounded wait, so the loop sees the stop flag.
                if not sel.select(0.05):
                    continue
                conn, _ = self.listener.accept()
                index = self.accepted
                self.accepted += 1
                self._conns.append(conn)
                t = threading.Thread(target=self._run, args=(conn, index), daemon=True)
                self._threads.append(t)
                t.start()

    def _run(self, conn: socket.socket, index: int) -> None:
        try:
            self._handler(conn, index, self.stop_event)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self.stop_event.set()
        self._loop.join(5)
        self.listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(5)


@pytest.fixture
def raw_server() -> Iterator[Callable[[ConnHandler], RawServer]]:
    started: list[RawServer] = []

    def start(handler: ConnHandler) -> RawServer:
        srv = RawServer(handler)
        started.append(srv)
        return srv

    try:
        yield start
    finally:
        for srv in started:
            srv.stop()


def read_request(conn: socket.socket) -> bytes | None:
    """One whole request (head and Content-Length body), None at EOF before one."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


def ok_reply(obj: Any) -> bytes:
    body = json.dumps(obj).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# --- the API's shape, without sockets ---------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "secure", "url"),
    [
        ("127.0.0.1", 8080, False, "http://127.0.0.1:8080"),
        ("example.com", None, False, "http://example.com"),
        ("example.com", None, True, "https://example.com"),
        ("::1", 9000, False, "http://[::1]:9000"),
        ("[::1]", None, True, "https://[::1]"),
    ],
)
def test_base_url(host: str, port: int | None, secure: bool, url: str) -> None:
    with HttpClient(host, port, secure=secure) as c:
        assert c.base_url == url
        assert repr(c) == f"<HttpClient {url} idle=0>"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": ""}, "host must be"),
        ({"port": 0}, "port must be None or an int from 1 to 65535, got 0"),
        ({"port": "80"}, "got '80'"),
        ({"timeout": 0}, "timeout must be a positive number of seconds, got 0"),
        ({"max_body_bytes": 0}, "max_body_bytes must be a positive int, got 0"),
        ({"max_idle": -1}, "max_idle must be an int >= 0, got -1"),
    ],
)
def test_bad_constructor_arguments_are_named(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"host": HOST, "port": 80, **kwargs}
    with pytest.raises(ValueError, match=message):
        HttpClient(**args)


def test_bad_requests_fail_before_connecting() -> None:
    # Nothing listens on the port: each call must fail on its argument, not on the network.
    with HttpClient(HOST, free_port()) as c:
        with pytest.raises(ValueError, match=r"method must be an HTTP method.*'GE T'"):
            c.request("GE T", "/x")
        with pytest.raises(ValueError, match=r"path must be .* got 'x'"):
            c.request("GET", "x")
        with pytest.raises(ValueError, match=r"path must be .*without spaces"):
            c.request("GET", "/a b")
        with pytest.raises(ValueError, match=r"POST http://127\.0\.0\.1:\d+/x: json_body is not"):
            c.request("POST", "/x", json_body={"v": float("nan")})
        with pytest.raises(ValueError, match="json_body is not strict JSON"):
            c.request("POST", "/x", json_body={"v": object()})
        with pytest.raises(ValueError, match=r"client_id must be .* got 'a:b'"):
            c.request("GET", "/x", auth=("a:b", SECRET))


def test_a_closed_client_refuses_requests(server: JsonServer) -> None:
    c = HttpClient(HOST, server.port)
    assert c.request("GET", "/echo").ok
    c.close()
    assert repr(c) == f"<HttpClient http://{HOST}:{server.port} closed>"
    with pytest.raises(RuntimeError, match=f"HttpClient for http://{HOST}:{server.port} is closed"):
        c.request("GET", "/echo")


# --- requests and replies ---------------------------------------------------------------------


def test_post_sends_a_gzip_body_with_the_0_7_0_headers(
    client: HttpClient, server: JsonServer
) -> None:
    r = client.request("POST", "/echo", json_body={"payload": {"t": 1.5}}, auth=AUTH)
    assert r.status_code == 200 and r.ok and r.reason == "OK"
    assert r.url == f"http://{HOST}:{server.port}/echo"
    assert r.headers["content-type"] == "application/json"
    echo = r.json()
    assert echo["json"] == {"payload": {"t": 1.5}}
    assert echo["encoding"] == "gzip"
    assert echo["user"] == "demo"
    assert echo["host"] == f"{HOST}:{server.port}"
    seen = server.seen[-1]
    assert seen.headers["authorization"] == f"Basic {TOKEN}"
    assert seen.body == b'{"payload":{"t":1.5}}'  # compact JSON


def test_post_with_gzip_off_sends_plain_json(client: HttpClient, server: JsonServer) -> None:
    echo = client.request("POST", "/echo", json_body=[1, "two"], gzip=False).json()
    assert echo["json"] == [1, "two"]
    assert echo["encoding"] is None
    assert echo["user"] is None
    assert "authorization" not in server.seen[-1].headers


def test_a_get_carries_content_encoding_gzip_and_no_body(
    client: HttpClient, server: JsonServer
) -> None:
    echo = client.request("GET", "/echo", auth=AUTH).json()
    assert echo == {
        "method": "GET",
        "json": None,
        "encoding": "gzip",
        "length": None,
        "user": "demo",
        "host": f"{HOST}:{server.port}",
    }
    assert client.request("GET", "/echo", gzip=False).json()["encoding"] is None
    # A POST with no body says so.
    assert client.request("POST", "/echo").json()["length"] == "0"


def test_json_null_is_a_body(client: HttpClient) -> None:
    echo = client.request("POST", "/echo", json_body=None, gzip=False).json()
    assert echo["length"] == "4"


def test_keep_alive_uses_one_connection(client: HttpClient, server: JsonServer) -> None:
    for i in range(5):
        assert client.request("POST", "/echo", json_body=i).json()["json"] == i
    assert len(set(server.ports())) == 1
    assert repr(client).endswith("idle=1>")


def test_max_idle_zero_opens_a_connection_per_request(server: JsonServer) -> None:
    with HttpClient(HOST, server.port, max_idle=0) as c:
        for _ in range(3):
            assert c.request("GET", "/echo").ok
    assert len(set(server.ports())) == 3


def test_an_idle_connection_the_server_closed_is_replaced(
    client: HttpClient, server: JsonServer
) -> None:
    assert client.request("GET", "/bye").json() == {"bye": True}
    assert client.request("POST", "/echo", json_body=1).json()["json"] == 1
    assert client.request("POST", "/echo", json_body=2).json()["json"] == 2
    ports = server.ports()
    assert len(set(ports)) == 2
    assert ports[1] == ports[2] != ports[0]


def test_an_idle_connection_the_server_shut_is_not_sent_on(
    raw_server: Callable[[ConnHandler], RawServer],
) -> None:
    shut = threading.Event()
    requests: list[int] = []

    def handler(conn: socket.socket, index: int, stop: threading.Event) -> None:
        while read_request(conn) is not None:
            requests.append(index)
            conn.sendall(ok_reply({"conn": index}))
            if index == 0:
                # Half-closed: the server could still read a request sent here.
                conn.shutdown(socket.SHUT_WR)
                shut.set()

    srv = raw_server(handler)
    with HttpClient(HOST, srv.port, timeout=5.0) as c:
        assert c.request("POST", "/a", json_body=1).json() == {"conn": 0}
        assert shut.wait(5)
        assert c.request("POST", "/b", json_body=2).json() == {"conn": 1}
    assert requests == [0, 1]


def test_a_pooled_connection_dropped_without_a_reply_is_retried_once(
    raw_server: Callable[[ConnHandler], RawServer],
) -> None:
    requests: list[tuple[int, bytes]] = []

    def handler(conn: socket.socket, index: int, stop: threading.Event) -> None:
        while (request := read_request(conn)) is not None:
            requests.append((index, request))
            if index == 0 and len(requests) == 2:
                return  # read the second request, then close without a byte of reply
            conn.sendall(ok_reply({"n": len(requests)}))

    srv = raw_server(handler)
    with HttpClient(HOST, srv.port, timeout=5.0) as c:
        assert c.request("POST", "/a", json_body=1).json() == {"n": 1}
        # Sent on the kept-alive connection, dropped, replayed once on a new one: this is
        # the documented case where a POST the server read is sent twice.
        assert c.request("POST", "/b", json_body=2).json() == {"n": 3}
    assert [i for i, _ in requests] == [0, 0, 1]
    assert requests[1][1] == requests[2][1]
    assert srv.accepted == 2


def test_a_new_connection_dropped_without_a_reply_is_not_retried(
    raw_server: Callable[[ConnHandler], RawServer],
) -> None:
    def handler(conn: socket.socket, index: int, stop: threading.Event) -> None:
        read_request(conn)

    srv = raw_server(handler)
    with HttpClient(HOST, srv.port, timeout=5.0) as c, pytest.raises(ConnectionError) as info:
        c.request("POST", "/publish", json_body={"payload": 1})
    text = str(info.value)
    assert f"POST http://{HOST}:{srv.port}/publish" in text
    assert f"{HOST}:{srv.port} closed the connection before replying" in text
    assert srv.accepted == 1


def test_a_refused_connection_names_host_and_port() -> None:
    port = free_port()
    with (
        HttpClient(HOST, port, timeout=2.0) as c,
        pytest.raises(ConnectionError, match=f"cannot connect to {HOST}:{port}"),
    ):
        c.request("GET", "/echo")


def test_a_gzip_reply_is_inflated(client: HttpClient) -> None:
    r = client.request("GET", "/gzip")
    assert r.headers["content-encoding"] == "gzip"
    assert r.json() == {"big": "x" * 5000}


def test_a_chunked_reply_is_read_whole_and_the_connection_kept(
    client: HttpClient, server: JsonServer
) -> None:
    assert client.request("GET", "/chunked").json() == {"parts": [1, 2, 3]}
    assert client.request("GET", "/chunked").text == '{"parts": [1, 2, 3]}'
    assert len(set(server.ports())) == 1


@pytest.mark.parametrize(
    ("path", "how"),
    [
        ("/big", "Content-Length 5000, over max_body_bytes=1024"),
        ("/big-chunked", "over max_body_bytes=1024 bytes; reading stopped"),
        ("/bomb", "over max_body_bytes=1024 bytes once gunzipped"),
    ],
)
def test_an_oversize_reply_raises_and_drops_its_connection(
    server: JsonServer, path: str, how: str
) -> None:
    with HttpClient(HOST, server.port, max_body_bytes=1024) as c:
        with pytest.raises(ValueError, match=f"the reply to GET http://{HOST}:\\d+{path}"):
            c.request("GET", path)
        with pytest.raises(ValueError, match=how):
            c.request("GET", path)
        assert c.request("GET", "/echo").ok
    ports = server.ports()
    assert len(set(ports)) == 3  # each failure closed its connection


def test_a_silent_server_times_out(raw_server: Callable[[ConnHandler], RawServer]) -> None:
    def handler(conn: socket.socket, index: int, stop: threading.Event) -> None:
        read_request(conn)
        stop.wait(10)

    srv = raw_server(handler)
    with HttpClient(HOST, srv.port, timeout=0.3) as c, pytest.raises(TimeoutError) as info:
        c.request("GET", "/schema", auth=AUTH)
    assert (
        str(info.value) == f"GET http://{HOST}:{srv.port}/schema: no reply within 0.3 s (timeout)"
    )


@pytest.mark.parametrize(
    ("reply", "close"),
    [
        (b"garbage\r\n\r\n", False),
        (b"SSH-2.0-OpenSSH_9.6\r\n", False),
        (b"x" * 20000, False),  # no line end, ever: h11's bound on a head
        (b"junk", True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", True),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", False),
    ],
)
def test_a_reply_that_is_not_http_is_a_connection_error(
    raw_server: Callable[[ConnHandler], RawServer], reply: bytes, close: bool
) -> None:
    def handler(conn: socket.socket, index: int, stop: threading.Event) -> None:
        read_request(conn)
        conn.sendall(reply)
        if not close:
            stop.wait(10)

    srv = raw_server(handler)
    # A ConnectionError, not a TimeoutError: the client never waits for more.
    with (
        HttpClient(HOST, srv.port, timeout=5.0) as c,
        pytest.raises(ConnectionError, match=r"sent a broken or non-HTTP/1\.1 reply"),
    ):
        c.request("GET", "/x")


def test_an_unknown_content_encoding_is_refused(
    raw_server: Callable[[ConnHandler], RawServer],
) -> None:
    def handler(conn: socket.socket, index: int, stop: threading.Event) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\nxx")

    srv = raw_server(handler)
    with (
        HttpClient(HOST, srv.port, timeout=5.0) as c,
        pytest.raises(ValueError, match="Content-Encoding 'br'; expected gzip or none"),
    ):
        c.request("GET", "/x")


def test_a_4xx_with_an_error_raises_http_error(client: HttpClient, server: JsonServer) -> None:
    r = client.request("GET", "/missing")
    assert r.status_code == 404 and not r.ok
    with pytest.raises(HttpError) as info:
        r.raise_for_status()
    exc = info.value
    assert isinstance(exc, OSError) and isinstance(exc, ActorwireError)
    assert exc.status_code == 404 and exc.error == "no stream 'nope'"
    assert exc.url == f"http://{HOST}:{server.port}/missing"
    assert str(exc) == f"404 Client Error: Not Found for url: {exc.url}: no stream 'nope'"
    again = pickle.loads(pickle.dumps(exc))
    assert (again.status_code, again.error, str(again)) == (404, exc.error, str(exc))
    client.request("GET", "/echo").raise_for_status()  # a 200 raises nothing


def test_http_error_without_a_server_error_text() -> None:
    r = HttpResponse(503, "Service Unavailable", {}, b"<html>busy</html>", "http://h/x")
    with pytest.raises(HttpError, match=r"^503 Server Error: Service Unavailable for url: "):
        r.raise_for_status()
    try:
        r.raise_for_status()
    except HttpError as exc:
        assert exc.error is None


def test_json_is_strict_and_names_the_url(client: HttpClient, server: JsonServer) -> None:
    r = client.request("GET", "/nan")
    assert r.text == '{"x": NaN}'
    with pytest.raises(ValueError, match=f"the reply from http://{HOST}:{server.port}/nan is not"):
        r.json()


def test_response_repr_and_text_charset() -> None:
    r = HttpResponse(
        200, "OK", {"content-type": "text/plain; charset=latin-1"}, "é".encode("latin-1"), "u"
    )
    assert repr(r) == "<HttpResponse [200]>"
    assert r.text == "é"
    odd = HttpResponse(200, "OK", {"content-type": "text/plain; charset=nope"}, b"hi", "u")
    assert odd.text == "hi"


# --- TLS --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    server: JsonServer
    ca: Path
    other_ca: Path


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[Tls]:
    ca = make_ca(tmp_path, "ca")
    other = make_ca(tmp_path, "other-ca")
    cert = make_server_cert(tmp_path, ca)
    srv = JsonServer(server_context(cert.cert, cert.key))
    thread = threading.Thread(
        target=srv.serve_forever, args=(0.05,), name="tls-server", daemon=True
    )
    thread.start()
    try:
        yield Tls(srv, ca.cert, other.cert)
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def test_tls_with_the_servers_ca(tls: Tls) -> None:
    port = tls.server.port
    with HttpClient(HOST, port, secure=True, ca_file=str(tls.ca), timeout=5.0) as c:
        assert c.base_url == f"https://{HOST}:{port}"
        r = c.request("POST", "/echo", json_body={"a": 1}, auth=AUTH)
        assert r.json()["json"] == {"a": 1}
        assert r.url == f"https://{HOST}:{port}/echo"
        assert c.request("GET", "/gzip").json() == {"big": "x" * 5000}
    assert len(set(tls.server.ports())) == 1


def test_tls_with_a_certificate_from_another_ca_is_refused(tls: Tls) -> None:
    port = tls.server.port
    with (
        HttpClient(HOST, port, secure=True, ca_file=str(tls.other_ca), timeout=5.0) as c,
        pytest.raises(ConnectionError) as info,
    ):
        c.request("GET", "/echo", auth=AUTH)
    assert f"TLS handshake with {HOST}:{port} failed" in str(info.value)
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    assert_no_secret(info.value)
    assert tls.server.seen == []


# --- secrets ----------------------------------------------------------------------------------


def assert_no_secret(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)
    assert SECRET not in text
    assert TOKEN not in text


def test_the_secret_never_shows_in_errors(
    server: JsonServer, raw_server: Callable[[ConnHandler], RawServer]
) -> None:
    failures: list[BaseException] = []

    def expect(kind: type[BaseException], call: Callable[[], Any]) -> None:
        with pytest.raises(kind) as info:
            call()
        failures.append(info.value)

    def leaky(conn: socket.socket, index: int, stop: threading.Event) -> None:
        # Quotes the request's credentials back in a header line h11 rejects.
        request = read_request(conn) or b""
        token = request.split(b"Authorization: Basic ")[1].split(b"\r\n")[0]
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nleak " + token + b" " + base64.b64decode(token) + b"\r\n\r\n"
        )

    def silent(conn: socket.socket, index: int, stop: threading.Event) -> None:
        read_request(conn)
        stop.wait(10)

    leak, quiet = raw_server(leaky), raw_server(silent)
    with (
        HttpClient(HOST, leak.port, timeout=5.0) as leaking,
        HttpClient(HOST, quiet.port, timeout=0.3) as silence,
        HttpClient(HOST, free_port(), timeout=2.0) as refused,
        HttpClient(HOST, server.port, max_body_bytes=100) as small,
    ):
        expect(ConnectionError, lambda: leaking.request("GET", "/x", auth=AUTH))
        assert "[redacted]" in str(failures[-1])  # the peer's text was quoted, scrubbed
        expect(TimeoutError, lambda: silence.request("POST", "/x", json_body=1, auth=AUTH))
        expect(ConnectionError, lambda: refused.request("GET", "/x", auth=AUTH))
        expect(ValueError, lambda: small.request("GET", "/big", auth=AUTH))
        expect(HttpError, lambda: small.request("GET", "/missing", auth=AUTH).raise_for_status())
        expect(TypeError, lambda: small.request("GET", "/x", auth=["demo", SECRET]))  # type: ignore[arg-type]
        for c in (leaking, silence, refused, small):
            assert SECRET not in repr(c)
    assert len(failures) == 6
    for exc in failures:
        assert_no_secret(exc)


# --- threads and asyncio ----------------------------------------------------------------------


def test_threads_share_the_client(server: JsonServer) -> None:
    workers, each = 8, 10
    barrier = threading.Barrier(workers)

    def work(worker: int) -> list[Any]:
        barrier.wait(5)
        return [
            c.request("POST", "/echo", json_body=[worker, i], auth=AUTH).json()["json"]
            for i in range(each)
        ]

    with (
        HttpClient(HOST, server.port, timeout=5.0, max_idle=4) as c,
        ThreadPoolExecutor(workers) as pool,
    ):
        results = list(pool.map(work, range(workers)))
    assert results == [[[w, i] for i in range(each)] for w in range(workers)]
    assert len(server.seen) == workers * each
    assert len(set(server.ports())) < workers * each  # connections were reused


def test_arequest(client: HttpClient, server: JsonServer) -> None:
    async def main() -> list[Any]:
        replies = await asyncio.gather(
            *(client.arequest("POST", "/echo", json_body=i, auth=AUTH) for i in range(4))
        )
        return [r.json()["json"] for r in replies]

    assert asyncio.run(main()) == [0, 1, 2, 3]


# --- against the stream-sea HTTP API core -----------------------------------------------------


class Api:
    """The business behind the routes, in memory, for one client."""

    def __init__(self) -> None:
        self.schemas: dict[str, SchemaDefinition] = {}
        self.published: list[Any] = []

    def authenticate(self, client_id: str, secret: str) -> bool:
        return (client_id, secret) == AUTH

    def define(self, client_id: str, stream: str, schema: SchemaDefinition) -> None:
        self.schemas[stream] = schema

    def schema(self, stream: str) -> SchemaDefinition | None:
        return self.schemas.get(stream)

    def publish(self, client_id: str, stream: str, payload: Any) -> None:
        if stream not in self.schemas:
            raise UnknownStream(stream)
        validate(self.schemas[stream], payload)
        self.published.append(payload)

    def versions(self, names: Sequence[str]) -> list[int | None]:
        return [None if n not in self.schemas else int(self.schemas[n].version) for n in names]


def test_the_streamsea_api_core_takes_every_call(
    raw_server: Callable[[ConnHandler], RawServer],
) -> None:
    api = Api()

    def serve(conn: socket.socket, index: int, stop: threading.Event) -> None:
        session = HttpSession(api)
        while not session.closed:
            data = conn.recv(65536)
            for action in session.receive_data(data):
                if isinstance(action, Send):
                    conn.sendall(action.data)
            if not data:
                return

    srv = raw_server(serve)
    schema = {"name": "boiler", "version": 2, "fields": [{"name": "t", "type": "float"}]}
    base = "/api/v1"
    with HttpClient(HOST, srv.port, timeout=5.0) as c:
        r = c.request("POST", f"{base}/streams/boiler/define", json_body=schema, auth=AUTH)
        r.raise_for_status()
        assert r.json() == schema
        assert c.request("GET", f"{base}/streams/boiler/schema", auth=AUTH).json() == schema
        assert c.request("GET", f"{base}/streams/none/schema", auth=AUTH).status_code == 404
        r = c.request(
            "POST", f"{base}/streams/boiler/publish", json_body={"payload": {"t": 1.5}}, auth=AUTH
        )
        assert r.json() == {"success": True}
        r = c.request(
            "POST",
            f"{base}/schema-versions-vector",
            json_body={"schemaNames": ["boiler", "none"]},
            auth=AUTH,
            gzip=False,
        )
        assert r.json() == {"versionsVector": [2, None]}
        bad = c.request(
            "POST", f"{base}/streams/boiler/publish", json_body={"payload": {"t": "hot"}}, auth=AUTH
        )
        assert bad.status_code == 400
        wrong = c.request("GET", f"{base}/streams/boiler/schema", auth=("demo", "wrong"))
        with pytest.raises(HttpError, match="401 Client Error: Unauthorized") as info:
            wrong.raise_for_status()
        assert info.value.error == "missing or invalid credentials (Basic auth)"
    assert api.published == [{"t": 1.5}]
    assert srv.accepted == 1  # keep-alive all along, through the 4xx replies
