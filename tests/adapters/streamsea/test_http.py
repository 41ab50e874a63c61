"""The stream-sea HTTP API's sans-I/O core: bytes in, bytes out, responses read back with
h11's client side. Every route with gzip and plain bodies, the exact requests
stream-sea-client 0.7.0 sends (PEERS.md 2.3), auth, every error status, keep-alive,
pipelining, the websocket upgrade hand-over, and hypothesis fuzzing. The API behind the
routes is a small in-memory fake."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import h11
import pytest
from actorwire.adapters.streamsea.http import (
    MAX_BODY_BYTES,
    Action,
    Close,
    HttpSession,
    Send,
    StreamApi,
    UnknownStream,
    Upgrade,
)
from actorwire.adapters.streamsea.schema import SchemaDefinition, validate
from hypothesis import given, settings
from hypothesis import strategies as st

SECRET = "demo-secret"
AUTH = "Basic " + base64.b64encode(f"demo:{SECRET}".encode()).decode()
BOILER = {
    "name": "boiler",
    "version": 1,
    "fields": [{"name": "temperature", "type": "float"}, {"name": "site", "type": "string"}],
}


class FakeApi:
    """The business API, in memory: one client, schemas by stream, what was published."""

    def __init__(self) -> None:
        self.schemas: dict[str, SchemaDefinition] = {}
        self.published: list[tuple[str, str, Any]] = []
        self.defined: list[tuple[str, str]] = []

    def authenticate(self, client_id: str, secret: str) -> bool:
        return (client_id, secret) == ("demo", SECRET)

    def define(
        self, client_id: str, stream: str, schema: SchemaDefinition
    ) -> SchemaDefinition | None:
        if stream == "locked":
            raise ValueError("stream 'locked' cannot be redefined")
        if stream == "broken":
            raise RuntimeError("the store cannot take it")
        kept = self.schemas.get(stream)
        if kept is not None and kept.version == schema.version:
            return kept  # the same version is not overwritten
        self.schemas[stream] = schema
        self.defined.append((client_id, stream))
        return None

    def schema(self, stream: str) -> SchemaDefinition | None:
        return self.schemas.get(stream)

    def publish(self, client_id: str, stream: str, payload: Any) -> None:
        schema = self.schemas.get(stream)
        if schema is None:
            if stream == "explained":
                raise UnknownStream("stream 'explained' is not defined: define it first")
            raise UnknownStream(stream)
        validate(schema, payload)
        self.published.append((client_id, stream, payload))

    def versions(self, names: Sequence[str]) -> list[int | None]:
        out: list[int | None] = []
        for name in names:
            schema = self.schemas.get(name)
            out.append(None if schema is None else int(schema.version))
        return out


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def api_with_boiler() -> FakeApi:
    api = FakeApi()
    api.schemas["boiler"] = SchemaDefinition.from_json(BOILER)
    return api


def session(api: StreamApi | None = None, **kwargs: int) -> HttpSession:
    return HttpSession(api if api is not None else api_with_boiler(), **kwargs)


def parse(data: bytes) -> list[Reply]:
    """Every complete response in ``data``, in order (informational ones included)."""
    client = h11.Connection(h11.CLIENT)
    if not data:
        return []
    client.receive_data(data)
    replies: list[Reply] = []
    current: Reply | None = None
    while True:
        if client.our_state is h11.IDLE:
            client.send(h11.Request(method="POST", target="/", headers=[("host", "x")]))
            client.send(h11.EndOfMessage())
        event = client.next_event()
        if event is h11.NEED_DATA or event is h11.PAUSED:
            if event is h11.PAUSED and client.their_state is h11.DONE:
                client.start_next_cycle()
                continue
            return replies
        if isinstance(event, h11.InformationalResponse):
            replies.append(Reply(event.status_code, dict(event.headers), b""))
        elif isinstance(event, h11.Response):
            current = Reply(event.status_code, dict(event.headers), b"")
        elif isinstance(event, h11.Data):
            assert current is not None
            current.body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert current is not None
            replies.append(current)
            current = None
            if client.our_state is h11.MUST_CLOSE or client.their_state is h11.MUST_CLOSE:
                return replies
            client.start_next_cycle()
        else:
            return replies


def sent(actions: list[Action]) -> bytes:
    return b"".join(a.data for a in actions if isinstance(a, Send))


def exchange(s: HttpSession, data: bytes) -> tuple[list[Reply], list[Action]]:
    actions = s.receive_data(data)
    return parse(sent(actions)), actions


def request(
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    auth: str | None = AUTH,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost:8400"]
    if auth is not None:
        lines.append(f"Authorization: {auth}")
    lines += [f"{k}: {v}" for k, v in headers]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def plain(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def py_client(method: str, path: str, obj: Any = None, *, secret: str = SECRET) -> bytes:
    """A request exactly as stream-sea-client 0.7.0 (python-requests) writes it: gzip on every
    request, the GET with ``Content-encoding: gzip`` and no body."""
    token = base64.b64encode(f"demo:{secret}".encode()).decode()
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: localhost:8400",
        "User-Agent: python-requests/2.31.0",
        "Accept-Encoding: gzip, deflate",
        "Accept: application/json",
        "Connection: keep-alive",
        f"Authorization: Basic {token}",
        "Content-encoding: gzip",
        "Content-type: application/json",
    ]
    body = b"" if obj is None else gzip.compress(json.dumps(obj).encode())
    if obj is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def one(s: HttpSession, data: bytes) -> Reply:
    replies, actions = exchange(s, data)
    assert len(replies) == 1, (replies, actions)
    reply = replies[0]
    assert reply.headers[b"content-type"] == b"application/json"
    assert int(reply.headers[b"content-length"]) == len(reply.body)
    return reply


# --------------------------------------------------------------------------- the routes


def test_publish_as_the_python_client_sends_it() -> None:
    api = api_with_boiler()
    s = session(api)
    payload = {"temperature": 92.5, "site": "north"}
    reply = one(s, py_client("POST", "/api/v1/streams/boiler/publish", {"payload": payload}))
    assert (reply.status, reply.json()) == (200, {"success": True})
    assert api.published == [("demo", "boiler", payload)]
    assert not s.closed


def test_publish_plain_json() -> None:
    api = api_with_boiler()
    payload = {"temperature": 1, "site": "s"}
    body = plain({"payload": payload})
    reply = one(session(api), request("POST", "/api/v1/streams/boiler/publish", body))
    assert reply.status == 200
    assert api.published == [("demo", "boiler", payload)]


def test_publish_schema_error_names_the_field() -> None:
    api = api_with_boiler()
    body = plain({"payload": {"temperature": "hot", "site": "s"}})
    reply = one(session(api), request("POST", "/api/v1/streams/boiler/publish", body))
    assert reply.status == 400
    assert reply.json()["field"] == "temperature"
    assert "temperature" in reply.json()["error"]
    assert api.published == []


def test_a_server_failure_is_a_503_and_the_connection_stays() -> None:
    s = session()
    body = plain({"version": 1, "fields": []})
    reply = one(s, request("POST", "/api/v1/streams/broken/define", body))
    assert reply.status == 503
    assert "could not do it: the store cannot take it" in reply.json()["error"]
    assert not s.closed


def test_define_answers_with_the_schema_in_force() -> None:
    api = api_with_boiler()
    kept = api.schemas["boiler"].json_serialize()
    other = {"version": kept["version"], "fields": [{"name": "x", "type": "string"}]}
    reply = one(session(api), request("POST", "/api/v1/streams/boiler/define", plain(other)))
    assert (reply.status, reply.json()) == (200, kept)


def test_publish_unknown_stream_says_why_when_the_api_does() -> None:
    body = plain({"payload": {}})
    reply = one(session(), request("POST", "/api/v1/streams/explained/publish", body))
    assert reply.status == 404
    assert reply.json()["error"] == "stream 'explained' is not defined: define it first"


def test_publish_unknown_stream_is_404() -> None:
    body = plain({"payload": {}})
    reply = one(session(), request("POST", "/api/v1/streams/nope/publish", body))
    assert reply.status == 404
    assert "nope" in reply.json()["error"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"[1]", "JSON object"),
        (b'{"pay": 1}', "'payload'"),
        (b"{", "not JSON"),
        (b'{"payload": NaN}', "not JSON"),
        (b"\xff\xfe", "UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nests too deep"),
    ],
)
def test_publish_bad_bodies_are_400(body: bytes, needle: str) -> None:
    reply = one(session(), request("POST", "/api/v1/streams/boiler/publish", body))
    assert reply.status == 400
    assert needle in reply.json()["error"]


def test_define_as_the_python_client_sends_it() -> None:
    api = FakeApi()
    s = session(api)
    reply = one(s, py_client("POST", "/api/v1/streams/boiler/define", BOILER))
    assert reply.status == 200
    assert reply.json() == BOILER
    assert api.schemas["boiler"] == SchemaDefinition.from_json(BOILER)
    assert api.defined == [("demo", "boiler")]


def test_define_as_the_js_client_sends_it_takes_the_name_from_the_url() -> None:
    api = FakeApi()
    body = plain({"version": 2, "fields": BOILER["fields"]})
    reply = one(session(api), request("POST", "/api/v1/streams/boiler/define", body))
    assert reply.status == 200
    assert api.schemas["boiler"].name == "boiler"
    assert api.schemas["boiler"].version == 2


@pytest.mark.parametrize(
    ("stream", "obj", "needle"),
    [
        ("boiler", {**BOILER, "name": "other"}, "stream's name"),
        ("boiler", {"version": 1}, "'fields'"),
        ("boiler", {"version": 1, "fields": [{"name": "a", "type": "flaot"}]}, "float"),
        ("boiler", {**BOILER, "extra": 1}, "unknown key"),
        ("locked", {"version": 1, "fields": []}, "cannot be redefined"),
    ],
)
def test_define_refusals_are_400(stream: str, obj: Any, needle: str) -> None:
    api = FakeApi()
    reply = one(session(api), request("POST", f"/api/v1/streams/{stream}/define", plain(obj)))
    assert reply.status == 400
    assert needle in reply.json()["error"]
    assert api.schemas == {}


def test_schema_as_the_python_client_asks_for_it() -> None:
    s = session()
    reply = one(s, py_client("GET", "/api/v1/streams/boiler/schema"))
    assert reply.status == 200
    assert reply.json() == BOILER
    assert set(reply.json()) == {"name", "version", "fields"}
    reply = one(s, py_client("GET", "/api/v1/streams/none/schema"))
    assert reply.status == 404
    assert "none" in reply.json()["error"]


def test_schema_get_plain_and_with_query() -> None:
    reply = one(session(), request("GET", "/api/v1/streams/boiler/schema?x=1"))
    assert (reply.status, reply.json()) == (200, BOILER)


def test_stream_names_are_percent_decoded() -> None:
    api = api_with_boiler()
    api.schemas["a b"] = SchemaDefinition("a b", 3, [])
    reply = one(session(api), request("GET", "/api/v1/streams/a%20b/schema"))
    assert reply.json()["name"] == "a b"
    reply = one(session(api), request("GET", "/api/v1/streams/%ff/schema"))
    assert reply.status == 400


def test_versions_vector_gzip_and_plain() -> None:
    s = session()
    obj = {"schemaNames": ["boiler", "unknown"]}
    reply = one(s, py_client("POST", "/api/v1/schema-versions-vector", obj))
    assert (reply.status, reply.json()) == (200, {"versionsVector": [1, None]})
    reply = one(s, request("POST", "/api/v1/schema-versions-vector", plain(obj)))
    assert reply.json() == {"versionsVector": [1, None]}
    reply = one(s, request("POST", "/api/v1/schema-versions-vector", plain({"schemaNames": 1})))
    assert reply.status == 400


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "Basic " + base64.b64encode(b"demo:wrong-secret").decode(),
        "Basic " + base64.b64encode(b"nobody:" + SECRET.encode()).decode(),
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic !!!not-base64",
        "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
        "Bearer abc",
        "Basic",
    ],
)
def test_bad_credentials_are_401(auth: str | None) -> None:
    api = api_with_boiler()
    s = session(api)
    body = plain({"payload": {"temperature": 1, "site": "s"}})
    replies, actions = exchange(
        s, request("POST", "/api/v1/streams/boiler/publish", body, auth=auth)
    )
    assert [r.status for r in replies] == [401]
    assert replies[0].headers[b"www-authenticate"] == b"Basic"
    assert b"wrong-secret" not in sent(actions)
    assert SECRET.encode() not in sent(actions)
    assert api.published == []
    assert not s.closed  # the body was read: the connection stays usable
    assert one(s, request("GET", "/api/v1/streams/boiler/schema")).status == 200


def test_every_route_needs_auth() -> None:
    for data in [
        request("GET", "/api/v1/streams/boiler/schema", auth=None),
        request("POST", "/api/v1/streams/boiler/define", plain(BOILER), auth=None),
        request("POST", "/api/v1/schema-versions-vector", plain({"schemaNames": []}), auth=None),
        py_client("GET", "/api/v1/streams/boiler/schema", secret="nope"),
    ]:
        assert one(session(), data).status == 401


def test_two_authorization_headers_are_refused() -> None:
    data = request("GET", "/api/v1/streams/boiler/schema", headers=[("Authorization", AUTH)])
    assert one(session(), data).status == 401


# --------------------------------------------------------------------------- error statuses


def test_unknown_path_is_404_and_wrong_method_405() -> None:
    s = session()
    for path in ["/", "/api/v1", "/api/v1/streams/boiler", "/api/v1/streams/boiler/x", "/api/v2/x"]:
        assert one(s, request("GET", path)).status == 404
    reply = one(s, request("GET", "/api/v1/streams/boiler/publish"))
    assert (reply.status, reply.headers[b"allow"]) == (405, b"POST")
    reply = one(s, request("POST", "/api/v1/streams/boiler/schema", b"{}"))
    assert (reply.status, reply.headers[b"allow"]) == (405, b"GET")
    reply = one(s, request("DELETE", "/api/v1/schema-versions-vector"))
    assert (reply.status, reply.headers[b"allow"]) == (405, b"POST")
    reply = one(s, request("GET", "/api/v1/streams"))
    assert reply.status == 426
    assert not s.closed


def test_declared_oversize_body_is_413_and_closes() -> None:
    s = session(max_body_bytes=100)
    head = request("POST", "/api/v1/streams/boiler/publish", headers=[("Content-Length", "101")])
    replies, actions = exchange(s, head)
    assert [r.status for r in replies] == [413]
    assert isinstance(actions[-1], Close)
    assert s.closed
    assert s.receive_data(b"x" * 101) == []


def test_chunked_oversize_body_is_413() -> None:
    s = session(max_body_bytes=100)
    head = request(
        "POST", "/api/v1/streams/boiler/publish", headers=[("Transfer-Encoding", "chunked")]
    )
    replies, actions = exchange(s, head + b"40\r\n" + b"a" * 64 + b"\r\n")
    assert replies == []
    replies, actions = exchange(s, b"40\r\n" + b"a" * 64 + b"\r\n")
    assert [r.status for r in replies] == [413]
    assert isinstance(actions[-1], Close)


def test_chunked_body_within_bound_is_read() -> None:
    api = api_with_boiler()
    body = plain({"payload": {"temperature": 1, "site": "s"}})
    head = request(
        "POST", "/api/v1/streams/boiler/publish", headers=[("Transfer-Encoding", "chunked")]
    )
    data = head + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    assert one(session(api), data).status == 200
    assert len(api.published) == 1


def test_gzip_bomb_is_413_without_inflating_past_the_bound() -> None:
    bomb = gzip.compress(b'{"payload": "' + b"a" * (MAX_BODY_BYTES * 20) + b'"}')
    assert len(bomb) < MAX_BODY_BYTES // 10
    s = session()
    data = request(
        "POST", "/api/v1/streams/boiler/publish", bomb, headers=[("Content-Encoding", "gzip")]
    )
    reply = one(s, data)
    assert reply.status == 413
    assert "decompressed" in reply.json()["error"]
    assert not s.closed


def test_gzip_exactly_at_the_bound_is_accepted() -> None:
    api = api_with_boiler()
    api.schemas["s"] = SchemaDefinition("s", 1, [{"name": "t", "type": "string"}])
    prefix, suffix = b'{"payload": {"t": "', b'"}}'
    raw = prefix + b"a" * (1000 - len(prefix) - len(suffix)) + suffix
    data = request(
        "POST",
        "/api/v1/streams/s/publish",
        gzip.compress(raw),
        headers=[("Content-Encoding", "gzip")],
    )
    assert one(session(api, max_body_bytes=1000), data).status == 200
    assert one(session(api, max_body_bytes=999), data).status == 413


@pytest.mark.parametrize(
    ("body", "encoding", "status", "needle"),
    [
        (b"not gzip", "gzip", 400, "not valid gzip"),
        (gzip.compress(b'{"payload": 1}')[:-5], "gzip", 400, "ends before"),
        (gzip.compress(b'{"payload": 1}') + b"junk", "gzip", 400, "after its gzip"),
        (b'{"payload": 1}', "br", 415, "br"),
        (b'{"payload": 1}', "gzip, br", 415, "br"),
    ],
)
def test_bad_encodings(body: bytes, encoding: str, status: int, needle: str) -> None:
    headers = [("Content-Encoding", encoding)]
    reply = one(session(), request("POST", "/api/v1/streams/boiler/publish", body, headers=headers))
    assert reply.status == status
    assert needle in reply.json()["error"]


def test_identity_encoding_is_plain() -> None:
    body = plain({"payload": {"temperature": 1, "site": "s"}})
    headers = [("Content-Encoding", "identity")]
    reply = one(session(), request("POST", "/api/v1/streams/boiler/publish", body, headers=headers))
    assert reply.status == 200


def test_post_without_body_is_400() -> None:
    reply = one(session(), py_client("POST", "/api/v1/streams/boiler/publish"))
    assert reply.status == 400
    assert "no body" in reply.json()["error"]


def test_oversize_head_is_431() -> None:
    s = session(max_header_bytes=1024)
    data = request("GET", "/api/v1/streams/boiler/schema", headers=[("X-Big", "a" * 2000)])
    replies, actions = exchange(s, data)
    assert [r.status for r in replies] == [431]
    assert isinstance(actions[-1], Close)


@pytest.mark.parametrize(
    "data",
    [
        b"garbage\r\n\r\n",
        b"GET /x HTTP/1.1\r\n\r\n",  # no Host
        b"GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: a\r\nbad header\r\n\r\n",
    ],
)
def test_malformed_request_is_400_and_closes(data: bytes) -> None:
    s = session()
    replies, actions = exchange(s, data)
    assert [r.status for r in replies] == [400]
    assert "malformed" in replies[0].json()["error"]
    assert isinstance(actions[-1], Close)
    assert s.closed


def test_peer_close_closes() -> None:
    s = session()
    assert s.receive_data(b"") == [Close()]
    s = session()
    assert s.receive_data(b"GET /api/v1/str") == []
    actions = s.receive_data(b"")
    assert isinstance(actions[-1], Close)


def test_expect_100_continue() -> None:
    s = session()
    body = plain({"payload": {"temperature": 1, "site": "s"}})
    head = request(
        "POST", "/api/v1/streams/boiler/publish", headers=[("Expect", "100-continue")]
    ).replace(b"\r\n\r\n", f"\r\nContent-Length: {len(body)}\r\n\r\n".encode())
    replies, _ = exchange(s, head)
    assert [r.status for r in replies] == [100]
    assert one(s, body).status == 200
    # Refused before the body: answered at once, and the connection closes.
    s = session()
    replies, actions = exchange(s, head.replace(AUTH.encode(), b"Basic eDp5"))
    assert [r.status for r in replies] == [401]
    assert isinstance(actions[-1], Close)


# --------------------------------------------------------------------------- keep-alive


def test_keep_alive_two_requests_in_one_read() -> None:
    api = api_with_boiler()
    s = session(api)
    data = py_client("GET", "/api/v1/streams/boiler/schema") + py_client(
        "POST", "/api/v1/streams/boiler/publish", {"payload": {"temperature": 2, "site": "x"}}
    )
    replies, actions = exchange(s, data)
    assert [r.status for r in replies] == [200, 200]
    assert replies[0].json() == BOILER
    assert not any(isinstance(a, Close) for a in actions)
    assert len(api.published) == 1


def test_pipelined_requests_answered_in_order_whatever_the_split() -> None:
    data = (
        request("GET", "/api/v1/streams/boiler/schema")
        + request("GET", "/nowhere")
        + request("POST", "/api/v1/schema-versions-vector", plain({"schemaNames": ["boiler"]}))
        + request("GET", "/api/v1/streams/boiler/schema", auth=None)
        + py_client("POST", "/api/v1/streams/boiler/publish", {"payload": {"t": 1}})
    )
    expected = [200, 404, 200, 401, 400]
    for step in (len(data), 1, 7, 100):
        s = session()
        out = b""
        for i in range(0, len(data), step):
            actions = s.receive_data(data[i : i + step])
            assert not any(isinstance(a, Close | Upgrade) for a in actions)
            out += sent(actions)
        assert [r.status for r in parse(out)] == expected


def test_connection_close_request_closes_after_the_reply() -> None:
    s = session()
    data = request("GET", "/api/v1/streams/boiler/schema", headers=[("Connection", "close")])
    replies, actions = exchange(s, data + request("GET", "/api/v1/streams/boiler/schema"))
    assert [r.status for r in replies] == [200]
    assert isinstance(actions[-1], Close)


def test_http_1_0_closes_after_the_reply() -> None:
    s = session()
    data = b"GET /api/v1/streams/boiler/schema HTTP/1.0\r\nAuthorization: " + AUTH.encode()
    replies, actions = exchange(s, data + b"\r\n\r\n")
    assert [r.status for r in replies] == [200]
    assert isinstance(actions[-1], Close)


# --------------------------------------------------------------------------- upgrade

WS_HEAD = (
    b"GET /api/v1/streams HTTP/1.1\r\n"
    b"Host: localhost:8400\r\n"
    b"upgrade:   WebSocket  \r\n"
    b"Connection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


def test_upgrade_hands_over_the_exact_head_and_what_follows() -> None:
    s = session()
    frame = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"  # a masked "Hello"
    actions = s.receive_data(WS_HEAD + frame)
    assert len(actions) == 1
    up = actions[0]
    assert isinstance(up, Upgrade)
    assert (up.head, up.rest, up.path) == (WS_HEAD, frame, "/api/v1/streams")
    assert (b"sec-websocket-version", b"13") in up.headers
    assert s.closed
    assert s.receive_data(b"more") == []


def test_upgrade_after_a_keep_alive_request_and_split_byte_by_byte() -> None:
    first = request("GET", "/api/v1/streams/boiler/schema")
    data = first + WS_HEAD.replace(b"/api/v1/streams ", b"/api/v1/streams?x=1 ")
    s = session()
    actions: list[Action] = []
    for i in range(len(data)):
        actions += s.receive_data(data[i : i + 1])
    assert [r.status for r in parse(sent(actions))] == [200]
    up = actions[-1]
    assert isinstance(up, Upgrade)
    assert up.head == data[len(first) :]
    assert (up.path, up.rest) == ("/api/v1/streams", b"")


def test_upgrade_head_feeds_websockets_server_protocol() -> None:
    from websockets.http11 import Request
    from websockets.server import ServerProtocol

    actions = session().receive_data(WS_HEAD)
    up = actions[0]
    assert isinstance(up, Upgrade)
    ws = ServerProtocol()
    ws.receive_data(up.head + up.rest)
    [event] = ws.events_received()
    assert isinstance(event, Request)
    assert event.path == "/api/v1/streams"
    ws.send_response(ws.accept(event))
    assert b"101" in ws.data_to_send()[0]


def test_upgrade_refusals() -> None:
    s = session()
    reply = one(s, WS_HEAD.replace(b"/api/v1/streams ", b"/api/v1/other "))
    assert reply.status == 404
    s = session()
    reply = one(
        s, WS_HEAD.replace(b"GET", b"POST").replace(b"\r\n\r\n", b"\r\nContent-Length: 0\r\n\r\n")
    )
    assert reply.status == 405
    s = session()
    reply = one(s, WS_HEAD.replace(b"\r\n\r\n", b"\r\nContent-Length: 2\r\n\r\nab"))
    assert reply.status == 400


# --------------------------------------------------------------------------- fuzzing

_VALID = [
    py_client(
        "POST", "/api/v1/streams/boiler/publish", {"payload": {"temperature": 1, "site": "s"}}
    ),
    py_client("GET", "/api/v1/streams/boiler/schema"),
    request("POST", "/api/v1/streams/boiler/define", plain(BOILER)),
    request("POST", "/api/v1/schema-versions-vector", plain({"schemaNames": ["boiler"]})),
    WS_HEAD,
]


def _check_actions(s: HttpSession, chunks: list[bytes]) -> None:
    done = False
    for chunk in chunks:
        actions = s.receive_data(chunk)
        if done:
            assert actions == []
        for a in actions:
            assert isinstance(a, Send | Close | Upgrade)
            assert not done
            if isinstance(a, Close | Upgrade):
                done = True
    assert done == s.closed


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=5))
def test_fuzz_random_bytes_never_crash(chunks: list[bytes]) -> None:
    _check_actions(session(max_body_bytes=500, max_header_bytes=300), chunks)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_VALID), min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(0, 2000), st.binary(max_size=4)), max_size=4),
    st.lists(st.integers(1, 400), max_size=6),
)
def test_fuzz_mutated_requests_never_crash(
    requests: list[bytes], edits: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    data = bytearray(b"".join(requests))
    for at, replacement in edits:
        at %= len(data)
        data[at : at + len(replacement)] = replacement
    chunks, i = [], 0
    for cut in cuts:
        chunks.append(bytes(data[i : i + cut]))
        i += cut
    chunks.append(bytes(data[i:]))
    s = session()
    _check_actions(s, chunks)
    if not s.closed:
        replies = parse(sent(s.receive_data(b"")))
        assert all(r.status >= 100 for r in replies)


def test_oversize_head_fed_in_pieces_is_431() -> None:
    s = session(max_header_bytes=1024)
    data = request("GET", "/api/v1/streams/boiler/schema", headers=[("X-Big", "a" * 2000)])
    actions: list[Action] = []
    for i in range(0, len(data), 100):
        actions += s.receive_data(data[i : i + 100])
    assert [r.status for r in parse(sent(actions))] == [431]
    assert isinstance(actions[-1], Close)


def test_oversize_upgrade_head_is_431() -> None:
    s = session(max_header_bytes=200)
    data = WS_HEAD.replace(b"\r\n\r\n", b"\r\nX-Big: " + b"a" * 300 + b"\r\n\r\n")
    replies, actions = exchange(s, data)
    assert [r.status for r in replies] == [431]
    assert not any(isinstance(a, Upgrade) for a in actions)
