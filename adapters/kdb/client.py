"""The kdb Insights Service Gateway's streaming client: snaps, subscriptions and
subsnaps over a supervised websocket.

:class:`GatewayClient` is a Link (see :mod:`.link`) with a pinned router actor as its
consumer. ``snap`` blocks for the rows (a pandas DataFrame, columns as sent, or the column
dict). ``subscribe`` returns a :class:`Subscription` whose ``callback(update,
subscription)`` runs in the subscription's own actor. A dropped connection is redialled with
backoff and every subscription is resynced by subsnap: its new snapshot reaches the callback
as the first update after the resync, with ``subscription.resynced`` True, so that a
subscriber keeping the rows by key is whole again. A refused token (HTTP 401) ends the
client for good (FAILED), never a redial storm. The token is never in reprs, logs or errors.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Hashable
from types import TracebackType
from typing import Any, Literal, Self

import structlog
from actorwire.actors import Actor, ActorSystem, Address, Backoff, Mailbox, PinnedDispatcher
from actorwire.actors.callbacks import user_callback
from actorwire.actors.link import Link, LinkState
from actorwire.actors.tls import client_context
from actorwire.actors.twins import await_future, twin

from . import qipc
from .link import DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_REQUEST_DEADLINE, GatewayAdapter, SnapCall
from .protocol import (
    JSON,
    GatewayError,
    Subscribed,
    SubscriptionError,
    SubTopic,
    Table,
    Unsubscribed,
    Update,
)

__all__ = ["TOKEN_ENV", "GatewayClient", "GatewayError", "ReturnType", "Subscription"]

log = structlog.get_logger("actorwire.kdb")

TOKEN_ENV = "KDB_INSIGHTS_TOKEN"
"""The environment variable the token is read from when none is given."""

ReturnType = Literal["pd", "dict"]
_RETURN_TYPES = ("pd", "dict")


def _convert(data: Table, return_type: ReturnType) -> Any:
    """``data`` as the caller asked for it: a DataFrame (columns as sent) or the dict."""
    if return_type == "dict":
        return data
    import pandas as pd  # noqa: PLC0415 - pandas loads only when a DataFrame is asked for

    return pd.DataFrame({col: list(values) for col, values in data.items()}, columns=list(data))


def _return_type(value: object) -> ReturnType:
    if value not in _RETURN_TYPES:
        raise ValueError(f"kdb: return_type must be 'pd' or 'dict', got {value!r}")
    return value  # type: ignore[return-value]


class Subscription:
    """One subscription: ``callback(update, subscription)`` runs in its own actor, in
    order. ``resynced`` is True while the callback handles the first update after a
    reconnect's resync (the new snapshot, whole). Counters: ``updates`` (callback calls),
    ``resyncs``, ``errors`` (callback calls that raised), ``gateway_errors``."""

    def __init__(
        self,
        client: GatewayClient,
        key: int,
        topic: str,
        sub_topic: SubTopic | None,
        return_type: ReturnType,
        with_snapshot: bool,
    ) -> None:
        self._client = client
        self.key = key
        self.topic = topic
        self.sub_topic = sub_topic
        self.return_type: ReturnType = return_type
        self.with_snapshot = with_snapshot
        self.confirmed = threading.Event()
        self.snapshot: Table | None = None
        """The first subsnap's rows (None for a subscribe)."""
        self.error: BaseException | None = None
        """Why it ended with an error (the gateway refused it, the client failed)."""
        self.ended = False
        self.resynced = False
        self.updates = 0
        self.resyncs = 0
        self.errors = 0
        self.gateway_errors = 0
        self.last_gateway_error: GatewayError | None = None
        """The latest error the gateway sent on this live subscription."""
        self.address: Address | None = None

    def __repr__(self) -> str:
        state = "ended" if self.ended else "live"
        return (
            f"<Subscription {self.topic!r} sub_topic={self.sub_topic!r} {state} "
            f"updates={self.updates} resyncs={self.resyncs}>"
        )

    def unsubscribe(self) -> None:
        """End the subscription (idempotent)."""
        self._finish(None)

    # -- on the router's thread ----------------------------------------------------------

    def _on_event(self, item: Any) -> None:
        kind = type(item)
        if kind is Update:
            self._tell((item.data, False))
        elif kind is Subscribed:
            if item.resync:
                self.resyncs += 1
                log.info("subscription resynced", topic=self.topic, resyncs=self.resyncs)
                if item.snapshot is not None:
                    self._tell((item.snapshot, True))
            else:
                self.snapshot = item.snapshot
            self.confirmed.set()
        elif kind is SubscriptionError:
            if item.ended:
                self._finish(item.error)
            else:
                self.gateway_errors += 1
                self.last_gateway_error = item.error
                log.warning(
                    "gateway error on a subscription", topic=self.topic, error=str(item.error)
                )
                self._client._gateway_error(item.error, self)
        elif kind is Unsubscribed:
            self._finish(None)

    def _tell(self, message: tuple[Table, bool]) -> None:
        address = self.address
        if address is not None and not self.ended:
            address.tell(message)

    def _finish(self, error: BaseException | None) -> None:
        if self.ended:
            return
        self.ended = True
        self.error = error
        self._client._forget(self)
        self.confirmed.set()
        address, self.address = self.address, None
        if address is not None:
            with contextlib.suppress(Exception):  # the actor may be gone with its system
                address.stop(timeout=0)


class _CallbackActor(Actor):
    def __init__(self, sub: Subscription, callback: Callable[..., Any]) -> None:
        super().__init__()
        self.sub = sub
        self.callback = callback

    def on_receive(self, message: Any) -> None:
        sub = self.sub
        data, resynced = message
        sub.resynced = resynced
        sub.updates += 1
        try:
            self.callback(_convert(data, sub.return_type), sub)
        except Exception:
            sub.errors += 1
            self.log.exception("subscription callback raised", topic=sub.topic)


class _Router(Actor):
    """The link's consumer: hands each event to its subscription, in order."""

    def __init__(self, subs: dict[Hashable, Subscription]) -> None:
        super().__init__()
        self.subs = subs
        self.late = 0

    def on_receive(self, message: Any) -> None:
        sub = self.subs.get(message.key)
        if sub is None:
            self.late += 1  # its subscription was ended meanwhile
            return
        sub._on_event(message)


class GatewayClient:
    """A supervised client of the gateway's streaming websocket (see the module's docstring).

    ``url`` is ``ws://host:port/path`` or ``wss://...`` (trusting ``ca_file``, the system's
    CAs when None); ``token`` (None: the ``KDB_INSIGHTS_TOKEN`` environment variable, else no
    token). ``open()`` (or ``with``) connects; it raises
    PermissionError when the gateway refuses the token, ConnectionError when it cannot be
    reached within ``connect_timeout``. Redials use ``backoff`` (``max_attempts`` None: for
    ever); a subscribe or unsubscribe the gateway leaves unanswered for ``request_deadline``
    seconds while it answers pings starts the connection again (and resyncs);
    ``state_listener(state, reason)`` hears every link state change;
    ``error_listener(error, subscription)`` hears each :class:`GatewayError` the gateway
    sends on a live subscription (it stays live; the error is also logged and counted in
    ``subscription.gateway_errors``).

    Every blocking call has an awaitable twin: ``aopen``, ``asnap``, ``asubscribe``,
    ``asubsnap``, ``aunsubscribe``, ``aclose``, and ``async with``.
    """

    _keys = itertools.count(1)

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        protocol: str = "json",
        heartbeat_interval: float = 5.0,
        heartbeat_deadline: float = 15.0,
        backoff: Backoff | None = None,
        max_attempts: int | None = None,
        state_listener: Callable[[LinkState, str], Any] | None = None,
        error_listener: Callable[[GatewayError, Subscription], Any] | None = None,
        ca_file: str | None = None,
        connect_timeout: float = 10.0,
        request_deadline: float = DEFAULT_REQUEST_DEADLINE,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        system: ActorSystem | None = None,
    ) -> None:
        if protocol not in ("json", "qipc"):
            raise ValueError(f"kdb: protocol must be 'json' or 'qipc', got {protocol!r}")
        if protocol == "qipc":
            if not qipc.available():
                raise ImportError(f"kdb: protocol='qipc': {qipc.missing_reason()}")
            qipc.load()  # here, not on the I/O loop at the first message
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise ValueError(f"kdb: url must be a ws:// or wss:// URL, got {url!r}")
        self.url = url
        self._token = token if token is not None else os.environ.get(TOKEN_ENV)
        self.protocol = protocol
        self.connect_timeout = connect_timeout
        self._request_deadline = request_deadline
        self._heartbeat = (heartbeat_interval, heartbeat_deadline)
        self._backoff = backoff
        self._max_attempts = max_attempts
        self._listener = state_listener
        self._error_listener = error_listener
        self._gateway_errors = 0
        self._ca_file = ca_file
        self._max_message_size = max_message_size
        self._system_arg = system
        self._system: ActorSystem | None = None
        self._own = False
        self.adapter: GatewayAdapter | None = None
        self._link: Link | None = None
        self._router: Address | None = None
        self._subs: dict[Hashable, Subscription] = {}
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        state = self.state.value if self.state is not None else "new"
        return f"<GatewayClient {self.url} {state} subscriptions={len(self._subs)}>"

    # -- opening and closing ------------------------------------------------------------

    def open(self) -> Self:
        """Connect (blocking); see the class docstring."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this GatewayClient is closed; make a new one")
            if self._link is not None:
                return self
            own = self._system_arg is None
            system = self._system_arg or ActorSystem(name="kdb")
            tag = f"{id(self):x}"
            try:
                ssl = client_context(self._ca_file) if self.url.startswith("wss://") else None
                adapter = GatewayAdapter(
                    self.url,
                    token=self._token,
                    ssl_context=ssl,
                    max_message_size=self._max_message_size,
                    codec=qipc.QIPC if self.protocol == "qipc" else JSON,
                    request_deadline=self._request_deadline,
                )
                router = system.spawn(
                    _Router,
                    self._subs,
                    name=f"kdb-router-{tag}",
                    mailbox=Mailbox(capacity=10_000, put_timeout=None),
                    dispatcher=PinnedDispatcher(),
                )
                interval, deadline = self._heartbeat
                link = Link(
                    system,
                    adapter,
                    router,
                    name=f"kdb-{tag}",
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
            self._system, self.adapter, self._router, self._link = system, adapter, router, link
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
            if "401" in why or "403" in why:
                return PermissionError(f"kdb gateway refused the token: {why}")
            return ConnectionError(f"kdb gateway connection failed: {why}")

        link.wait_connected(self.connect_timeout, peer=self.url, failed=failed)

    def __enter__(self) -> Self:
        return self.open()

    async def __aenter__(self) -> Self:
        return await self.aopen()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self, timeout: float = 5.0) -> None:
        """End every subscription, close the link and stop the client's actors; idempotent."""
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
            if self._own:
                system.shutdown(timeout=timeout)
            elif router is not None:
                router.stop(timeout=timeout)

    # -- state -------------------------------------------------------------------------

    @property
    def state(self) -> LinkState | None:
        """The link's state: CONNECTING, CONNECTED, RECONNECTING, FAILED, CLOSED."""
        return self._link.state if self._link is not None else None

    @property
    def link(self) -> Link | None:
        """The supervised link (None before ``open()`` and after ``close()``)."""
        return self._link

    def _on_state(self, state: LinkState, why: str) -> None:
        if state is LinkState.FAILED:
            error = ConnectionError(f"kdb gateway connection failed: {why}")
            for sub in list(self._subs.values()):
                sub._finish(error)
        if self._listener is not None:
            self._listener(state, why)

    def _gateway_error(self, error: GatewayError, sub: Subscription) -> None:
        self._gateway_errors += 1
        listener = self._error_listener
        if listener is None:
            return
        try:
            listener(error, sub)
        except Exception:  # a listener's bug must not stop the router
            log.exception("error_listener raised", topic=sub.topic)

    def stats(self) -> dict[str, Any]:
        """Counters: the link's (``connects``, ``frames_in``, ...), the protocol state's
        ``connections``, ``late`` and ``next_id``, ``subscriptions`` (live) and
        ``gateway_errors`` (errors on live subscriptions)."""
        out: dict[str, Any] = {"state": self.state.value if self.state else None}
        link, adapter = self._link, self.adapter
        if link is not None:
            out.update(link.stats.as_dict())
        if adapter is not None:
            s = adapter.state
            out.update(connections=s.connections, late=s.late, next_id=s.next_id)
        out["subscriptions"] = len(self._subs)
        out["gateway_errors"] = self._gateway_errors
        return out

    # -- requests ----------------------------------------------------------------------

    def _live_link(self) -> Link:
        link = self._link
        if link is None:
            raise RuntimeError("kdb: open the GatewayClient first (open() or with)")
        return link

    def snap(
        self,
        topic: str,
        sub_topic: SubTopic | None = None,
        return_type: ReturnType = "pd",
        timeout: float = 10.0,
    ) -> Any:
        """The rows of ``topic`` that pass ``sub_topic``: a DataFrame (``"pd"``) or the
        column dict (``"dict"``). GatewayError when the gateway refuses the request,
        ConnectionError when not connected, TimeoutError after ``timeout`` seconds."""
        rt = _return_type(return_type)
        data = self._live_link().call(SnapCall(topic, sub_topic), timeout=timeout)
        return _convert(data, rt)

    def subscribe(
        self,
        topic: str,
        sub_topic: SubTopic | None = None,
        *,
        callback: Callable[..., Any],
        return_type: ReturnType = "pd",
        timeout: float = 10.0,
    ) -> Subscription:
        """Subscribe to ``topic``'s rows that pass ``sub_topic``; ``callback(update,
        subscription)`` gets each batched update. Blocks until the gateway confirmed:
        GatewayError when it refused, TimeoutError when it did not answer."""
        return self._start(topic, sub_topic, callback, return_type, timeout, False)

    def subsnap(
        self,
        topic: str,
        sub_topic: SubTopic | None = None,
        *,
        callback: Callable[..., Any],
        return_type: ReturnType = "pd",
        timeout: float = 10.0,
    ) -> tuple[Any, Subscription]:
        """As ``subscribe``, with the rows as they stand first: (snapshot, subscription);
        no update falls between the two."""
        sub = self._start(topic, sub_topic, callback, return_type, timeout, True)
        return _convert(sub.snapshot or {}, sub.return_type), sub

    def _start(
        self,
        topic: str,
        sub_topic: SubTopic | None,
        callback: Callable[..., Any],
        return_type: ReturnType,
        timeout: float,
        with_snapshot: bool,
    ) -> Subscription:
        rt = _return_type(return_type)
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"kdb: subscribe: topic must be a non-empty str, got {topic!r}")
        link, adapter, system = self._live_link(), self.adapter, self._system
        assert adapter is not None and system is not None
        fn = user_callback(callback, "subscribe callback", system.io)
        sub = Subscription(self, next(self._keys), topic, sub_topic, rt, with_snapshot)
        sub.address = system.spawn(
            _CallbackActor, sub, fn, name=f"kdb-sub-{sub.key}", mailbox=Mailbox(capacity=100_000)
        )
        self._subs[sub.key] = sub
        adapter.register(sub.key, topic, sub_topic, with_snapshot)
        link.subscribe(sub.key)
        if not sub.confirmed.wait(timeout):
            sub.unsubscribe()
            raise TimeoutError(f"kdb: subscribe to {topic!r}: no answer within {timeout:g} s")
        if sub.error is not None:
            raise sub.error
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        """End ``subscription`` (as ``subscription.unsubscribe()``)."""
        if not isinstance(subscription, Subscription) or subscription._client is not self:
            raise ValueError(f"kdb: not a subscription of this client: {subscription!r}")
        subscription.unsubscribe()

    async def asnap(
        self,
        topic: str,
        sub_topic: SubTopic | None = None,
        return_type: ReturnType = "pd",
        timeout: float = 10.0,
    ) -> Any:
        """Awaitable form of :meth:`snap` (same arguments, same result); it awaits the
        reply's future on the caller's loop, no thread waits for it."""
        rt = _return_type(return_type)
        future = self._live_link().submit(SnapCall(topic, sub_topic), timeout)
        return _convert(await await_future(future, timeout + 1.0), rt)

    aopen = twin(open)
    aclose = twin(close)
    asubscribe = twin(subscribe)
    asubsnap = twin(subsnap)
    aunsubscribe = twin(unsubscribe)

    def _forget(self, sub: Subscription) -> None:
        if self._subs.pop(sub.key, None) is None:
            return
        link, adapter = self._link, self.adapter
        if adapter is not None:
            adapter.unregister(sub.key)
        if link is not None:
            link.unsubscribe(sub.key)
