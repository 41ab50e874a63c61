"""stream-sea's HTTP API, the server's side of one connection, sans-I/O, on h11.

:class:`HttpSession` takes the bytes a connection receives and returns what to do, in
order: :class:`Send` bytes, :class:`Close` the connection, or hand it over to the websocket
layer (:class:`Upgrade`). It holds no sockets and no clocks; the business behind the routes
is an injected :class:`StreamApi`.

The routes, as stream-sea-client 0.7.0 and the JS client call them (PEERS.md 2.3, 2.4)::

    POST /api/v1/streams/{stream}/publish     {"payload": ...}        -> 200 {"success": true}
    POST /api/v1/streams/{stream}/define      {"name"?, "version", "fields"}
                                                                      -> 200 the schema
    GET  /api/v1/streams/{stream}/schema                              -> 200 {"name", "version",
                                                                              "fields"} or 404
    POST /api/v1/schema-versions-vector       {"schemaNames": [..]}   -> 200 {"versionsVector":
                                                                              [int|null, ..]}
    GET  /api/v1/streams  (Upgrade: websocket)                        -> Upgrade action

Every route but the websocket needs ``Authorization: Basic base64(id:secret)`` (the
websocket authenticates in its first message): missing or wrong, 401 with
``WWW-Authenticate: Basic``; no reply ever shows the secret. The JS client's ``define`` has
no ``name``: it is the stream's, from the URL (a ``name`` that differs is a 400).

Bodies are JSON (strict: no NaN or Infinity), plain or ``Content-Encoding: gzip`` (0.7.0
gzips every body and sends the header on its body-less GET too; an empty body is no body).
Limits: a request head over ``max_header_bytes`` is a 431; a body over ``max_body_bytes``,
as sent or once inflated (inflation stops there, never past), is a 413; a body that is not
gzip or JSON, or not the route's shape, a 400; another content coding a 415; an unknown
path a 404; a method the path does not take a 405 with ``Allow``; a RuntimeError or
OSError from the API (the server could not do it, e.g. its store failed) a 503. A request
h11 cannot parse is a 400 (or h11's status hint), and the connection closes after it. Every reply is
JSON with ``Content-Type: application/json`` and ``Content-Length``; errors are
``{"error": "<what was wrong>"}`` (a schema error adds ``"field"``).

Keep-alive and pipelining are h11's: requests are answered one at a time, in order, however
they arrive. An upgrade request is handed over with the exact bytes of its head (and any
bytes after it) for websockets' sans-I/O ``ServerProtocol``; the session then takes no more
bytes. Exceptions the API raises other than those documented on :class:`StreamApi`
propagate to the caller.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias
from urllib.parse import unquote

import h11

from .schema import SchemaDefinition, SchemaError

__all__ = [
    "API_PREFIX",
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "WEBSOCKET_PATH",
    "Action",
    "Close",
    "HttpSession",
    "Send",
    "StreamApi",
    "UnknownStream",
    "Upgrade",
]

MAX_BODY_BYTES = 1 << 20
"""Default bound on a request body, as sent and once decompressed."""
MAX_HEADER_BYTES = 16 << 10
"""Default bound on a request head (request line and headers)."""
API_PREFIX = "/api/v1"
WEBSOCKET_PATH = "/api/v1/streams"


class UnknownStream(KeyError):
    """Raised by :meth:`StreamApi.publish` for a stream that does not exist: a 404."""


class StreamApi(Protocol):
    """The business behind the routes: what the embedded server (or a test's fake) provides."""

    def authenticate(self, client_id: str, secret: str) -> bool:
        """Whether ``secret`` is ``client_id``'s secret."""

    def define(
        self, client_id: str, stream: str, schema: SchemaDefinition
    ) -> SchemaDefinition | None:
        """Define ``stream``'s schema and return the schema in force (the existing one when
        it is kept; None: the one given); ValueError (a 400, its text the reply) to refuse."""

    def schema(self, stream: str) -> SchemaDefinition | None:
        """``stream``'s schema, None if it has none (a 404)."""

    def publish(self, client_id: str, stream: str, payload: Any) -> None:
        """Publish ``payload``; SchemaError (a 400 naming the field) if it does not match the
        stream's schema, UnknownStream (a 404) if there is no such stream."""

    def versions(self, names: Sequence[str]) -> list[int | None]:
        """The schema version of each stream named, None for an unknown one."""


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``data`` to the connection."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection (after writing every Send before this)."""


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A websocket upgrade request to :data:`WEBSOCKET_PATH`: give ``head + rest`` to a
    websockets ``ServerProtocol``. ``head`` is the request head exactly as received (request
    line, headers and the blank line), ``rest`` what arrived after it; ``path`` is the target
    without its query; ``headers`` as h11 parsed them (names lower-cased)."""

    head: bytes
    path: str
    headers: tuple[tuple[bytes, bytes], ...]
    rest: bytes = field(default=b"", repr=False)


Action: TypeAlias = Send | Close | Upgrade
_Headers: TypeAlias = Sequence[tuple[bytes, bytes]]

_JSON_HEADERS = [(b"content-type", b"application/json")]
_ENCODINGS_GZIP = frozenset({"gzip", "x-gzip"})
_ENCODINGS_NONE = frozenset({"", "identity"})


class _Refusal(Exception):
    """An error reply: ``status``, the ``{"error": ...}`` text, extra headers and body keys."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: Sequence[tuple[bytes, bytes]] = (),
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)
        self.extra = extra or {}


@dataclass(slots=True)
class _Request:
    """The request being read: its route (or the refusal it already earned) and its body."""

    route: str
    stream: str
    refusal: _Refusal | None
    client_id: str
    encoding: str
    body: bytearray = field(default_factory=bytearray)
    received: int = 0


class HttpSession:
    """One connection's HTTP layer: :meth:`receive_data` in, actions out. The rules are in
    this module's docstring."""

    def __init__(
        self,
        api: StreamApi,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self._api = api
        self._max_body = max_body_bytes
        self._max_header = max_header_bytes
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_header_bytes)
        self._request: _Request | None = None
        # The raw bytes of the request being read, from its first byte, while its head is
        # not yet parsed: the exact head an upgrade hands over.
        self._raw: bytearray | None = bytearray()
        self._done = False

    @property
    def closed(self) -> bool:
        """True once the session has returned Close or Upgrade: it takes no more bytes."""
        return self._done

    def receive_data(self, data: bytes) -> list[Action]:
        """Feed bytes received (``b""``: the peer closed its side); return what to do."""
        if self._done:
            return []
        if self._raw is not None:
            self._raw += data
        self._conn.receive_data(data)
        out: list[Action] = []
        try:
            self._run(out)
        except h11.RemoteProtocolError as exc:
            self._protocol_error(exc, out)
        return out

    # --- the event loop ---------------------------------------------------------------------

    def _run(self, out: list[Action]) -> None:
        while not self._done:
            event = self._conn.next_event()
            if event is h11.NEED_DATA:
                return
            if event is h11.PAUSED:
                if not self._next_cycle(out):
                    return
                continue
            if isinstance(event, h11.Request):
                self._on_request(event, out)
            elif isinstance(event, h11.Data):
                self._on_data(event.data, out)
            elif isinstance(event, h11.EndOfMessage):
                self._on_end(out)
            elif isinstance(event, h11.ConnectionClosed):
                self._close(out)

    def _next_cycle(self, out: list[Action]) -> bool:
        """After a response: start the next request, or close. False: wait for data."""
        conn = self._conn
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            self._close(out)
            return False
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            self._raw = bytearray(conn.trailing_data[0])
            return True
        # Paused on an upgrade request we refused but whose body is still coming, or a
        # state we cannot continue from: close.
        self._close(out)
        return False

    def _on_request(self, event: h11.Request, out: list[Action]) -> None:
        raw, self._raw = self._raw, None
        method = event.method.decode("ascii", "replace")
        target = event.target.decode("ascii", "replace")
        path = target.split("?", 1)[0]
        headers = event.headers
        request = _Request("", "", None, "", "")
        self._request = request
        # h11 bounds only a head still incomplete; one that arrived whole is checked here.
        size = len(event.method) + len(event.target) + sum(len(k) + len(v) + 4 for k, v in headers)
        if size > self._max_header:
            self._respond_error(_Refusal(431, "request head too large"), out, close=True)
            return
        if path == WEBSOCKET_PATH and _has_token(headers, b"upgrade", b"websocket"):
            self._upgrade(event, path, raw, out)
            return
        try:
            request.route, request.stream = _route(method, path)
            request.client_id = self._authenticate(headers)
            request.encoding = _encoding(headers)
            length = _header(headers, b"content-length")
            if length is not None and length.isdigit() and int(length) > self._max_body:
                raise _Refusal(413, self._too_big())
        except _Refusal as refusal:
            request.refusal = refusal
            if refusal.status == 413 or self._conn.they_are_waiting_for_100_continue:
                # Do not read a body we refuse unread: answer now and close.
                self._respond_error(refusal, out, close=True)
            return
        if self._conn.they_are_waiting_for_100_continue:
            self._send(h11.InformationalResponse(status_code=100, headers=[]), out)

    def _upgrade(
        self, event: h11.Request, path: str, raw: bytearray | None, out: list[Action]
    ) -> None:
        if event.method != b"GET":
            self._request = _Request("", "", _method_not_allowed("GET"), "", "")
            return
        if _header(event.headers, b"transfer-encoding") is not None or _header(
            event.headers, b"content-length"
        ) not in (None, b"0"):
            self._request = _Request(
                "", "", _Refusal(400, "a websocket upgrade has no body"), "", ""
            )
            return
        rest = self._conn.trailing_data[0]
        data = bytes(raw or b"")
        head = data[: len(data) - len(rest)] if rest else data
        self._done = True
        out.append(Upgrade(head, path, tuple((bytes(k), bytes(v)) for k, v in event.headers), rest))

    def _on_data(self, data: bytes, out: list[Action]) -> None:
        request = self._request
        if request is None:
            return
        request.received += len(data)
        if request.received > self._max_body:
            request.body.clear()
            self._respond_error(_Refusal(413, self._too_big()), out, close=True)
            return
        if request.refusal is None:
            request.body += data

    def _on_end(self, out: list[Action]) -> None:
        request, self._request = self._request, None
        if request is None or self._conn.our_state is not h11.SEND_RESPONSE:
            return  # already answered
        try:
            if request.refusal is not None:
                raise request.refusal
            status, reply = self._handle(request)
        except _Refusal as refusal:
            self._respond_error(refusal, out)
            return
        except (RuntimeError, OSError) as exc:
            # The server could not do it (its store failed): the client gets an answer
            # that says so, never a dropped connection. Nothing was applied.
            self._respond_error(_Refusal(503, f"the server could not do it: {exc}"), out)
            return
        self._respond(status, reply, [], out)

    def _protocol_error(self, exc: h11.RemoteProtocolError, out: list[Action]) -> None:
        if self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            status = exc.error_status_hint
            if status == 431:
                message = "request head too large"
            else:
                message = f"malformed HTTP request: {exc}"
            with contextlib.suppress(h11.LocalProtocolError):
                self._respond_error(_Refusal(status, message), out, close=True)
        self._close(out)

    # --- the routes ------------------------------------------------------------------------

    def _handle(self, request: _Request) -> tuple[int, Any]:
        api, stream = self._api, request.stream
        if request.route == "schema":
            schema = api.schema(stream)
            if schema is None:
                raise _Refusal(404, f"stream {stream!r} has no schema")
            return 200, schema.json_serialize()
        body = self._json_body(request)
        if request.route == "publish":
            obj = _object(body, "publish body", "payload")
            try:
                api.publish(request.client_id, stream, obj["payload"])
            except SchemaError as exc:
                raise _Refusal(400, str(exc), extra={"field": exc.path}) from None
            except UnknownStream as exc:
                why = exc.args[0] if exc.args and isinstance(exc.args[0], str) else None
                raise _Refusal(404, why or f"no stream {stream!r}") from None
            return 200, {"success": True}
        if request.route == "define":
            obj = dict(_object(body, "define body", "version", "fields"))
            name = obj.setdefault("name", stream)
            if name != stream:
                raise _Refusal(
                    400,
                    f"schema name {name!r} must be the stream's name {stream!r}"
                    if isinstance(name, str)
                    else "schema name must be the stream's name",
                )
            try:
                schema = SchemaDefinition.from_json(obj)
                kept = api.define(request.client_id, stream, schema)
            except ValueError as exc:
                raise _Refusal(400, str(exc)) from None
            return 200, (kept if kept is not None else schema).json_serialize()
        obj = _object(body, "schema-versions-vector body", "schemaNames")
        names = obj["schemaNames"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _Refusal(400, "schemaNames must be a list of strings")
        return 200, {"versionsVector": list(api.versions(names))}

    def _authenticate(self, headers: _Headers) -> str:
        refused = _Refusal(
            401, "missing or invalid credentials (Basic auth)", [(b"www-authenticate", b"Basic")]
        )
        values = [v for k, v in headers if k == b"authorization"]
        if len(values) != 1:
            raise refused
        scheme, _, token = values[0].strip().partition(b" ")
        if scheme.lower() != b"basic":
            raise refused
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise refused from None
        client_id, colon, secret = decoded.partition(":")
        if not colon or not client_id or not self._api.authenticate(client_id, secret):
            raise refused
        return client_id

    def _json_body(self, request: _Request) -> Any:
        raw = bytes(request.body)
        if request.encoding in _ENCODINGS_GZIP and raw:
            raw = self._gunzip(raw)
        if not raw:
            raise _Refusal(400, "the request has no body; expected a JSON object")
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
        except UnicodeDecodeError:
            raise _Refusal(400, "the body is not UTF-8 text") from None
        except RecursionError:
            raise _Refusal(400, "the body's JSON nests too deep") from None
        except ValueError as exc:
            raise _Refusal(400, f"the body is not JSON: {exc}") from None

    def _gunzip(self, raw: bytes) -> bytes:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out = inflater.decompress(raw, self._max_body + 1)
        except zlib.error as exc:
            raise _Refusal(400, f"the body is not valid gzip: {exc}") from None
        if len(out) > self._max_body or inflater.unconsumed_tail:
            raise _Refusal(413, self._too_big(" once decompressed"))
        if not inflater.eof:
            raise _Refusal(400, "the body is not valid gzip: it ends before the gzip stream")
        if inflater.unused_data:
            raise _Refusal(400, "the body has bytes after its gzip stream")
        return out

    def _too_big(self, how: str = "") -> str:
        return f"request body over {self._max_body} bytes{how}"

    # --- replies ---------------------------------------------------------------------------

    def _respond_error(self, refusal: _Refusal, out: list[Action], *, close: bool = False) -> None:
        body = {"error": refusal.message, **refusal.extra}
        self._respond(refusal.status, body, refusal.headers, out, close=close)

    def _respond(
        self,
        status: int,
        reply: Any,
        headers: list[tuple[bytes, bytes]],
        out: list[Action],
        *,
        close: bool = False,
    ) -> None:
        body = json.dumps(reply, separators=(",", ":"), allow_nan=False).encode("utf-8")
        all_headers = [
            *_JSON_HEADERS,
            (b"content-length", str(len(body)).encode("ascii")),
            *headers,
        ]
        if close:
            all_headers.append((b"connection", b"close"))
        self._send(h11.Response(status_code=status, headers=all_headers), out)
        self._send(h11.Data(data=body), out)
        self._send(h11.EndOfMessage(), out)
        if close or self._conn.our_state is h11.MUST_CLOSE:
            self._close(out)

    def _send(self, event: h11.Event, out: list[Action]) -> None:
        data = self._conn.send(event)
        if data:
            out.append(Send(data))

    def _close(self, out: list[Action]) -> None:
        if not self._done:
            self._done = True
            out.append(Close())


# --- helpers ----------------------------------------------------------------------------------


def _route(method: str, path: str) -> tuple[str, str]:
    """(route, stream) for a request, or a 404/405 refusal."""
    parts = path.split("/")
    if path == f"{API_PREFIX}/schema-versions-vector":
        if method != "POST":
            raise _method_not_allowed("POST")
        return "versions", ""
    if len(parts) == 6 and parts[:4] == ["", "api", "v1", "streams"] and parts[4]:
        try:
            stream = unquote(parts[4], errors="strict")
        except UnicodeDecodeError:
            raise _Refusal(400, "the stream name in the path is not UTF-8") from None
        action = parts[5]
        allowed = {"publish": "POST", "define": "POST", "schema": "GET"}.get(action)
        if allowed is not None:
            if method != allowed:
                raise _method_not_allowed(allowed)
            return action, stream
    if path == WEBSOCKET_PATH:
        raise _Refusal(426, "this path takes websocket upgrades only", [(b"upgrade", b"websocket")])
    raise _Refusal(404, f"no such path: {path[:100]}")


def _method_not_allowed(allowed: str) -> _Refusal:
    return _Refusal(
        405, f"method not allowed; this path takes {allowed}", [(b"allow", allowed.encode())]
    )


def _header(headers: _Headers, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return bytes(value)
    return None


def _has_token(headers: _Headers, name: bytes, token: bytes) -> bool:
    return any(
        key == name and token in (t.strip().lower() for t in value.split(b","))
        for key, value in headers
    )


def _encoding(headers: _Headers) -> str:
    codings = [
        t.strip().lower().decode("ascii", "replace")
        for key, value in headers
        if key == b"content-encoding"
        for t in value.split(b",")
    ]
    codings = [c for c in codings if c not in _ENCODINGS_NONE]
    if not codings:
        return ""
    if len(codings) == 1 and codings[0] in _ENCODINGS_GZIP:
        return "gzip"
    raise _Refusal(
        415, f"unsupported Content-Encoding {', '.join(codings)[:100]}; use gzip or none"
    )


def _object(body: Any, what: str, *required: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Refusal(400, f"the {what} must be a JSON object with {', '.join(required)}")
    for key in required:
        if key not in body:
            raise _Refusal(400, f"the {what} has no {key!r}")
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
