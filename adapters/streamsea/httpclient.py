"""A small blocking HTTP/1.1 client for stream-sea's HTTP API, on h11.

It sends what stream-sea-client 0.7.0 sends (PEERS.md 2.3): ``Authorization: Basic
base64(id:secret)``, ``Content-Type`` and ``Accept: application/json``, and with ``gzip=True``
a gzip-compressed compact JSON body under ``Content-Encoding: gzip`` (the header goes on a
body-less GET too, as 0.7.0 does). Replies come back as :class:`HttpResponse`, which reads
like the ``requests.Response`` 0.7.0's ``define_stream`` returned.

Rules:

1. Keep-alive: a connection whose exchange ended cleanly (both sides DONE in h11) goes back
   to an idle list of at most ``max_idle`` connections, shared by threads; the lock guards
   that list only, and each request owns its connection while it runs. An idle connection
   the server has closed (or sent anything on) is dropped when taken.
2. One retry: a connection taken from the idle list that fails with EOF, a reset or a broken
   pipe before any byte of the reply arrived is replayed once on a new connection, whatever
   the method. A server that closes an idle keep-alive connection never read the request, so
   this is the usual case; a server that read a POST, acted on it and died without a byte of
   reply would see it twice. A new connection is never retried, nor a timeout, nor a reply
   that had begun: a POST may have been processed.
3. ``timeout`` bounds the connect (with the TLS handshake), each send and each read:
   TimeoutError naming the method, the URL and the timeout. Other network failures are
   ConnectionError naming ``host:port``; a reply that is not HTTP/1.1 is a ConnectionError,
   a body over ``max_body_bytes`` (as received or once gunzipped; reading stops there) or
   not valid gzip a ValueError. The connection is closed after any of them.
4. ``secure=True`` is TLS with the kit's client context (actors/tls.py: the certificate and
   the hostname are always checked, against ``ca_file`` or the system's CAs); a refused
   certificate is a ConnectionError naming ``host:port``, with the ssl error as its cause.
5. The client secret and the Authorization token never appear in an exception, a repr or a
   log: text that comes from the peer is scrubbed of both before it is quoted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import gzip as gzip_module
import json
import select
import socket
import ssl
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final

import h11
import structlog

from ...actors.errors import ActorwireError
from ...actors.tls import client_context

__all__ = ["NO_BODY", "HttpClient", "HttpError", "HttpResponse"]

log = structlog.get_logger("actorwire.streamsea.http")


class _NoBody(enum.Enum):
    NO_BODY = "NO_BODY"


NO_BODY: Final = _NoBody.NO_BODY
"""``json_body``'s default: the request has no body (``None`` sends JSON ``null``)."""

_RECV_BYTES = 64 << 10
_STATUS_START = b"HTTP/"
_REDACTED = "[redacted]"
_ENCODINGS_GZIP = frozenset({"gzip", "x-gzip"})
_ENCODINGS_NONE = frozenset({"", "identity"})
# Methods that carry a body by nature get Content-Length: 0 when they have none.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class HttpError(ActorwireError, OSError):
    """A reply with a 4xx or 5xx status, from :meth:`HttpResponse.raise_for_status`.

    ``error`` is the server's ``{"error": ...}`` text, None when the reply has none."""

    def __init__(self, status_code: int, reason: str, url: str, error: str | None = None) -> None:
        kind = "Client" if status_code < 500 else "Server"
        message = f"{status_code} {kind} Error: {reason} for url: {url}"
        if error is not None:
            message += f": {error}"
        super().__init__(message)
        self.status_code = status_code
        self.reason = reason
        self.url = url
        self.error = error

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status_code, self.reason, self.url, self.error))


@dataclass(frozen=True, slots=True, repr=False)
class HttpResponse:
    """A reply, read whole: what ``define_stream`` returns to users (0.7.0 returned a
    ``requests.Response``: they read ``.status_code``)."""

    status_code: int
    reason: str
    """The reason phrase sent, or the standard one for the status when none was."""
    headers: dict[str, str]
    """Header names lower-cased; a repeated header's values joined with ``", "``."""
    content: bytes
    """The body, gunzipped when the reply's Content-Encoding is gzip."""
    url: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 400

    @property
    def text(self) -> str:
        """The body as text, in the Content-Type's charset (UTF-8 when it names none)."""
        charset = "utf-8"
        for param in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as strict JSON (no NaN or Infinity); ValueError naming the URL."""
        try:
            return json.loads(self.content, parse_constant=_no_constant)
        except RecursionError:
            raise ValueError(f"the reply from {self.url} nests its JSON too deep") from None
        except ValueError as exc:
            raise ValueError(f"the reply from {self.url} is not JSON: {exc}") from None

    def raise_for_status(self) -> None:
        """Raise :class:`HttpError` for a 4xx or 5xx status."""
        if self.status_code >= 400:
            raise HttpError(self.status_code, self.reason, self.url, _error_text(self.content))

    def __repr__(self) -> str:
        return f"<HttpResponse [{self.status_code}]>"


@dataclass(frozen=True, slots=True)
class _Request:
    """A request ready to send on any connection: h11 events and what to scrub."""

    method: str
    url: str
    head: h11.Request = field(repr=False)  # holds the Authorization header
    body: bytes | None = field(repr=False)
    secrets: tuple[str, ...] = field(repr=False)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, _REDACTED)
        return text


class _Stale(Exception):
    """EOF, reset or broken pipe before any byte of the reply: retried once if pooled."""


class _Connection:
    """One socket and its h11 state, owned by one request at a time."""

    __slots__ = ("h11", "prefix", "received", "reused", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.h11 = h11.Connection(h11.CLIENT)
        self.reused = False
        self.received = 0  # bytes of the current reply
        self.prefix = b""  # its first bytes, to tell HTTP from anything else at once

    def idle_and_open(self) -> bool:
        """False when the server closed the idle connection or sent something on it."""
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return False
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        try:
            return not poller.poll(0)
        except OSError:
            return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class _Body:
    """A reply's body as it arrives: counted, gunzipped when asked, bounded."""

    def __init__(self, request: _Request, limit: int, encoding: str) -> None:
        self._request = request
        self._limit = limit
        self._received = 0
        self._out = bytearray()
        self._inflater = (
            zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if encoding in _ENCODINGS_GZIP else None
        )

    def feed(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self._limit:
            raise self._too_big("")
        if self._inflater is None:
            self._out += data
            return
        try:
            chunk = self._inflater.decompress(data, self._limit - len(self._out) + 1)
        except zlib.error as exc:
            raise self._bad_gzip(str(exc)) from None
        self._out += chunk
        if len(self._out) > self._limit or self._inflater.unconsumed_tail:
            raise self._too_big(" once gunzipped")
        if self._inflater.unused_data:
            raise self._bad_gzip("bytes after the gzip stream")

    def finish(self) -> bytes:
        if self._inflater is not None and self._received and not self._inflater.eof:
            raise self._bad_gzip("it ends before the gzip stream does")
        return bytes(self._out)

    def _too_big(self, how: str) -> ValueError:
        request = self._request
        return ValueError(
            f"the reply to {request.method} {request.url} is over "
            f"max_body_bytes={self._limit} bytes{how}; reading stopped"
        )

    def _bad_gzip(self, problem: str) -> ValueError:
        request = self._request
        return ValueError(
            f"the reply to {request.method} {request.url} says gzip but is not: {problem}"
        )


class HttpClient:
    """A keep-alive HTTP/1.1 client for one server (the rules are in this module's
    docstring). Thread-safe; :meth:`arequest` is the awaitable form."""

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        secure: bool = False,
        ca_file: str | None = None,
        timeout: float = 10.0,
        max_body_bytes: int = 16 << 20,
        max_idle: int = 4,
    ) -> None:
        if not isinstance(host, str) or not host.strip("[]"):
            raise ValueError(f"host must be a host name or address, got {host!r}")
        if port is not None and (
            not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536
        ):
            raise ValueError(f"port must be None or an int from 1 to 65535, got {port!r}")
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if not isinstance(max_body_bytes, int) or max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be a positive int, got {max_body_bytes!r}")
        if not isinstance(max_idle, int) or max_idle < 0:
            raise ValueError(f"max_idle must be an int >= 0, got {max_idle!r}")
        self._host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        self._port = port if port is not None else (443 if secure else 80)
        # Built now so that a bad CA file fails here, naming the file, not at the first call.
        self._tls = client_context(ca_file) if secure else None
        self._timeout = float(timeout)
        self._max_body = max_body_bytes
        self._max_idle = max_idle
        shown = f"[{self._host}]" if ":" in self._host else self._host
        self._hostport = f"{shown}:{self._port}"
        self._authority = shown if port is None else self._hostport
        self._base_url = f"{'https' if secure else 'http'}://{self._authority}"
        self._lock = threading.Lock()
        self._idle: list[_Connection] = []
        self._closed = False

    @property
    def base_url(self) -> str:
        """``http(s)://host[:port]``, the port only when one was given."""
        return self._base_url

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = NO_BODY,
        auth: tuple[str, str] | None = None,
        gzip: bool = True,
    ) -> HttpResponse:
        """Send one request and read its reply whole. ``path`` starts with ``/``;
        ``json_body`` is sent as compact strict JSON; ``auth`` is ``(client_id, secret)``
        for Basic auth; ``gzip`` compresses the body and sends ``Content-Encoding: gzip``."""
        request = self._prepare(method, path, json_body, auth, gzip)
        conn = self._checkout()
        if conn is not None:
            try:
                return self._exchange(conn, request)
            except _Stale:
                log.debug(
                    "a kept-alive connection closed before replying: sending on a new one",
                    method=request.method,
                    url=request.url,
                )
        conn = self._connect(request)
        try:
            return self._exchange(conn, request)
        except _Stale as stale:
            raise ConnectionError(
                f"{request.method} {request.url}: {self._hostport} closed the connection "
                f"before replying ({stale})"
            ) from stale.__cause__

    async def arequest(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = NO_BODY,
        auth: tuple[str, str] | None = None,
        gzip: bool = True,
    ) -> HttpResponse:
        """:meth:`request` in a worker thread. A cancelled call's request still completes."""
        return await asyncio.to_thread(
            self.request, method, path, json_body=json_body, auth=auth, gzip=gzip
        )

    def close(self) -> None:
        """Close the idle connections; requests after this raise RuntimeError, and those
        running close their connection when they end."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"idle={len(self._idle)}"
        return f"<HttpClient {self._base_url} {state}>"

    # --- requests ---------------------------------------------------------------------------

    def _prepare(
        self, method: str, path: str, json_body: Any, auth: tuple[str, str] | None, gzip: bool
    ) -> _Request:
        if not isinstance(method, str) or not method or not set(method.upper()) <= _TOKEN_CHARS:
            raise ValueError(f"method must be an HTTP method such as 'GET', got {method!r}")
        method = method.upper()
        if (
            not isinstance(path, str)
            or not path.startswith("/")
            or not path.isascii()
            or not path.isprintable()
            or " " in path
        ):
            raise ValueError(
                f"path must be an ASCII path starting with '/' without spaces, got {path!r}"
            )
        url = self._base_url + path
        headers: list[tuple[str, str]] = [
            ("Host", self._authority),
            ("User-Agent", "actorwire-streamsea"),
            ("Accept", "application/json"),
            ("Accept-Encoding", "gzip"),
            ("Content-Type", "application/json"),
        ]
        if gzip:
            headers.append(("Content-Encoding", "gzip"))
        secrets: tuple[str, ...] = ()
        if auth is not None:
            token, secrets = _basic(auth)
            headers.append(("Authorization", f"Basic {token}"))
        body: bytes | None = None
        if json_body is not NO_BODY:
            try:
                text = json.dumps(json_body, separators=(",", ":"), allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{method} {url}: json_body is not strict JSON: {exc}") from None
            body = text.encode("utf-8")
            if gzip:
                body = gzip_module.compress(body, mtime=0)
        if body is not None or method in _BODY_METHODS:
            headers.append(("Content-Length", str(len(body or b""))))
        head = h11.Request(method=method, target=path, headers=headers)
        return _Request(method, url, head, body, secrets)

    def _exchange(self, conn: _Connection, request: _Request) -> HttpResponse:
        """Send ``request`` on ``conn`` and read the reply; the connection goes back to the
        idle list when the exchange left it reusable, and is closed otherwise."""
        try:
            response = self._send_and_read(conn, request)
        except BaseException:
            conn.close()
            raise
        h = conn.h11
        if h.our_state is h11.DONE and h.their_state is h11.DONE:
            h.start_next_cycle()
            self._checkin(conn)
        else:
            conn.close()
        return response

    def _send_and_read(self, conn: _Connection, request: _Request) -> HttpResponse:
        h = conn.h11
        conn.received, conn.prefix = 0, b""
        data = h.send(request.head) or b""
        if request.body:
            data += h.send(h11.Data(data=request.body)) or b""
        data += h.send(h11.EndOfMessage()) or b""
        try:
            conn.sock.sendall(data)
        except TimeoutError:
            raise TimeoutError(
                f"{request.method} {request.url}: could not send the request within "
                f"{self._timeout:g} s (timeout)"
            ) from None
        except OSError as exc:
            # The server may have answered and closed before taking the whole request (a
            # 413, say): read what it sent before calling it a failure.
            try:
                return self._read(conn, request)
            except (_Stale, ConnectionError):
                pass
            if conn.reused:
                raise _Stale(f"sending failed: {_os_text(exc)}") from exc
            raise ConnectionError(
                f"{request.method} {request.url}: sending to {self._hostport} failed: "
                f"{_os_text(exc)}"
            ) from exc
        return self._read(conn, request)

    def _read(self, conn: _Connection, request: _Request) -> HttpResponse:
        h = conn.h11
        head: h11.Response | None = None
        body: _Body | None = None
        while True:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as exc:
                raise ConnectionError(
                    f"{request.method} {request.url}: {self._hostport} sent a broken or "
                    f"non-HTTP/1.1 reply: {request.scrub(str(exc))[:300]}"
                ) from None
            if event is h11.NEED_DATA:
                h.receive_data(self._recv(conn, request))
            elif isinstance(event, h11.Response):
                head = event
                body = self._start_body(event, request)
            elif isinstance(event, h11.Data) and body is not None:
                body.feed(event.data)
            elif isinstance(event, h11.EndOfMessage) and head is not None and body is not None:
                return HttpResponse(
                    status_code=head.status_code,
                    reason=_reason(head),
                    headers=_headers(head.headers),
                    content=body.finish(),
                    url=request.url,
                )
            elif isinstance(event, h11.ConnectionClosed):  # pragma: no cover - h11 raises first
                raise ConnectionError(f"{request.method} {request.url}: connection closed")
            # InformationalResponse (1xx): wait for the final reply.

    def _recv(self, conn: _Connection, request: _Request) -> bytes:
        try:
            data = conn.sock.recv(_RECV_BYTES)
        except TimeoutError:
            raise TimeoutError(
                f"{request.method} {request.url}: no reply within {self._timeout:g} s (timeout)"
            ) from None
        except OSError as exc:
            if not conn.received:
                raise _Stale(_os_text(exc)) from exc
            raise ConnectionError(
                f"{request.method} {request.url}: reading from {self._hostport} failed: "
                f"{_os_text(exc)}"
            ) from exc
        if not data and not conn.received:
            raise _Stale("end of stream")
        conn.received += len(data)
        if len(conn.prefix) < len(_STATUS_START):
            # h11 reads a head only once it is whole: a banner line from another protocol
            # would wait for the timeout. Blank lines before a status line are tolerated.
            conn.prefix = (conn.prefix + data).lstrip(b"\r\n")[: len(_STATUS_START)]
            if not _STATUS_START.startswith(conn.prefix):
                raise ConnectionError(
                    f"{request.method} {request.url}: {self._hostport} sent a broken or "
                    f"non-HTTP/1.1 reply: it starts with {request.scrub(repr(conn.prefix))}"
                )
        return data

    def _start_body(self, head: h11.Response, request: _Request) -> _Body:
        headers = _headers(head.headers)
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self._max_body:
            raise ValueError(
                f"the reply to {request.method} {request.url} has Content-Length {length}, "
                f"over max_body_bytes={self._max_body}; not read"
            )
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding not in _ENCODINGS_GZIP | _ENCODINGS_NONE:
            raise ValueError(
                f"the reply to {request.method} {request.url} has Content-Encoding "
                f"{request.scrub(encoding)[:100]!r}; expected gzip or none"
            )
        return _Body(request, self._max_body, encoding)

    # --- connections ------------------------------------------------------------------------

    def _checkout(self) -> _Connection | None:
        """An idle connection still open, or None; closed ones are dropped on the way."""
        while True:
            with self._lock:
                if self._closed:
                    raise RuntimeError(f"the HttpClient for {self._base_url} is closed")
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if conn.idle_and_open():
                conn.reused = True
                return conn
            conn.close()

    def _checkin(self, conn: _Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def _connect(self, request: _Request) -> _Connection:
        where = f"{request.method} {request.url}"
        try:
            sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{where}: could not connect to {self._hostport} within {self._timeout:g} s "
                "(timeout)"
            ) from None
        except OSError as exc:
            raise ConnectionError(
                f"{where}: cannot connect to {self._hostport}: {_os_text(exc)}"
            ) from exc
        if self._tls is not None:
            try:
                sock = self._tls.wrap_socket(sock, server_hostname=self._host)
            except TimeoutError:
                sock.close()
                raise TimeoutError(
                    f"{where}: no TLS handshake with {self._hostport} within "
                    f"{self._timeout:g} s (timeout)"
                ) from None
            except ssl.SSLCertVerificationError as exc:
                sock.close()
                raise ConnectionError(
                    f"{where}: TLS handshake with {self._hostport} failed, its certificate "
                    f"was refused: {exc.verify_message}"
                ) from exc
            except OSError as exc:
                sock.close()
                raise ConnectionError(
                    f"{where}: TLS handshake with {self._hostport} failed: {_os_text(exc)}"
                ) from exc
        return _Connection(sock)


def _basic(auth: Any) -> tuple[str, tuple[str, ...]]:
    """The Basic token for ``(client_id, secret)`` and the strings to keep out of errors."""
    if (
        not isinstance(auth, tuple)
        or len(auth) != 2
        or not all(isinstance(part, str) for part in auth)
    ):
        # The value is never shown: it holds a secret.
        raise TypeError(
            f"auth must be a (client_id, client_secret) pair of str, got {type(auth).__name__}"
        )
    client_id, secret = auth
    if not client_id or ":" in client_id:
        raise ValueError(
            f"client_id must be non-empty and without ':' (Basic auth splits there), "
            f"got {client_id!r}"
        )
    token = base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")
    return token, tuple(s for s in (token, secret) if s)


def _reason(head: h11.Response) -> str:
    """The reply's reason phrase, or the standard one when it sent none (h11 sends none)."""
    reason = head.reason.decode("latin-1")
    if not reason:
        with contextlib.suppress(ValueError):
            reason = HTTPStatus(head.status_code).phrase
    return reason


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _error_text(content: bytes) -> str | None:
    """The ``error`` of a ``{"error": ...}`` body, None for any other body."""
    try:
        obj = json.loads(content, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    error = obj.get("error") if isinstance(obj, dict) else None
    return error if isinstance(error, str) else None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _os_text(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
