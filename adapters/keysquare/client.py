"""KeySession: the KeySquare client API over actorwire's gRPC service.

The session is a thin blocking facade over actors: a Link (transport, heartbeat,
reconnect and sequence actors), a router that fans records out to subscriptions, one
actor per subscription (its callbacks run there, so a slow or failing callback stalls
nothing else), and a publisher actor that batches publishes and resends the unacknowledged
ones after a reconnect. Every blocking method has an awaitable twin (``apublish``, ...).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import difflib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal

import structlog
from actorwire.actors import ActorSystem, Address, Backoff
from actorwire.actors.callbacks import plain_callback, user_callback
from actorwire.actors.link import Link, LinkState
from actorwire.actors.statecell import StateCell
from actorwire.actors.tls import client_context
from actorwire.actors.twins import twin

from . import keysquare_pb2 as pb
from .link import KeySquareAdapter, SchemaCall, SnapshotCall, SubSpec, pb_topic
from .model import (
    ERROR_STATES,
    Gap,
    KeyHeader,
    KeyMessage,
    KeySessionState,
    PublishTimeout,
    SubscriptionType,
)
from .protocol import (
    GROUP_WILDCARD,
    ID_WILDCARD,
    SOURCE_WILDCARD,
    check_fields,
    decode_data,
    encode_data,
    field_checker,
)
from .publisher import _LinkDown, _LinkUp, _Pub, _Publisher
from .subscriptions import Subscription, _Add, _LateSnapshot, _Remove, _Router, _SubscriptionActor

__all__ = [
    "GROUP_WILDCARD",
    "ID_WILDCARD",
    "SOURCE_WILDCARD",
    "KeySession",
    "Subscription",
]

log = structlog.get_logger("actorwire.keysquare")


def _default_voided(message: KeyMessage) -> None:
    log.info("voided message discarded", message=repr(message))


def _default_gap(gap: Gap) -> None:
    """Without a gap_callback the router's warning log is the report."""


@dataclass(frozen=True)
class _TypeInfo:
    schema: str
    name: str
    fields: dict[str, str]
    can_read: bool
    can_publish: bool
    check: Callable[[Mapping[str, Any]], None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "check", field_checker(self.name, self.fields))


# -- the session ---------------------------------------------------------------------------


class KeySession:
    """A session with a KeySquare-style platform: snapshot, subscribe, publish and more.

    Signatures, defaults and exceptions follow the KeySession API. Differences: the
    keyword-only ``system`` (share an ActorSystem), ``heartbeat_interval``,
    ``heartbeat_deadline`` and ``backoff`` tune the link; ``stop()`` is blocking (use
    ``astop()`` to await it); records carry ``epoch`` and ``seq`` in their header.
    """

    unlock_experimental_features: ClassVar[bool] = False

    def __init__(
        self,
        application_name: str,
        api_key: str,
        url: str,
        auto_start: bool = True,
        session_state_listener: Callable[[KeySessionState, str], None] | None = None,
        timeout: int = 10,
        auto_refresh_schema: bool = True,
        exit_on_state_error: bool = True,
        *,
        system: ActorSystem | None = None,
        heartbeat_interval: float = 0.5,
        heartbeat_deadline: float = 5.0,
        backoff: Backoff | None = None,
        max_pending: int = 100_000,
        tls_ca_file: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(application_name, str) or not application_name:
            raise ValueError(
                f"application_name must be a non-empty string, got {application_name!r}"
            )
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty string")
        host, sep, port = str(url).rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"url must be 'hostname:port', got {url!r}")
        if session_state_listener is not None:
            plain_callback(session_state_listener, "session_state_listener")
        self.application_name = application_name
        self.url = url
        self.host, self.port = host, int(port)
        self.timeout = timeout
        self.auto_refresh_schema = auto_refresh_schema
        self.exit_on_state_error = exit_on_state_error
        self._own_system = system is None
        self._system_arg = system
        self._heartbeat = (heartbeat_interval, heartbeat_deadline)
        self._backoff = backoff or Backoff(min=0.1, max=5.0, factor=2.0, jitter=0.2)
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be an integer >= 1, got {max_pending!r}")
        self._max_pending = max_pending
        self._cell: StateCell[KeySessionState] = StateCell(
            KeySessionState.START, "created", name=f"keysession-{application_name}"
        )
        if session_state_listener is not None:
            self._cell.add_listener(session_state_listener)
        self._cond = threading.Condition()  # guards the schema
        self._schema: dict[tuple[str, str], _TypeInfo] = {}
        self._schema_version = 0
        self._register: pb.RegisterReply | None = None
        self._max_record_bytes = 0
        self._subs: dict[int, Subscription] = {}
        self._stopped = False
        self._started = False
        self._system: ActorSystem | None = None
        self._link: Link | None = None
        self._router: Address | None = None
        self._publisher: Address | None = None
        self._adapter = KeySquareAdapter(
            url,
            application_name,
            api_key,
            float(timeout),
            on_progress=self._set_state,
            on_registered=self._on_registered,
            on_schema=self._on_schema,
            root_certificates=_ca_certificates(tls_ca_file),
        )
        self._log = log.bind(application=application_name, url=url)
        if auto_start:
            self.start()

    def __repr__(self) -> str:
        return (
            f"KeySession(application_name={self.application_name!r}, url={self.url!r}, "
            f"state={self._state.name})"
        )

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Connect, register, download the schema; block until CONNECTED or timeout.

        Raises RuntimeError if that fails (when ``exit_on_state_error``).
        """
        if self._stopped:
            raise RuntimeError("this KeySession was stopped; create a new one")
        if self._started:
            return
        self._started = True
        system = self._system_arg or ActorSystem(f"keysession-{self.application_name}")
        self._system = system
        name = f"keysession-{self.application_name}-{id(self):x}"
        self._router = system.spawn(_Router, self, self._max_pending, name=f"{name}.router")
        interval, deadline = self._heartbeat
        link = Link(
            system,
            self._adapter,
            self._router,
            name=name,
            heartbeat_interval=interval,
            heartbeat_deadline=deadline,
            backoff=self._backoff,
            state_listener=self._on_link_state,
        )
        self._link = link
        self._publisher = system.spawn(_Publisher, link, name=f"{name}.publisher")
        link.start()
        # Returns once the listener has heard of the state (the cell wakes waiters then).
        self._cell.wait_for(
            lambda state: state is KeySessionState.CONNECTED or state in ERROR_STATES,
            self.timeout,
        )
        state, message = self._cell.state, self._cell.reason
        if state is not KeySessionState.CONNECTED:
            reason = (
                f"KeySession {self.application_name!r} failed to start: {state.name}: {message}"
                if state in ERROR_STATES
                else f"KeySession {self.application_name!r} did not connect to {self.url} "
                f"within {self.timeout}s (state {state.name}: {message})"
            )
            if self.exit_on_state_error:
                self.stop()
                raise RuntimeError(reason)
            self._log.error("start failed", reason=reason)

    def stop(self) -> None:
        """Unsubscribe everything, disconnect and release every actor and thread."""
        if self._stopped:
            return
        self._stopped = True
        for sub in list(self._subs.values()):
            sub.active = False
        self._subs.clear()
        if self._link is not None:
            self._link.close(timeout=self.timeout)
        if self._system is not None:
            if self._own_system:
                self._system.shutdown(timeout=self.timeout)
            else:
                for addr in (self._router, self._publisher):
                    if addr is not None:
                        addr.stop(timeout=self.timeout)
        self._set_state(KeySessionState.DISCONNECTED, "stopped")

    def stop_sync(self) -> None:
        """Stop synchronously (the same as ``stop``, kept for API compatibility)."""
        self.stop()

    def status(self) -> KeySessionState:
        return self._state

    def __enter__(self) -> KeySession:
        if not self._started:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __del__(self) -> None:
        if getattr(self, "_started", False) and not getattr(self, "_stopped", True):
            with contextlib.suppress(Exception):  # never raise from a finalizer
                self.stop()

    # -- state and schema (called from the link's actors and the I/O loop) ---------------

    @property
    def _state(self) -> KeySessionState:
        return self._cell.state

    def _set_state(self, state: KeySessionState, message: str) -> None:
        if state is self._cell.state and message == self._cell.reason:
            return
        self._log.info("session state", state=state.name, message=message)
        self._cell.set(state, message, force=True)

    def _on_link_state(self, state: LinkState, reason: str) -> None:
        publisher = self._publisher
        if state is LinkState.CONNECTED:
            self._set_state(KeySessionState.CONNECTED, reason)
            if publisher is not None:
                publisher.tell(_LinkUp())
        elif state in (LinkState.RECONNECTING, LinkState.CLOSED):
            if publisher is not None:
                publisher.tell(_LinkDown())
            if not self._stopped or state is LinkState.RECONNECTING:
                self._set_state(KeySessionState.DISCONNECTED, reason)
        elif state is LinkState.FAILED:
            if publisher is not None:
                publisher.tell(_LinkDown())
            if self._state is not KeySessionState.REGISTRATION_FAILED:
                self._set_state(KeySessionState.ERROR, reason)

    def _on_registered(self, reply: pb.RegisterReply) -> None:
        self._register = reply
        self._max_record_bytes = reply.max_record_bytes  # 0: the platform did not say

    def _on_schema(self, reply: pb.SchemaReply) -> None:
        schema = {
            (t.schema, t.name): _TypeInfo(
                t.schema, t.name, {f.name: f.type for f in t.fields}, t.can_read, t.can_publish
            )
            for t in reply.types
        }
        with self._cond:
            changed = reply.version != self._schema_version
            self._schema = schema
            self._schema_version = reply.version
        if changed:
            self._log.info("schema", version=reply.version, types=len(schema))

    def _resolve(self, data_type: str, schema: str = "") -> _TypeInfo:
        if not isinstance(data_type, str) or not data_type:
            raise ValueError(f"data_type must be a non-empty string, got {data_type!r}")
        types = self._schema
        if schema:
            info = types.get((schema, data_type))
            if info is not None:
                return info
        else:
            found = [info for (_, name), info in types.items() if name == data_type]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                schemas = ", ".join(sorted(i.schema for i in found))
                raise ValueError(
                    f"data type {data_type!r} is defined in several schemas "
                    f"({schemas}); pass schema="
                )
        names = sorted({name for _, name in types} | {f"{s}.{n}" for s, n in types})
        close = difflib.get_close_matches(data_type, names, n=3, cutoff=0.5)
        where = f" in schema {schema!r}" if schema else ""
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise ValueError(
            f"no schema definition for data type {data_type!r}{where} on the platform{hint}"
        )

    def _allowed(self, data_type: str, schema: str, verb: str) -> _TypeInfo:
        """The type to read, publish or edit, once started and if the application may."""
        self._check_started()
        assert self._system is not None
        if self._system.io.in_loop_thread():
            raise RuntimeError(
                "a blocking KeySession call from the I/O loop (an async def callback) would "
                "block the loop that answers it: await the a* form instead (asnapshot, ...)"
            )
        info = self._resolve(data_type, schema)
        if not (info.can_read if verb == "read" else info.can_publish):
            raise PermissionError(
                f"application {self.application_name!r} may not {verb} {info.schema}.{info.name}"
            )
        return info

    def _check_started(self) -> None:
        if not self._started or self._stopped or self._system is None:
            raise RuntimeError("the KeySession is not started: call start() first")

    # -- plumbing used by the actors ---------------------------------------------------

    def _link_subscribe(self, spec: SubSpec) -> None:
        if self._link is not None:
            self._link.subscribe(spec)

    def _link_unsubscribe(self, spec: SubSpec) -> None:
        if self._link is not None:
            self._link.unsubscribe(spec)

    def _call(self, request: Any, timeout: float) -> concurrent.futures.Future[Any]:
        if self._link is None:
            raise RuntimeError("the KeySession has no connection yet")
        return self._link.submit(request, timeout)

    def _late_snapshot(self, sub: Subscription, ready: concurrent.futures.Future[None]) -> None:
        """Cached records for a subscription that joins a live platform subscription."""
        fut = self._call(SnapshotCall(pb_topic(sub.topic)), float(self.timeout))

        def done(f: concurrent.futures.Future[list[pb.Record]]) -> None:
            if sub.address is None:
                return
            if f.exception() is not None:
                if not ready.done():
                    ready.set_exception(RuntimeError(f"snapshot failed: {f.exception()!r}"))
                return
            assert self._router is not None
            self._router.tell(_LateSnapshot(sub, f.result()))

        fut.add_done_callback(done)

    def _schema_changed(self, version: int) -> None:
        """The platform announced schema ``version``: download it (from the router)."""
        if not self.auto_refresh_schema or self._link is None:
            return

        def done(f: concurrent.futures.Future[pb.SchemaReply]) -> None:
            error = f.exception()
            if error is not None:
                self._log.warning("schema refresh failed", version=version, error=repr(error))
            else:
                self._on_schema(f.result())

        self._call(SchemaCall(), float(self.timeout)).add_done_callback(done)

    # -- data operations ---------------------------------------------------------------

    def snapshot(
        self,
        data_type: str,
        schema: str = "",
        source: str = "",
        group: str = "",
        id: str = "",
        return_type: Literal["pd", "list"] = "pd",
        timeout: float = 10,
    ) -> Any:
        """The platform's cached records of a type, as a DataFrame or a list of KeyMessage."""
        self._check_started()
        if return_type not in ("pd", "list"):
            raise ValueError(f"return_type must be 'pd' or 'list', got {return_type!r}")
        info = self._allowed(data_type, schema, "read")
        topic = pb.Topic(schema=info.schema, data_type=info.name, source=source, group=group, id=id)
        try:
            records = self._call(SnapshotCall(topic), timeout).result(timeout + 1)
        except TimeoutError:
            raise TimeoutError(f"snapshot of {data_type!r} took longer than {timeout}s") from None
        except ConnectionError as exc:
            raise RuntimeError(f"snapshot failed: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - mapped to the documented exceptions
            raise _rpc_error(exc, f"snapshot of {data_type!r}") from None
        if return_type == "list":
            return [KeyMessage.from_record(r) for r in records]
        return _to_frame(records, info)

    def subscribe(
        self,
        data_type: str,
        callback: Callable[[KeyMessage], None],
        voided_callback: Callable[[KeyMessage], None] = _default_voided,
        schema: str = "",
        source: str = SOURCE_WILDCARD,
        group: str = GROUP_WILDCARD,
        id: str = ID_WILDCARD,
        subscription_type: SubscriptionType = SubscriptionType.CACHED_AND_LIVE,
        timeout: float = 10,
        *,
        gap_callback: Callable[[Gap], None] = _default_gap,
    ) -> Subscription:
        """Call ``callback`` with each record, in its own actor; blocks until the cached
        records (CACHED_AND_LIVE) have been delivered."""
        self._check_started()
        if callback is None or not callable(callback):
            raise ValueError(f"subscribe needs a callback function, got {callback!r}")
        if not callable(voided_callback):
            raise ValueError(f"voided_callback must be callable, got {voided_callback!r}")
        if not callable(gap_callback):
            raise ValueError(f"gap_callback must be callable, got {gap_callback!r}")
        if not isinstance(subscription_type, SubscriptionType):
            raise ValueError(
                f"subscription_type must be a SubscriptionType, got {subscription_type!r}"
            )
        info = self._allowed(data_type, schema, "read")
        sub = Subscription(info.name, info.schema, source, group, id, subscription_type)
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        assert self._system is not None and self._router is not None
        sub.address = self._system.spawn(
            _SubscriptionActor,
            sub,
            user_callback(callback, "subscribe callback", self._system.io),
            user_callback(voided_callback, "voided_callback", self._system.io),
            ready,
            self._router,
            user_callback(gap_callback, "gap_callback", self._system.io),
            name=f"{self._link.name if self._link else 'ks'}.sub-{sub.subscription_id}",
        )
        self._subs[sub.subscription_id] = sub
        self._router.ask(_Add(sub, ready), timeout=timeout)
        try:
            ready.result(timeout)
        except concurrent.futures.TimeoutError:
            self._log.warning(
                "subscribe: cached records not complete in time",
                data_type=data_type,
                timeout=timeout,
            )
            raise TimeoutError(
                f"subscribe to {data_type!r}: the cached records did not arrive within {timeout}s"
            ) from None
        except Exception:
            with contextlib.suppress(Exception):  # the router forgets it (refcounts, parked)
                self._router.ask(_Remove(sub), timeout=timeout)
            self._discard(sub)
            raise
        return sub

    def unsubscribe(self, unsub: Subscription) -> None:
        """Remove a subscription's callbacks at once; the platform unsubscribe goes out only
        for the last subscription on its topic. RuntimeError if it is not active here."""
        self._check_started()
        if not isinstance(unsub, Subscription) or unsub.subscription_id not in self._subs:
            raise RuntimeError(f"unknown subscription {unsub!r}: not active in this session")
        unsub.active = False
        assert self._router is not None
        self._router.ask(_Remove(unsub), timeout=self.timeout)
        self._discard(unsub)

    def _discard(self, sub: Subscription) -> None:
        sub.active = False
        self._subs.pop(sub.subscription_id, None)
        if sub.address is not None and self._system is not None:
            sub.address.stop(timeout=self.timeout)

    def _record(
        self,
        info: _TypeInfo,
        id: str,
        data: dict[str, Any],
        source: str,
        group: str,
        key_header: KeyHeader | None,
    ) -> pb.Record:
        if not isinstance(id, str) or not id:
            raise ValueError(f"id must be a non-empty string, got {id!r}")
        if not isinstance(data, dict):
            raise ValueError(f"data must be a dict, got {type(data).__name__}")
        info.check(data)
        # Filled in place: cheaper than building a KeyHeader and copying it in.
        record = pb.Record(data=encode_data(data))
        header = record.header
        header.schema = info.schema
        header.data_type = info.name
        header.source = source or self.application_name
        header.group = group
        header.id = id
        if key_header is not None:
            if not isinstance(key_header, KeyHeader):
                raise TypeError(f"key_header must be a KeyHeader, got {key_header!r}")
            for name in ("source", "group", "id"):
                value = getattr(key_header, name)
                if value:
                    setattr(header, name, value)
            header.voided = key_header.voided
        limit = self._max_record_bytes
        if limit:
            size = record.ByteSize()
            if size > limit:
                raise ValueError(
                    f"record {info.schema}.{info.name} id={header.id!r} is {size} bytes, over "
                    f"the platform's limit of {limit} bytes: it was not sent"
                )
        return record

    def _submit(
        self, pub: _Pub, what: str, timeout: float, raise_error_on_failure: bool
    ) -> dict[str, Any]:
        assert self._publisher is not None
        self._publisher.tell(pub)
        try:
            ack = pub.future.result(timeout)
        except concurrent.futures.TimeoutError:
            pid = _retry_id(pub)
            raise PublishTimeout(
                f"{what}: no acknowledgement from the platform within {timeout}s; it may "
                f"still have been applied. Retry with publish_id={pid!r} and the platform "
                "applies it once (within its dedupe window)",
                pid,
            ) from None
        if ack["status"] == "OK":
            return ack
        code, message = ack.get("code", ""), ack.get("message", "")
        if code == "PERMISSION_DENIED":
            raise PermissionError(message)
        if code == "UNKNOWN_TYPE":
            raise ValueError(message)
        if raise_error_on_failure:
            raise RuntimeError(f"{what} failed: {code}: {message}")
        self._log.error("publish failed", what=what, code=code, message=message)
        return ack

    def publish(
        self,
        data_type: str,
        id: str,
        data: dict[str, Any],
        schema: str = "",
        source: str = "",
        group: str = "NONE",
        timeout: float = 10,
        raise_error_on_failure: bool = True,
        key_header: KeyHeader | None = None,
        *,
        publish_id: str | None = None,
    ) -> dict[str, Any]:
        """Publish one record and block until the platform acknowledges it.

        ``publish_id`` (keyword-only, an actorwire extension) makes it idempotent: the
        platform applies a publish id once within its dedupe window. Without one a fresh id
        is made, so the automatic resend after a reconnect is applied once; on
        ``PublishTimeout`` (a TimeoutError) retry with its ``publish_id``.
        """
        return self._publish(
            data_type,
            id,
            data,
            schema,
            source,
            group,
            timeout,
            raise_error_on_failure,
            key_header,
            store=False,
            publish_id=publish_id,
        )

    def publish_many(
        self,
        data_type: str,
        records: Iterable[tuple[str, dict[str, Any]]],
        schema: str = "",
        source: str = "",
        group: str = "NONE",
        timeout: float = 10,
        raise_error_on_failure: bool = True,
        *,
        publish_id: str | None = None,
    ) -> dict[str, Any]:
        """Publish many ``(id, data)`` records at once (an actorwire extension).

        They travel as one request and reach subscribers as one delivery, and are accepted
        or refused together; blocks until the platform acknowledges. Returns the ack
        (``{"status": "OK", "count": n}``); errors as ``publish``. With ``publish_id`` the
        records carry ``f"{publish_id}/{i}"``: a retry with the same id applies each once.
        """
        info = self._allowed(data_type, schema, "publish")
        built = [self._record(info, id, data, source, group, None) for id, data in records]
        if not built:
            return {"status": "OK", "count": 0}
        base = _check_publish_id(publish_id)
        pub = _Pub(
            built,
            False,
            concurrent.futures.Future(),
            time.monotonic() + timeout,
            ids=[f"{base}/{i}" for i in range(len(built))],
        )
        ack = self._submit(
            pub, f"publish_many {info.name} ({len(built)} records)", timeout, raise_error_on_failure
        )
        return {k: v for k, v in ack.items() if k != "request_id"}

    def _publish(
        self,
        data_type: str,
        id: str,
        data: dict[str, Any],
        schema: str,
        source: str,
        group: str,
        timeout: float,
        raise_error_on_failure: bool,
        key_header: KeyHeader | None,
        store: bool,
        publish_id: str | None = None,
    ) -> dict[str, Any]:
        info = self._allowed(data_type, schema, "publish")
        record = self._record(info, id, data, source, group, key_header)
        pub = _Pub(
            [record],
            store,
            concurrent.futures.Future(),
            time.monotonic() + timeout,
            ids=[_check_publish_id(publish_id)],
        )
        verb = "store" if store else "publish"
        return self._submit(pub, f"{verb} {info.name}/{id}", timeout, raise_error_on_failure)

    def edit(
        self,
        data_type: str,
        id: str,
        patch: dict[str, Any],
        schema: str = "",
        source: str = "",
        group: str = "NONE",
        timeout: float = 10,
        raise_error_on_failure: bool = True,
        *,
        publish_id: str | None = None,
    ) -> dict[str, Any]:
        """Patch fields of a published record; subscribers receive the patched record.
        ``publish_id`` as in ``publish``: an edit is applied once per id."""
        info = self._allowed(data_type, schema, "edit")
        if not isinstance(patch, dict) or not patch:
            raise ValueError(f"patch must be a non-empty dict, got {patch!r}")
        encoded = encode_data(patch)
        limit = self._max_record_bytes
        if limit and len(encoded) > limit:
            raise ValueError(
                f"edit of {info.schema}.{info.name} id={id!r}: the patch is {len(encoded)} "
                f"bytes, over the platform's limit of {limit} bytes: it was not sent"
            )
        check_fields(info.name, info.fields, patch)
        key = pb.Topic(
            schema=info.schema,
            data_type=info.name,
            source=source or self.application_name,
            group=group,
            id=id,
        )
        pub = _Pub(
            [],
            False,
            concurrent.futures.Future(),
            time.monotonic() + timeout,
            edit=(key, encoded),
            ids=[_check_publish_id(publish_id)],
        )
        return self._submit(pub, f"edit {info.name}/{id}", timeout, raise_error_on_failure)

    def store(
        self,
        data_type: str,
        id: str,
        data: dict[str, Any],
        schema: str = "",
        source: str = "",
        group: str = "NONE",
        timeout: float = 10,
        *,
        publish_id: str | None = None,
    ) -> dict[str, Any]:
        """[EXPERIMENTAL] Publish and persist in the platform's message store.
        ``publish_id`` as in ``publish``."""
        if not type(self).unlock_experimental_features:
            raise RuntimeError(
                "store() is experimental: set "
                "KeySession.unlock_experimental_features = True to use it"
            )
        return self._publish(
            data_type,
            id,
            data,
            schema,
            source,
            group,
            timeout,
            True,
            None,
            store=True,
            publish_id=publish_id,
        )

    # -- schema and discovery ----------------------------------------------------------

    def catalog(self) -> list[tuple[str, str]]:
        """Every (schema_name, data_type_name) on the platform."""
        self._check_started()
        return sorted(self._schema)

    def sample(self, data_type: str, schema: str = "") -> KeyMessage:
        """A KeyMessage showing a type's header and its fields with their field types."""
        self._check_started()
        info = self._resolve(data_type, schema)
        header = KeyHeader(
            schema=info.schema,
            data_type=info.name,
            source=self.application_name,
            group="NONE",
            id="",
        )
        return KeyMessage(header=header.as_dict(), data=dict(info.fields))

    def set_up_schema_refresh(self) -> None:
        """Follow the platform's schema changes (on from the start when auto_refresh_schema)."""
        self.auto_refresh_schema = True

    def get_session_data(self) -> dict[str, Any]:
        """Connection details: application, url, host, port, session, platform, state, and
        the delivery counters: platform subscriptions ``resumed`` from the journal after a
        reconnect, ``gaps`` reported, records ``redelivered`` by a restarted platform (and
        dropped)."""
        reply = self._register
        delivery = {"resumed": 0, "gaps": 0, "redelivered": 0}
        router = self._router
        if router is not None:
            with contextlib.suppress(Exception):
                delivery = router.ask("stats", timeout=2.0)
        return {
            "application_name": self.application_name,
            "url": self.url,
            "hostname": self.host,
            "port": self.port,
            "session_id": reply.session_id if reply else None,
            "platform": reply.platform if reply else None,
            "status": self._state.name,
            "schema_version": self._schema_version,
            "subscriptions": len(self._subs),
            "link": self._link.state.name if self._link and self._link.state else None,
            **delivery,
        }

    # -- awaitable forms -----------------------------------------------------------------

    astart = twin(start)
    astop = twin(stop)
    asnapshot = twin(snapshot)
    asubscribe = twin(subscribe)
    aunsubscribe = twin(unsubscribe)
    apublish = twin(publish)
    apublish_many = twin(publish_many)
    aedit = twin(edit)
    astore = twin(store)


def _check_publish_id(publish_id: str | None) -> str:
    """The caller's publish id, checked, or a fresh one."""
    if publish_id is None:
        return uuid.uuid4().hex
    if not isinstance(publish_id, str) or not publish_id or len(publish_id) > 200:
        raise ValueError(
            f"publish_id must be a non-empty string of <= 200 chars, got {publish_id!r}"
        )
    return publish_id


def _retry_id(pub: _Pub) -> str:
    """The id a caller retries with: a publish_many's base, else the call's own id."""
    ids = pub.ids or [""]
    return ids[0].rpartition("/")[0] if len(pub.records) > 1 else ids[0]


def _ca_certificates(cafile: str | os.PathLike[str] | None) -> bytes | None:
    """The PEM CA certificates to trust, checked by the kit first (a clear error at once)."""
    if cafile is None:
        return None
    client_context(cafile)  # raises TlsConfigError naming the bad file
    return Path(cafile).read_bytes()


def _rpc_error(exc: Exception, what: str) -> Exception:
    import grpc  # noqa: PLC0415 - only on the error path

    if isinstance(exc, grpc.aio.AioRpcError):
        code, details = exc.code(), exc.details() or ""
        if code == grpc.StatusCode.PERMISSION_DENIED:
            return PermissionError(details)
        if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            return ValueError(details)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return TimeoutError(f"{what}: {details}")
        return RuntimeError(f"{what} failed: {code.name}: {details}")
    return RuntimeError(f"{what} failed: {exc!r}")


def _to_frame(records: list[pb.Record], info: _TypeInfo) -> Any:
    """One row per record: header fields, then data fields (``data_<name>`` on a clash)."""
    import pandas as pd  # noqa: PLC0415 - pandas loads only when a DataFrame is asked for

    headers = [r.header for r in records]
    columns: dict[str, list[Any]] = {
        "schema": [h.schema for h in headers],
        "data_type": [h.data_type for h in headers],
        "source": [h.source for h in headers],
        "group": [h.group for h in headers],
        "id": [h.id for h in headers],
        "seq": [h.seq for h in headers],
        "timestamp_ns": [h.timestamp_ns for h in headers],
        "publisher": [h.publisher for h in headers],
    }
    rows = [decode_data(r.data) if r.data else {} for r in records]
    names = list(info.fields)
    for row in rows:
        for name in row:
            if name not in info.fields and name not in names:
                names.append(name)
    for name in names:
        column = f"data_{name}" if name in columns else name
        columns[column] = [row.get(name) for row in rows]
    return pd.DataFrame(columns)
