"""The keysquare adapter in pipelines: the ``keysquare`` source, the ``keysquare_publish``
sink and the ``keysquare`` embedded server kind, registered through the
``actorwire.plugins`` entry point (``plugin()``)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...actors.backoff import Backoff
from ...pipelines.plugins import EmbeddedKind, Plugin, RunningServer, server_kind
from ...pipelines.sources import _positive
from ...pipelines.stage import Sink, Source
from . import (
    GROUP_WILDCARD,
    ID_WILDCARD,
    SOURCE_WILDCARD,
    Gap,
    KeyMessage,
    KeySession,
    KeySessionState,
    Subscription,
    SubscriptionType,
)
from .config import PlatformConfig, load_config, parse_config
from .server import serve

if TYPE_CHECKING:
    from ...pipelines.stage import StageContext

__all__ = [
    "HEADER_FIELDS",
    "LINK_DEFAULTS",
    "KeySquarePublishSink",
    "KeySquareSource",
    "LinkOptions",
    "PlatformServer",
    "flatten",
    "plugin",
]

DEFAULT_PORT = 6800


LINK_STATE = {
    KeySessionState.CONNECTED: "CONNECTED",
    KeySessionState.DISCONNECTED: "RECONNECTING",
    KeySessionState.REGISTRATION_FAILED: "FAILED",
    KeySessionState.SCHEMA_DOWNLOAD_FAILED: "FAILED",
    KeySessionState.ERROR: "FAILED",
}
"""A KeySession state as the LinkState name health checks use (others: CONNECTING)."""


def check_credentials(owner: str, url: str, application_name: str, api_key: str) -> None:
    """Raise at definition time for a malformed url or empty credentials (never echoing
    the key)."""
    host, sep, port = str(url).rpartition(":")
    if not isinstance(url, str) or not sep or not host or not port.isdigit():
        raise ValueError(f"{owner}: url must be 'host:port', got {url!r}")
    if not isinstance(application_name, str) or not application_name:
        raise ValueError(f"{owner}: application_name must be a non-empty string")
    if not isinstance(api_key, str) or not api_key:
        raise ValueError(f"{owner}: api_key must be a non-empty string")


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """How a pipeline's KeySession keeps its link alive: the heartbeat (ping a quiet
    platform every ``heartbeat_interval`` seconds, declare the link dead after
    ``heartbeat_deadline`` seconds without traffic) and the redial ``backoff``."""

    heartbeat_interval: float
    heartbeat_deadline: float
    backoff: Backoff


LINK_DEFAULTS = LinkOptions(
    heartbeat_interval=0.5,
    heartbeat_deadline=5.0,
    backoff=Backoff(min=0.1, max=0.5, factor=2.0, jitter=0.2),
)
"""A pipeline's link defaults. The heartbeat is KeySession's. The backoff is capped at
0.5 s (KeySession's cap is 5 s): a pipeline runs unattended and every second it is not
subscribed is data it misses, so it redials a platform that is down about twice a second
(a refused connect each time, cheap on both ends) and is delivering again within
``backoff_max`` plus one handshake of the platform being back. Raise ``backoff_max`` when
many pipelines share a platform that is slow to come back."""


def _seconds(owner: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{owner}: {name} must be a number of seconds > 0, got {value!r}")
    result = float(value)
    if not math.isfinite(result) or result <= 0:
        raise ValueError(f"{owner}: {name} must be a finite number of seconds > 0, got {value!r}")
    return result


def _number(owner: str, name: str, value: object, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{owner}: {name} must be a number {expected}, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{owner}: {name} must be a finite number {expected}, got {value!r}")
    return result


def _link_options(
    owner: str,
    heartbeat_interval: object = LINK_DEFAULTS.heartbeat_interval,
    heartbeat_deadline: object = LINK_DEFAULTS.heartbeat_deadline,
    backoff_min: object = LINK_DEFAULTS.backoff.min,
    backoff_max: object = LINK_DEFAULTS.backoff.max,
    backoff_factor: object = LINK_DEFAULTS.backoff.factor,
    backoff_jitter: object = LINK_DEFAULTS.backoff.jitter,
) -> LinkOptions:
    """Check a keysquare stage's link parameters; TypeError or ValueError names the
    parameter (and only that one, so a definition's key path points at it), the value and
    what was expected."""
    interval = _seconds(owner, "heartbeat_interval", heartbeat_interval)
    deadline = _seconds(owner, "heartbeat_deadline", heartbeat_deadline)
    if deadline <= interval:
        raise ValueError(
            f"{owner}: heartbeat_deadline must be longer than the heartbeat interval "
            f"({interval:g} s), got {heartbeat_deadline!r}"
        )
    low = _seconds(owner, "backoff_min", backoff_min)
    high = _seconds(owner, "backoff_max", backoff_max)
    if high < low:
        raise ValueError(
            f"{owner}: backoff_max must be at least the backoff minimum ({low:g} s), "
            f"got {backoff_max!r}"
        )
    factor = _number(owner, "backoff_factor", backoff_factor, ">= 1")
    if factor < 1:
        raise ValueError(f"{owner}: backoff_factor must be a number >= 1, got {backoff_factor!r}")
    jitter = _number(owner, "backoff_jitter", backoff_jitter, "from 0 to 1")
    if not 0 <= jitter <= 1:
        raise ValueError(
            f"{owner}: backoff_jitter must be a number from 0 to 1, got {backoff_jitter!r}"
        )
    return LinkOptions(interval, deadline, Backoff(min=low, max=high, factor=factor, jitter=jitter))


class _LinkWatch:
    """A session state listener for a stage: reports the LinkState name to ``ctx`` and
    counts the times the link came back (``reconnects``).

    A KeySession reports its handshake steps on every redial but not each failed redial,
    so once the link has been up, anything short of CONNECTED counts as RECONNECTING."""

    def __init__(self, ctx: StageContext, publish_stats: Callable[[], None]) -> None:
        self._ctx = ctx
        self._publish_stats = publish_stats
        self._up = False
        self.connects = 0

    @property
    def reconnects(self) -> int:
        return max(self.connects - 1, 0)

    def __call__(self, state: KeySessionState, _message: str) -> None:
        name = LINK_STATE.get(state, "CONNECTING")
        if state is not KeySessionState.CONNECTED:
            self._up = False
            self._ctx.set_link_state(
                "RECONNECTING" if name == "CONNECTING" and self.connects else name
            )
        elif not self._up:
            self._up = True
            self.connects += 1
            self._ctx.set_link_state(name)
            self._publish_stats()


def open_session(
    ctx: StageContext,
    url: str,
    application_name: str,
    api_key: str,
    timeout: float,
    link: LinkOptions,
    listener: Callable[[KeySessionState, str], None],
) -> KeySession:
    """A started KeySession on the stage's own actor system, its link tuned by ``link``
    and its states told to ``listener``."""
    return KeySession(
        application_name,
        api_key,
        url,
        session_state_listener=listener,
        timeout=max(1, round(timeout)),
        system=ctx.system,
        heartbeat_interval=link.heartbeat_interval,
        heartbeat_deadline=link.heartbeat_deadline,
        backoff=link.backoff,
    )


def close_session(ctx: StageContext, session: KeySession | None) -> None:
    """Stop a session; the link then counts as CLOSED."""
    if session is None:
        return
    session.stop()
    ctx.set_link_state("CLOSED")


# -- keysquare ----------------------------------------------------------------------------

HEADER_FIELDS = ("id", "source", "group", "seq", "timestamp_ns")
"""Header fields a keysquare record carries next to its data fields (header wins)."""


def flatten(message: KeyMessage) -> dict[str, Any]:
    """A KeyMessage as one flat dict: its data fields plus ``id``, ``source``, ``group``,
    ``seq`` and ``timestamp_ns`` from the header."""
    header = message["header"]
    record = dict(message["data"])
    for name in HEADER_FIELDS:
        record[name] = header[name]
    return record


class KeySquareSource(Source):
    """``keysquare``: subscribes to ``data_type`` on a KeySquare platform.

    ``url`` is ``"host:port"``; ``application_name`` and ``api_key`` are the credentials
    (the key never appears in logs). ``schema``, ``source``, ``group`` and ``id`` filter as in
    ``KeySession.subscribe`` (empty: any). ``subscription_type`` is ``"CACHED_AND_LIVE"``
    (first the platform's cached records) or ``"LIVE_ONLY"``. Each record is a flat dict
    (see :func:`flatten`); voided records are skipped unless ``include_voided`` (they then
    carry ``"voided": True``). Records go straight from the subscription's actor to the next
    stages, so bound those stages' mailboxes, not this one. Never done.

    ``heartbeat_interval``, ``heartbeat_deadline`` and ``backoff_min``, ``backoff_max``,
    ``backoff_factor``, ``backoff_jitter`` tune the link as KeySession's
    ``heartbeat_interval``, ``heartbeat_deadline`` and ``backoff=Backoff(min, max, factor,
    jitter)`` do (defaults: :data:`LINK_DEFAULTS`); after an outage the link redials and
    resubscribes by itself, resuming from the platform's journal. ``stats()`` counts
    ``reconnects``, ``gaps`` (resumes that could not cover the outage; each is also logged as
    a warning) and ``missed`` (the journal positions those gaps skipped, when known).
    """

    def __init__(
        self,
        url: str,
        application_name: str,
        api_key: str,
        data_type: str,
        schema: str = "",
        source: str = SOURCE_WILDCARD,
        group: str = GROUP_WILDCARD,
        id: str = ID_WILDCARD,
        subscription_type: str | SubscriptionType = "CACHED_AND_LIVE",
        include_voided: bool = False,
        timeout: float = 10.0,
        heartbeat_interval: float = LINK_DEFAULTS.heartbeat_interval,
        heartbeat_deadline: float = LINK_DEFAULTS.heartbeat_deadline,
        backoff_min: float = LINK_DEFAULTS.backoff.min,
        backoff_max: float = LINK_DEFAULTS.backoff.max,
        backoff_factor: float = LINK_DEFAULTS.backoff.factor,
        backoff_jitter: float = LINK_DEFAULTS.backoff.jitter,
    ) -> None:
        # The kind's name: "keysquare source" would name the ``source`` filter too, and a
        # definition's key path follows the parameter an error names.
        owner = "keysquare"
        check_credentials(owner, url, application_name, api_key)
        if not isinstance(data_type, str) or not data_type:
            raise ValueError(f"{owner}: data_type must be a non-empty string, got {data_type!r}")
        for name, value in (("schema", schema), ("source", source), ("group", group), ("id", id)):
            if not isinstance(value, str):
                raise TypeError(f"{owner}: {name} must be a string, got {value!r}")
        if isinstance(subscription_type, str):
            try:
                subscription_type = SubscriptionType[subscription_type.upper()]
            except KeyError:
                names = ", ".join(t.name for t in SubscriptionType)
                raise ValueError(
                    f"{owner}: subscription_type must be one of {names}, got {subscription_type!r}"
                ) from None
        if not isinstance(subscription_type, SubscriptionType):
            raise TypeError(f"{owner}: subscription_type must be a string or SubscriptionType")
        self._url = url
        self._app = application_name
        self._key = api_key
        self._data_type = data_type
        self._filters = {"schema": schema, "source": source, "group": group, "id": id}
        self._type = subscription_type
        self._include_voided = include_voided
        self._timeout = _positive(owner, "timeout", timeout) or 10.0
        self._link = _link_options(
            owner,
            heartbeat_interval,
            heartbeat_deadline,
            backoff_min,
            backoff_max,
            backoff_factor,
            backoff_jitter,
        )
        self._session: KeySession | None = None
        self._sub: Subscription | None = None
        self._ctx: StageContext | None = None
        self._watch: _LinkWatch | None = None
        self._received = 0
        self._voided = 0
        self._gaps = 0
        self._missed = 0

    def __repr__(self) -> str:
        return f"KeySquareSource(url={self._url!r}, data_type={self._data_type!r})"

    def start(self, ctx: StageContext) -> None:
        self._ctx = ctx
        state = ctx.state

        def publish_stats() -> None:
            state.component_stats = self.stats()

        self._watch = _LinkWatch(ctx, publish_stats)
        session = open_session(
            ctx, self._url, self._app, self._key, self._timeout, self._link, self._watch
        )
        self._session = session
        try:
            self._sub = session.subscribe(
                self._data_type,
                self._deliver(ctx, voided=False),
                voided_callback=self._deliver(ctx, voided=True),
                schema=self._filters["schema"],
                source=self._filters["source"],
                group=self._filters["group"],
                id=self._filters["id"],
                subscription_type=self._type,
                timeout=self._timeout,
                gap_callback=self._gap,
            )
        except BaseException:
            self.stop()
            raise

    def _gap(self, gap: Gap) -> None:
        # Runs in the subscription's actor, in order with its records; the session has
        # logged the gap as a warning already.
        self._gaps += 1
        self._missed += gap.missed or 0
        if self._ctx is not None:
            self._ctx.state.component_stats = self.stats()

    def _deliver(self, ctx: StageContext, *, voided: bool) -> Callable[[KeyMessage], None]:
        state = ctx.state
        emit = ctx.emit

        # Runs in the subscription's own actor: one record per call.
        def deliver(message: KeyMessage) -> None:
            if voided:
                self._voided += 1
                if not self._include_voided:
                    state.component_stats = self.stats()
                    return
                record = flatten(message)
                record["voided"] = True
            else:
                record = flatten(message)
            self._received += 1
            state.received += 1
            state.processed += 1
            emit([record])
            state.component_stats = self.stats()

        return deliver

    def stop(self) -> None:
        session, self._session = self._session, None
        sub, self._sub = self._sub, None
        if session is None:
            return
        try:
            if sub is not None and sub.active:
                session.unsubscribe(sub)
        finally:
            if self._ctx is not None:
                close_session(self._ctx, session)
            else:
                session.stop()

    def stats(self) -> dict[str, int]:
        reconnects = self._watch.reconnects if self._watch is not None else 0
        return {
            "records": self._received,
            "voided": self._voided,
            "reconnects": reconnects,
            "gaps": self._gaps,
            "missed": self._missed,
        }


# -- keysquare_publish --------------------------------------------------------------------


class KeySquarePublishSink(Sink):
    """``keysquare_publish``: publishes each record to ``data_type`` with ``publish_many``
    (one request per batch, acknowledged before the next batch).

    The record's ``id_field`` value is the record id. The data published is the record's
    ``fields`` (default: every field except the keysquare header fields ``id``, ``source``,
    ``group``, ``seq`` and ``timestamp_ns``, so records from a ``keysquare`` source can be
    republished as they are). If the platform's schema refuses the batch, the records are
    sent one by one and only those refused count as failed.

    ``heartbeat_interval``, ``heartbeat_deadline`` and ``backoff_min``, ``backoff_max``,
    ``backoff_factor``, ``backoff_jitter`` tune the link as for the ``keysquare`` source; a
    batch written while the link is down is sent once it is back (within ``timeout``).
    ``stats()`` counts ``reconnects``.
    """

    def __init__(
        self,
        url: str,
        application_name: str,
        api_key: str,
        data_type: str,
        id_field: str,
        fields: Sequence[str] | None = None,
        schema: str = "",
        source: str = "",
        group: str = "NONE",
        timeout: float = 10.0,
        heartbeat_interval: float = LINK_DEFAULTS.heartbeat_interval,
        heartbeat_deadline: float = LINK_DEFAULTS.heartbeat_deadline,
        backoff_min: float = LINK_DEFAULTS.backoff.min,
        backoff_max: float = LINK_DEFAULTS.backoff.max,
        backoff_factor: float = LINK_DEFAULTS.backoff.factor,
        backoff_jitter: float = LINK_DEFAULTS.backoff.jitter,
    ) -> None:
        owner = "keysquare_publish sink"
        check_credentials(owner, url, application_name, api_key)
        if not isinstance(data_type, str) or not data_type:
            raise ValueError(f"{owner}: data_type must be a non-empty string, got {data_type!r}")
        if not isinstance(id_field, str) or not id_field:
            raise ValueError(f"{owner}: id_field must be a field name, got {id_field!r}")
        if fields is not None and (
            isinstance(fields, str) or not all(isinstance(f, str) and f for f in fields)
        ):
            raise ValueError(f"{owner}: fields must be a list of field names, got {fields!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"{owner}: timeout must be a number of seconds > 0, got {timeout!r}")
        self._url = url
        self._app = application_name
        self._key = api_key
        self._data_type = data_type
        self._id_field = id_field
        self._fields = tuple(fields) if fields is not None else None
        self._schema = schema
        self._source = source
        self._group = group
        self._timeout = float(timeout)
        self._link = _link_options(
            owner,
            heartbeat_interval,
            heartbeat_deadline,
            backoff_min,
            backoff_max,
            backoff_factor,
            backoff_jitter,
        )
        self._session: Any = None
        self._ctx: StageContext | None = None
        self._watch: _LinkWatch | None = None
        self._published = 0

    def __repr__(self) -> str:
        return f"KeySquarePublishSink(url={self._url!r}, data_type={self._data_type!r})"

    def start(self, ctx: StageContext) -> None:
        self._ctx = ctx
        state = ctx.state

        def publish_stats() -> None:
            state.component_stats = self.stats()

        self._watch = _LinkWatch(ctx, publish_stats)
        self._session = open_session(
            ctx, self._url, self._app, self._key, self._timeout, self._link, self._watch
        )

    def _item(self, record: Any) -> tuple[str, dict[str, Any]] | None:
        assert self._ctx is not None
        if not isinstance(record, dict) or self._id_field not in record:
            self._ctx.record_failed(
                record, ValueError(f"record has no id field {self._id_field!r}")
            )
            return None
        if self._fields is not None:
            data = {f: record[f] for f in self._fields if f in record}
        else:
            data = {k: v for k, v in record.items() if k not in HEADER_FIELDS}
        return (str(record[self._id_field]), data)

    def _publish(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        self._session.publish_many(
            self._data_type,
            items,
            schema=self._schema,
            source=self._source,
            group=self._group,
            timeout=self._timeout,
        )
        self._published += len(items)

    def write(self, records: list[Any], now: float) -> None:
        assert self._ctx is not None
        pairs = [(r, self._item(r)) for r in records]
        items = [item for _, item in pairs if item is not None]
        if not items:
            return
        try:
            self._publish(items)
        except ValueError:
            # Refused before anything was sent (a field the type lacks, a bad value): send
            # one by one so only the bad records fail.
            for record, item in pairs:
                if item is None:
                    continue
                try:
                    self._publish([item])
                except ValueError as exc:
                    self._ctx.record_failed(record, exc)

    def stop(self) -> None:
        session, self._session = self._session, None
        if session is not None and self._ctx is not None:
            close_session(self._ctx, session)

    def stats(self) -> dict[str, int]:
        reconnects = self._watch.reconnects if self._watch is not None else 0
        return {"published": self._published, "reconnects": reconnects}


# -- the embedded server -------------------------------------------------------------------


class PlatformServer(EmbeddedKind):
    """A definition's ``[servers.<name>] kind = "keysquare"``: its config, its port, and
    the running platform. Without ``store`` the platform keeps stored records in memory (by
    choice: quietly)."""

    config: PlatformConfig
    no_store = ":memory:"
    load = staticmethod(load_config)

    @staticmethod
    def parse(table: dict[str, Any], where: str, base_dir: Path | None) -> PlatformConfig:
        return parse_config(table, where)

    def open(self) -> RunningServer:
        server: RunningServer = serve(self.host, self.port, self.config, self.store)
        return server

    def check_stage(
        self,
        kind: str,
        params: Mapping[str, Any],
        section: str,
        peers: Sequence[tuple[str, Mapping[str, Any]]] = (),
    ) -> list[str]:
        """A ``keysquare`` source or ``keysquare_publish`` sink must name a data type the
        platform's config defines (by name or ``schema.name``)."""
        if kind not in ("keysquare", "keysquare_publish"):
            return []
        data_type = params.get("data_type")
        if not isinstance(data_type, str) or not data_type:
            return []  # the stage's own check says so
        known = [t.qualified for t in self.config.types]
        if any(data_type in (t.name, t.qualified) for t in self.config.types):
            return []
        close = difflib.get_close_matches(data_type, known + [t.name for t in self.config.types], 1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return [
            f"data_type: the platform's config defines no data type {data_type!r}{hint}; "
            f"it defines {', '.join(sorted(known)) or 'none'}"
        ]

    def credentials(self, data_type: str, verb: str) -> tuple[str, str]:
        """The first application that may ``verb`` ("read"/"publish") ``data_type``."""
        types = [t for t in self.config.types if data_type in (t.name, t.qualified)]
        for app in self.config.applications.values():
            allowed = app.can_read if verb == "read" else app.can_publish
            if any(allowed(t.schema, t.name) for t in types) or (
                not types and allowed("", data_type)
            ):
                return app.name, app.api_key
        raise ValueError(
            f"no application in its config may {verb} "
            f"{data_type!r}; give application_name and api_key"
        )


def plugin() -> Plugin:
    """What this adapter adds to pipelines (the ``actorwire.plugins`` entry point)."""
    return Plugin(
        "keysquare",
        sources={"keysquare": KeySquareSource},
        sinks={"keysquare_publish": KeySquarePublishSink},
        servers={
            "keysquare": server_kind(
                "keysquare",
                "keysquare platform",
                DEFAULT_PORT,
                PlatformServer,
                lambda host, port, config, store, cert, key: serve(
                    host=host,
                    port=port,
                    config=config,
                    store_path=store,
                    certfile=cert,
                    keyfile=key,
                ),
            )
        },
    )
