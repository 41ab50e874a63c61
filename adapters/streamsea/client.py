"""The stream-sea client: stream-sea-client 0.7.0's names, working, plus supervision.

HTTP calls, keyword-only as in 0.7.0 (``C`` = ``remote_host, remote_port=None,
secure=False, client_id, client_secret``, plus actorwire's ``ca_file=None`` and
``timeout=10.0``)::

    publish(*, C, stream, payload) -> None            # returns once the server accepted it
    define_stream(*, C, stream, schema) -> HttpResponse   # read .status_code, as in 0.7.0
    describe_stream(*, C, stream) -> SchemaDefinition | None
    get_schema_versions_vector(*, C, streams) -> list[int | None]
    get_schema_version(*, remote_host, remote_port=None, secure=False, client_secret,
                       stream, client_id=None) -> int | None

Where actorwire differs on purpose: ``publish`` waits for the server's answer and raises
on a refusal (ValueError naming the field for a schema violation or an undefined stream,
CredentialsError for wrong credentials); 0.7.0 fired and forgot and only logged errors.
``describe_stream`` and ``get_schema_versions_vector`` raise CredentialsError on wrong
credentials instead of answering "no schema". ``get_schema_version`` takes the
``client_id`` that 0.7.0 read from a module global by mistake (that global, ``client_id``
in this module, still works).

The websocket: :class:`StreamSeaConnection` (``await conn`` or ``async with``, as in 0.7.0,
and ``with``/``open()`` for blocking code) is a supervised Link. ``await
conn.subscribe(stream)`` gives a :class:`SubscriptionIterator` of payloads;
``conn.subscribe(stream, callback=fn)`` returns a :class:`Subscription` whose callback
runs in its own actor. A dropped connection is redialled with backoff, authenticated
again, and every subscription resumes after the last message it got (the embedded
server numbers messages; against a server that does not, each resubscription that may
have missed messages is counted in ``gaps`` and logged). A refused authenticate ends the
connection for good (FAILED), never a redial storm.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, Self, overload
from urllib.parse import quote

import structlog
from actorwire.actors import Actor, ActorSystem, Address, Backoff, Mailbox, PinnedDispatcher
from actorwire.actors.callbacks import user_callback
from actorwire.actors.link import Link, LinkState
from actorwire.actors.tls import client_context

from .httpclient import HttpClient, HttpResponse
from .link import DEFAULT_MAX_MESSAGE_SIZE, StreamSeaAdapter
from .protocol import (
    CredentialsError,
    Delivered,
    ProtocolError,
    Refused,
    Subscribed,
    Unsubscribed,
)
from .schema import SchemaDefinition

__all__ = [
    "StreamSeaConnection",
    "Subscription",
    "SubscriptionIterator",
    "define_stream",
    "describe_stream",
    "get_schema_version",
    "get_schema_versions_vector",
    "publish",
]

log = structlog.get_logger("actorwire.streamsea")

client_id: str | None = None
"""The client id ``get_schema_version`` uses when not given one (0.7.0's workaround)."""

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# -- HTTP ------------------------------------------------------------------------------------

_pool_lock = threading.Lock()
_pools: dict[tuple[str, int | None, bool, str | None, float], HttpClient] = {}


def _http(
    remote_host: str,
    remote_port: int | str | None,
    secure: bool,
    ca_file: str | None,
    timeout: float,
) -> HttpClient:
    """A kept-alive client per server (calls reuse its connections)."""
    if not isinstance(remote_host, str) or not remote_host:
        raise TypeError(f"remote_host must be a non-empty str, got {remote_host!r}")
    port = _port(remote_port)
    key = (remote_host, port, bool(secure), ca_file, float(timeout))
    with _pool_lock:
        client = _pools.get(key)
        if client is None:
            client = _pools[key] = HttpClient(
                remote_host, port, secure=bool(secure), ca_file=ca_file, timeout=timeout
            )
        return client


def _port(remote_port: int | str | None) -> int | None:
    if remote_port is None:
        return None
    try:
        port = int(remote_port)
    except (TypeError, ValueError):
        raise TypeError(
            f"remote_port must be an int, a str of one, or None, got {remote_port!r}"
        ) from None
    if not 0 < port < 65536:
        raise ValueError(f"remote_port must be in 1..65535, got {remote_port!r}")
    return port


def _stream_path(stream: str, what: str) -> str:
    if not isinstance(stream, str) or not stream:
        raise TypeError(f"{what}: stream must be a non-empty str, got {stream!r}")
    return f"/api/v1/streams/{quote(stream, safe='')}"


def _error_text(response: HttpResponse) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return response.reason


def _check(response: HttpResponse, what: str, client: str) -> None:
    """Raise for a refusal: CredentialsError (401), ValueError (400, 404, 413), else the
    response's own error."""
    status = response.status_code
    if status == 200:
        return
    if status in (401, 403):
        raise CredentialsError(f"{what}: the server refused the credentials of client {client!r}")
    if status in (400, 404, 413, 415):
        raise ValueError(f"{what}: refused ({status}): {_error_text(response)}")
    response.raise_for_status()
    raise ConnectionError(f"{what}: unexpected answer {status} {response.reason}")


def publish(
    *,
    remote_host: str,
    remote_port: int | str | None = None,
    secure: bool = False,
    client_id: str,
    client_secret: str,
    stream: str,
    payload: Any,
    ca_file: str | None = None,
    timeout: float = 10.0,
) -> None:
    """Publish ``payload`` to ``stream``; returns once the server has accepted it.

    Raises ValueError when the server refuses the message (it breaks the stream's schema:
    the text names the field; the stream is not defined), CredentialsError for wrong
    credentials, ConnectionError or TimeoutError when the server cannot be reached.
    """
    path = _stream_path(stream, "publish") + "/publish"
    http = _http(remote_host, remote_port, secure, ca_file, timeout)
    response = http.request(
        "POST", path, json_body={"payload": payload}, auth=(client_id, client_secret)
    )
    _check(response, f"publish to {stream!r}", client_id)


def define_stream(
    *,
    remote_host: str,
    remote_port: int | str | None = None,
    secure: bool = False,
    client_id: str,
    client_secret: str,
    stream: str,
    schema: SchemaDefinition,
    ca_file: str | None = None,
    timeout: float = 10.0,
) -> HttpResponse:
    """Write ``stream``'s schema; returns the server's response (``.status_code`` 200 when
    defined; a schema of the same name and version already defined is kept as it is)."""
    if not isinstance(schema, SchemaDefinition):
        raise TypeError(f"define_stream: schema must be a SchemaDefinition, got {schema!r}")
    body = schema.json_serialize()
    path = _stream_path(stream, "define_stream") + "/define"
    http = _http(remote_host, remote_port, secure, ca_file, timeout)
    return http.request("POST", path, json_body=body, auth=(client_id, client_secret))


def describe_stream(
    *,
    remote_host: str,
    remote_port: int | str | None = None,
    secure: bool = False,
    client_id: str,
    client_secret: str,
    stream: str,
    ca_file: str | None = None,
    timeout: float = 10.0,
) -> SchemaDefinition | None:
    """``stream``'s schema, None when it has none; CredentialsError for wrong credentials."""
    path = _stream_path(stream, "describe_stream") + "/schema"
    http = _http(remote_host, remote_port, secure, ca_file, timeout)
    response = http.request("GET", path, auth=(client_id, client_secret))
    if response.status_code in (401, 403):
        _check(response, f"describe_stream {stream!r}", client_id)
    if response.status_code != 200:
        return None
    return SchemaDefinition.from_json(response.json())


def get_schema_versions_vector(
    *,
    remote_host: str,
    remote_port: int | str | None = None,
    secure: bool = False,
    client_id: str,
    client_secret: str,
    streams: Sequence[str],
    ca_file: str | None = None,
    timeout: float = 10.0,
) -> list[int | None]:
    """The schema version of each stream named, None for one that does not exist."""
    if isinstance(streams, str) or not all(isinstance(s, str) for s in streams):
        raise TypeError(
            f"get_schema_versions_vector: streams must be a list of str, got {streams!r}"
        )
    http = _http(remote_host, remote_port, secure, ca_file, timeout)
    response = http.request(
        "POST",
        "/api/v1/schema-versions-vector",
        json_body={"schemaNames": list(streams)},
        auth=(client_id, client_secret),
    )
    _check(response, "get_schema_versions_vector", client_id)
    body = response.json()
    vector = body.get("versionsVector") if isinstance(body, dict) else None
    if not isinstance(vector, list) or len(vector) != len(streams):
        raise ProtocolError(f"get_schema_versions_vector: unexpected answer {body!r:.200}")
    return vector


def get_schema_version(
    *,
    remote_host: str,
    remote_port: int | str | None = None,
    secure: bool = False,
    client_secret: str,
    stream: str,
    client_id: str | None = None,
    ca_file: str | None = None,
    timeout: float = 10.0,
) -> int | None:
    """``stream``'s schema version, None when it has no schema. ``client_id`` defaults to
    this module's ``client_id`` global (which 0.7.0 read by mistake)."""
    cid = client_id if client_id is not None else globals()["client_id"]
    if cid is None:
        raise TypeError(
            "get_schema_version() needs client_id=...: every request is authenticated with "
            "the client id and secret (0.7.0's signature lacks it)"
        )
    versions = get_schema_versions_vector(
        remote_host=remote_host,
        remote_port=remote_port,
        secure=secure,
        client_id=cid,
        client_secret=client_secret,
        streams=[stream],
        ca_file=ca_file,
        timeout=timeout,
    )
    return versions[0]


# -- subscriptions ----------------------------------------------------------------------------


class _Sub:
    """What every subscription shares: its key, stream, group and status."""

    def __init__(
        self, conn: StreamSeaConnection, key: int, stream: str, group_id: str | None
    ) -> None:
        self._conn = conn
        self.key = key
        self.stream = stream
        self.group_id = group_id
        """The consumer group (a fresh uuid for fan-out; None for the client's default group)."""
        self.exclusive = False
        """Alone in its group: the group is a fresh one this client made (fan-out)."""
        self.confirmed = threading.Event()
        self.error: BaseException | None = None
        """Why the subscription ended with an error (refused by the server, the link failed)."""
        self.ended = False
        self.received = 0
        """Messages delivered to it."""
        self.gaps = 0
        """Resubscriptions after which it may have missed messages (counted and logged)."""
        self.resumes = 0
        """Resubscriptions after a reconnect."""

    def _on_event(self, item: Any) -> None:
        """On the router's thread: a status change (Subscribed, Refused, Unsubscribed)."""
        if type(item) is Subscribed:
            if item.after_seq is not None or self.confirmed.is_set():
                self.resumes += 1
            if item.missed is not None:
                self.gaps += 1
                log.warning(
                    "resubscribed: messages may have been missed",
                    stream=self.stream,
                    reason=item.missed,
                    gaps=self.gaps,
                )
            self.confirmed.set()
        elif type(item) is Refused:
            self._finish(ProtocolError(f"subscribe to {self.stream!r} refused: {item.reason}"))
        elif type(item) is Unsubscribed:
            self._finish(None)

    def _finish(self, error: BaseException | None) -> None:
        if self.ended:
            return
        self.ended = True
        self.error = error
        # Out of the link too, so that a refused subscription is not made again after the
        # next reconnect.
        self._conn._unsubscribe(self)
        self.confirmed.set()
        self._ended()

    def _ended(self) -> None:
        """Hook: the subscription is over."""

    def _push(self, payloads: list[Any]) -> None:
        raise NotImplementedError

    def unsubscribe(self) -> None:
        """End the subscription (idempotent)."""
        self._finish(None)

    @property
    def last_seq(self) -> int | None:
        """The seq of the newest message delivered to this subscription's stream and group."""
        return self._conn._adapter_state_last(self.stream, self.group_id)


class SubscriptionIterator(_Sub):
    """An async iterator of one subscription's payloads (as in 0.7.0), buffered up to
    ``max_buffered`` messages: when the iterator falls that far behind, the connection stops
    reading until it catches up (nothing is dropped). Ends when the subscription or the
    connection is closed; raises when the server refused it or the connection failed."""

    def __init__(
        self,
        conn: StreamSeaConnection,
        key: int,
        stream: str,
        group_id: str | None,
        loop: asyncio.AbstractEventLoop,
        max_buffered: int,
    ) -> None:
        super().__init__(conn, key, stream, group_id)
        self._loop = loop
        self._max = max_buffered
        self._buf: deque[Any] = deque()
        self._cond = threading.Condition()
        self._waiting: asyncio.Future[None] | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        while True:
            with self._cond:
                if self._buf:
                    item = self._buf.popleft()
                    if len(self._buf) < self._max:
                        self._cond.notify()
                    return item
                if self.ended:
                    if self.error is not None:
                        raise self.error
                    raise StopAsyncIteration
                waiting = self._waiting = self._loop.create_future()
            await waiting

    async def aclose(self) -> None:
        """Unsubscribe and end the iteration."""
        self.unsubscribe()

    def _wake(self) -> None:
        """Under ``_cond``: wake a waiting ``__anext__``."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            with contextlib.suppress(RuntimeError):  # the user's loop is closed
                self._loop.call_soon_threadsafe(_resolve, waiting)

    def _push(self, payloads: list[Any]) -> None:
        with self._cond:
            for payload in payloads:
                while len(self._buf) >= self._max and not self.ended:
                    self._cond.wait(1.0)  # backpressure: the router (and the link) wait
                if self.ended:
                    return
                self._buf.append(payload)
                self.received += 1
            self._wake()

    def _ended(self) -> None:
        with self._cond:
            self._cond.notify_all()
            self._wake()


class Subscription(_Sub):
    """A subscription whose ``callback(payload)`` runs in an actor of its own (a slow
    callback holds back only this subscription, and the connection once its mailbox is
    full; an exception in it is logged and counted in ``errors``)."""

    def __init__(
        self, conn: StreamSeaConnection, key: int, stream: str, group_id: str | None
    ) -> None:
        super().__init__(conn, key, stream, group_id)
        self.errors = 0
        """Callback calls that raised."""
        self.address: Address | None = None

    def _push(self, payloads: list[Any]) -> None:
        address = self.address
        if address is not None and not self.ended:
            self.received += len(payloads)
            address.tell_many(payloads)

    def _ended(self) -> None:
        address, self.address = self.address, None
        if address is not None:
            with contextlib.suppress(Exception):
                address.stop(timeout=0)

    def __repr__(self) -> str:
        state = "ended" if self.ended else "live"
        return (
            f"<Subscription {self.stream!r} group={self.group_id} {state} received={self.received}>"
        )


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _CallbackActor(Actor):
    def __init__(self, sub: Subscription, callback: Callable[[Any], Any]) -> None:
        super().__init__()
        self.sub = sub
        self.callback = callback

    def on_receive(self, message: Any) -> None:
        self.on_batch([message])

    def on_batch(self, messages: list[Any]) -> None:
        callback = self.callback
        for payload in messages:
            try:
                callback(payload)
            except Exception:
                self.sub.errors += 1
                self.log.exception("subscription callback raised", stream=self.sub.stream)


class _Router(Actor):
    """The link's consumer: hands each delivery to its subscription, in order."""

    def __init__(self, subs: dict[int, _Sub]) -> None:
        super().__init__()
        self.subs = subs
        self.late = 0

    def on_receive(self, message: Any) -> None:
        self.on_batch([message])

    def on_batch(self, messages: list[Any]) -> None:
        subs = self.subs
        runs: dict[int, list[Any]] = {}
        for item in messages:
            key = item.key
            sub = subs.get(key)
            if sub is None:
                self.late += 1  # its subscription was ended meanwhile
                continue
            if type(item) is Delivered:
                run = runs.get(key)
                if run is None:
                    runs[key] = [item.payload]
                else:
                    run.append(item.payload)
                continue
            run = runs.pop(key, None)
            if run:
                sub._push(run)
            sub._on_event(item)
        for key, run in runs.items():
            sub = subs.get(key)
            if sub is not None:
                sub._push(run)


# -- the connection ---------------------------------------------------------------------------


class StreamSeaConnection:
    """A supervised stream-sea websocket (see the module's docstring).

    ``await conn``, ``async with conn`` or (blocking) ``conn.open()`` / ``with conn``
    connect and authenticate: CredentialsError when the server refuses the credentials,
    ConnectionError when it cannot be reached within ``connect_timeout``. Once open, a
    dropped connection is redialled (``backoff``; ``max_attempts`` None: for ever) and
    every subscription resumes. ``jwt`` (a string, or a function returning one, called for
    each connection) authenticates instead of ``client_secret``. ``secure=True`` speaks
    wss, trusting ``ca_file`` (the system's CAs when None).
    """

    _keys = itertools.count(1)

    def __init__(
        self,
        *,
        remote_host: str,
        remote_port: int | str | None = None,
        secure: bool = False,
        client_id: str,
        client_secret: str | None = None,
        jwt: str | Callable[[], str] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        ca_file: str | None = None,
        connect_timeout: float = 10.0,
        heartbeat_interval: float = 5.0,
        heartbeat_deadline: float = 15.0,
        backoff: Backoff | None = None,
        max_attempts: int | None = None,
        max_buffered: int = 10_000,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        state_listener: Callable[[LinkState, str], Any] | None = None,
        system: ActorSystem | None = None,
    ) -> None:
        if not isinstance(client_id, str) or not client_id:
            raise TypeError(f"client_id must be a non-empty str, got {client_id!r}")
        if (client_secret is None) == (jwt is None):
            raise TypeError("StreamSeaConnection needs exactly one of client_secret or jwt")
        if isinstance(max_buffered, bool) or not isinstance(max_buffered, int) or max_buffered < 1:
            raise ValueError(f"max_buffered must be an int >= 1, got {max_buffered!r}")
        port = _port(remote_port)
        self.remote_host = remote_host
        self.remote_port = port if port is not None else (443 if secure else 80)
        self.secure = bool(secure)
        self.client_id = client_id
        self._secret = client_secret
        self._jwt = jwt
        self._loop = loop  # accepted for 0.7.0's signature; the running loop is used
        self._ca_file = ca_file
        self.connect_timeout = connect_timeout
        self._heartbeat = (heartbeat_interval, heartbeat_deadline)
        self._backoff = backoff
        self._max_attempts = max_attempts
        self._max_buffered = max_buffered
        self._max_message_size = max_message_size
        self._listener = state_listener
        self._system_arg = system
        self._system: ActorSystem | None = None
        self._adapter: StreamSeaAdapter | None = None
        self._link: Link | None = None
        self._router: Address | None = None
        self._subs: dict[int, _Sub] = {}
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        scheme = "wss" if self.secure else "ws"
        state = self.state.value if self.state is not None else "new"
        return (
            f"<StreamSeaConnection {scheme}://{self.remote_host}:{self.remote_port} "
            f"client_id={self.client_id!r} {state} subscriptions={len(self._subs)}>"
        )

    # -- opening and closing ------------------------------------------------------------

    def open(self) -> Self:
        """Connect and authenticate (blocking); see the class docstring."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this StreamSeaConnection is closed; make a new one")
            if self._link is not None:
                return self
            own = self._system_arg is None
            system = self._system_arg or ActorSystem(name="streamsea")
            tag = f"{id(self):x}"
            try:
                ssl = client_context(self._ca_file) if self.secure else None
                adapter = StreamSeaAdapter(
                    self.remote_host,
                    self.remote_port,
                    client_id=self.client_id,
                    client_secret=self._secret,
                    jwt=self._jwt,
                    ssl_context=ssl,
                    max_message_size=self._max_message_size,
                )
                # Pinned, with a bounded mailbox: a full iterator holds the router, the
                # router's mailbox fills, and the link stops reading (nothing is dropped).
                router = system.spawn(
                    _Router,
                    self._subs,
                    name=f"streamsea-router-{tag}",
                    mailbox=Mailbox(capacity=1000, put_timeout=None),
                    dispatcher=PinnedDispatcher(),
                )
                interval, deadline = self._heartbeat
                link = Link(
                    system,
                    adapter,
                    router,
                    name=f"streamsea-{tag}",
                    heartbeat_interval=interval,
                    heartbeat_deadline=deadline,
                    backoff=self._backoff or Backoff(min=0.1, max=5.0, factor=2.0, jitter=0.2),
                    max_attempts=self._max_attempts,
                    state_listener=self._on_state,
                    login_timeout=self.connect_timeout,
                )
            except BaseException:
                if own:
                    system.shutdown(timeout=5)
                raise
            self._system, self._adapter, self._router, self._link = system, adapter, router, link
            self._own = own
            link.start()
        try:
            self._wait_connected(link)
        except BaseException:
            self.close()
            raise
        return self

    def _wait_connected(self, link: Link) -> None:
        def failed(why: str) -> BaseException:
            if "authentication failed" in why:
                return CredentialsError(f"Authentication unsuccessful: {why}")
            return ConnectionError(f"stream-sea connection failed: {why}")

        link.wait_connected(self.connect_timeout, peer=self._url(), failed=failed)

    def _url(self) -> str:
        scheme = "wss" if self.secure else "ws"
        return f"{scheme}://{self.remote_host}:{self.remote_port}/api/v1/streams"

    async def _aopen(self) -> Self:
        await asyncio.to_thread(self.open)
        return self

    def __await__(self) -> Any:
        return self._aopen().__await__()

    async def __aenter__(self) -> Self:
        return await self._aopen()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self, timeout: float = 5.0) -> None:
        """End every subscription (iterators stop), close the link and stop the
        connection's actors; idempotent."""
        with self._lock:
            self._closed = True
            link, self._link = self._link, None
            subs = list(self._subs.values())
        for sub in subs:
            sub._finish(None)
        if link is not None:
            link.close(timeout)
        system, router = self._system, self._router
        self._system = self._router = None
        if system is not None:
            if getattr(self, "_own", False):
                system.shutdown(timeout=timeout)
            elif router is not None:
                router.stop(timeout=timeout)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    # -- state -------------------------------------------------------------------------

    @property
    def state(self) -> LinkState | None:
        """The link's state: CONNECTING, CONNECTED, RECONNECTING, FAILED, CLOSED."""
        return self._link.state if self._link is not None else None

    def _on_state(self, state: LinkState, why: str) -> None:
        if state is LinkState.FAILED:
            error: BaseException = ConnectionError(f"stream-sea connection failed: {why}")
            if "authentication failed" in why:
                error = CredentialsError(f"Authentication unsuccessful: {why}")
            for sub in list(self._subs.values()):
                sub._finish(error)
        if self._listener is not None:
            self._listener(state, why)

    def stats(self) -> dict[str, Any]:
        """Counters: the link's (``connects``, ``frames_in``, ...), the protocol state's
        (``duplicates`` dropped, ``unknown_gaps``, ``redelivered``, ``missing_seq``), and
        ``subscriptions``."""
        out: dict[str, Any] = {"state": self.state.value if self.state else None}
        link, adapter = self._link, self._adapter
        if link is not None:
            out.update(link.stats.as_dict())
        if adapter is not None:
            s = adapter.state
            out.update(
                connections=s.connections,
                duplicates=s.duplicates,
                unknown_gaps=s.unknown_gaps,
                redelivered=s.redelivered,
                missing_seq=s.missing_seq,
                epoch_changes=s.epoch_changes,
            )
        out["subscriptions"] = len(self._subs)
        return out

    def _adapter_state_last(self, stream: str, group_id: str | None) -> int | None:
        adapter = self._adapter
        return None if adapter is None else adapter.state.last_seq(stream, group_id)

    # -- subscribing -------------------------------------------------------------------

    @overload
    def subscribe(
        self,
        stream: str,
        *,
        group_id: str | None = None,
        fanout: bool = True,
        callback: None = None,
        timeout: float = 10.0,
    ) -> Coroutine[Any, Any, SubscriptionIterator]: ...

    @overload
    def subscribe(
        self,
        stream: str,
        *,
        group_id: str | None = None,
        fanout: bool = True,
        callback: Callable[[Any], Any],
        timeout: float = 10.0,
    ) -> Subscription: ...

    def subscribe(
        self,
        stream: str,
        *,
        group_id: str | None = None,
        fanout: bool = True,
        callback: Callable[[Any], Any] | None = None,
        timeout: float = 10.0,
    ) -> Coroutine[Any, Any, SubscriptionIterator] | Subscription:
        """Subscribe to ``stream``.

        Without ``callback`` (as in 0.7.0) it is a coroutine: ``await conn.subscribe(s)``
        gives a :class:`SubscriptionIterator`. With ``callback`` it blocks until the server
        confirmed and returns a :class:`Subscription` whose ``callback(payload)`` runs in
        its own actor (an ``async def`` callback runs on the I/O loop, in order).

        Consumer groups: by default each subscription gets a fresh group (every message);
        subscriptions given one ``group_id`` (a UUID) compete for its messages; with
        ``fanout=False`` and no ``group_id`` it joins the client id's default group (its
        instances compete). ProtocolError when the server refuses it, TimeoutError when
        it does not answer within ``timeout`` (the link is up but silent).
        """
        group = _group(group_id, fanout)
        exclusive = group_id is None and group is not None  # a fresh fan-out group
        if callback is None:
            return self._asubscribe(stream, group, timeout, exclusive)
        if self._system is None:
            raise RuntimeError("open the connection before subscribing")
        fn = user_callback(callback, "subscribe callback", self._system.io)
        sub = Subscription(self, next(self._keys), _stream(stream), group)
        sub.exclusive = exclusive
        sub.address = self._system.spawn(
            _CallbackActor,
            sub,
            fn,
            name=f"streamsea-sub-{sub.key}",
            mailbox=Mailbox(capacity=self._max_buffered, put_timeout=None),
        )
        self._start(sub, timeout)
        return sub

    async def _asubscribe(
        self, stream: str, group: str | None, timeout: float, exclusive: bool
    ) -> SubscriptionIterator:
        loop = asyncio.get_running_loop()
        sub = SubscriptionIterator(
            self, next(self._keys), _stream(stream), group, loop, self._max_buffered
        )
        sub.exclusive = exclusive
        await asyncio.to_thread(self._start, sub, timeout)
        return sub

    def _start(self, sub: _Sub, timeout: float) -> None:
        link, adapter = self._link, self._adapter
        if link is None or adapter is None:
            sub._finish(None)
            raise RuntimeError("open the connection before subscribing")
        self._subs[sub.key] = sub
        adapter.register(sub.key, sub.stream, sub.group_id, exclusive=sub.exclusive)
        link.subscribe(sub.key)
        if link.state is not LinkState.CONNECTED:
            return  # subscribed as soon as the link is up again
        if not sub.confirmed.wait(timeout):
            sub.unsubscribe()
            raise TimeoutError(f"subscribe to {sub.stream!r}: no answer within {timeout:g} s")
        if sub.error is not None:
            raise sub.error

    def unsubscribe(self, subscription: _Sub) -> None:
        """End ``subscription`` (as ``subscription.unsubscribe()``)."""
        if not isinstance(subscription, _Sub) or subscription._conn is not self:
            raise ValueError(f"not a subscription of this connection: {subscription!r}")
        subscription.unsubscribe()

    def _unsubscribe(self, sub: _Sub) -> None:
        if self._subs.pop(sub.key, None) is None:
            return  # never started, or ended already
        link, adapter = self._link, self._adapter
        if adapter is not None:
            adapter.unregister(sub.key)
        if link is not None:
            link.unsubscribe(sub.key)


def _stream(stream: Any) -> str:
    if not isinstance(stream, str) or not stream:
        raise TypeError(f"subscribe: stream must be a non-empty str, got {stream!r}")
    return stream


def _group(group_id: Any, fanout: bool) -> str | None:
    if group_id is None:
        return str(uuid.uuid4()) if fanout else None
    if not isinstance(group_id, str) or not _UUID.fullmatch(group_id):
        raise ValueError(
            f"subscribe: group_id must be a UUID (8-4-4-4-12 hex digits), got {group_id!r}"
        )
    return group_id
