"""The streamsea adapter in pipelines: the ``streamsea_publish`` sink, the ``streamsea``
source and the embedded stream-sea server as a server kind (``[servers.x] kind =
"streamsea"`` in a definition, ``actorwire serve streamsea``), registered through the
``actorwire.plugins`` entry point (``plugin()``)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...actors import Backoff
from ...actors.link import LinkState
from ...pipelines.plugins import EmbeddedKind, Plugin, RunningServer, server_kind
from ...pipelines.sources import _positive
from ...pipelines.stage import Sink, Source
from .client import StreamSeaConnection, Subscription, define_stream, publish
from .config import StreamSeaConfig, load_config, parse_config
from .httpclient import HttpError
from .protocol import CredentialsError
from .schema import FieldType, SchemaDefinition
from .server import DEFAULT_PORT, serve

if TYPE_CHECKING:
    from ...pipelines.stage import StageContext

__all__ = [
    "RETRY_BACKOFF",
    "EmbeddedStreamSea",
    "StreamSeaPublishSink",
    "StreamSeaSource",
    "infer_schema",
    "plugin",
    "schema_from_table",
]

RETRY_BACKOFF = Backoff(min=0.05, max=1.0, factor=2.0, jitter=0.2)
"""How the ``streamsea_publish`` sink spaces its retries while a server is unreachable."""


class _Connection:
    """Where a stage's server is and who it is (the secret never in a repr)."""

    __slots__ = ("ca_file", "client_id", "client_secret", "remote_host", "remote_port", "secure")

    def __init__(
        self,
        owner: str,
        remote_host: object,
        remote_port: object,
        client_id: object,
        client_secret: object,
        secure: object,
        ca_file: object,
    ) -> None:
        if not isinstance(remote_host, str) or not remote_host:
            raise ValueError(
                f"{owner}: remote_host must be a host name (or name a server = ...), "
                f"got {remote_host!r}"
            )
        if remote_port is not None and (
            isinstance(remote_port, bool)
            or not isinstance(remote_port, int)
            or not 0 < remote_port < 65536
        ):
            raise ValueError(f"{owner}: remote_port must be a port 1..65535, got {remote_port!r}")
        if not isinstance(client_id, str) or not client_id:
            raise ValueError(f"{owner}: client_id must be a non-empty string, got {client_id!r}")
        if not isinstance(client_secret, str) or not client_secret:
            raise ValueError(f"{owner}: client_secret must be a non-empty string")
        if not isinstance(secure, bool):
            raise TypeError(f"{owner}: secure must be true or false, got {secure!r}")
        if ca_file is not None and not isinstance(ca_file, str):
            raise TypeError(f"{owner}: ca_file must be a path string, got {ca_file!r}")
        self.remote_host = remote_host
        self.remote_port = remote_port
        self.client_id = client_id
        self.client_secret = client_secret
        self.secure = secure
        self.ca_file = ca_file

    def http(self) -> dict[str, Any]:
        """The keywords every HTTP call of the client takes."""
        return {
            "remote_host": self.remote_host,
            "remote_port": self.remote_port,
            "secure": self.secure,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "ca_file": self.ca_file,
        }

    def __repr__(self) -> str:
        port = f":{self.remote_port}" if self.remote_port is not None else ""
        return f"{self.remote_host}{port}"


# -- schemas ---------------------------------------------------------------------------------


def _wire_fields(table: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = []
    for name, spec in table.items():
        if isinstance(spec, str):
            fields.append({"name": name, "type": _type_name(spec, f"{where}.{name}")})
        elif isinstance(spec, Mapping) and "type" in spec:
            field = dict(spec)
            field["name"] = name
            field["type"] = _type_name(spec["type"], f"{where}.{name}.type")
            if isinstance(spec.get("fields"), Mapping):
                field["fields"] = _wire_fields(spec["fields"], f"{where}.{name}.fields")
            fields.append(field)
        elif isinstance(spec, Mapping):  # a table of its own: an object's fields
            fields.append(
                {"name": name, "type": "object", "fields": _wire_fields(spec, f"{where}.{name}")}
            )
        else:
            raise ValueError(
                f"{where}.{name}: must be a field type name (one of "
                f"{', '.join(t.value for t in FieldType)}) or a table, got {spec!r}"
            )
    return fields


def _type_name(value: object, where: str) -> str:
    if isinstance(value, str):
        for kind in FieldType:
            if value in (kind.value, kind.name, kind.name.lower()):
                return kind.value
    raise ValueError(
        f"{where}: unknown field type {value!r} (expected one of "
        f"{', '.join(t.value for t in FieldType)})"
    )


def schema_from_table(stream: str, version: int, table: Mapping[str, Any]) -> SchemaDefinition:
    """A schema from a definition's table: field name -> type name (``"float"``,
    ``"array<string>"``, ... or the FieldType name), a table of its own for an object's
    fields, or ``{ type = "enum", enum = [...] }`` (any field in the wire's form)."""
    if not isinstance(table, Mapping) or not table:
        raise ValueError(f"schema must be a table of field name -> type, got {table!r}")
    return SchemaDefinition.from_json(
        {"name": stream, "version": version, "fields": _wire_fields(table, "schema")}
    )


def _infer(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, bool):
        raise ValueError(f"{where} is a bool: stream-sea has no boolean type (give a schema)")
    if isinstance(value, int | float):
        return {"type": FieldType.FLOAT.value}  # a float field takes ints too
    if isinstance(value, str):
        return {"type": FieldType.STRING.value}
    if isinstance(value, Mapping):
        return {"type": FieldType.OBJECT.value, "fields": _infer_fields(value, where)}
    if isinstance(value, list | tuple) and value:
        first = value[0]
        if isinstance(first, Mapping):
            return {
                "type": FieldType.OBJECT_ARRAY.value,
                "fields": _infer_fields(first, f"{where}[0]"),
            }
        element = _infer(first, f"{where}[0]")["type"]
        arrays = {"string": FieldType.STRING_ARRAY, "float": FieldType.FLOAT_ARRAY}
        if element in arrays:
            return {"type": arrays[element].value}
    raise ValueError(f"{where} is {value!r}: no stream-sea type can be inferred (give a schema)")


def _infer_fields(record: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    return [
        {"name": str(name), **_infer(value, f"{where}.{name}" if where else str(name))}
        for name, value in record.items()
    ]


def infer_schema(stream: str, version: int, record: Mapping[str, Any]) -> SchemaDefinition:
    """The schema a record implies: numbers are ``float`` (which takes ints too), strings
    ``string``, tables ``object``, lists ``array<float>``, ``array<string>`` or
    ``array<object>`` by their first element. ValueError for a bool, None or an empty list
    (no type fits: give a schema)."""
    return SchemaDefinition.from_json(
        {"name": stream, "version": version, "fields": _infer_fields(record, "")}
    )


# -- streamsea_publish -----------------------------------------------------------------------


class _Unreachable(ConnectionError):
    """The server could not be reached within the sink's ``timeout``."""


class StreamSeaPublishSink(Sink):
    """``streamsea_publish``: publishes each record as one message to ``stream``.

    The server is ``remote_host``/``remote_port`` (``secure``: https, trusting ``ca_file``)
    with ``client_id``/``client_secret`` (never logged); ``server = "<name>"`` in a
    definition fills them from an embedded server. The payload is the record's ``fields``
    (default: all of them). The stream is defined before the first publish: from
    ``schema`` (field name -> type, see :func:`schema_from_table`) when given, else (with
    ``define``, the default) from the first record's fields (see :func:`infer_schema`);
    ``version`` is the schema's. A stream the server has already defined at that version
    keeps its schema; ``define = false`` publishes to the stream as it is.

    Each record is one HTTP publish on the client's kept-alive connections, answered before
    the next: a message the server refuses (it breaks the stream's schema) is counted as
    failed with the server's reason (``refused``) and the rest go on. While the server
    cannot be reached, a record is retried with backoff (:data:`RETRY_BACKOFF`) for up to
    ``timeout`` seconds (``retries``); then it and the rest of its batch are counted as
    failed (``unreachable``) and the next batch tries again: nothing is dropped silently.
    Writes are synchronous, so a barrier is done once ``write`` returns. ``stats()``:
    ``published``, ``refused``, ``retries``, ``unreachable``.
    """

    def __init__(
        self,
        stream: str,
        remote_host: str | None = None,
        remote_port: int | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        secure: bool = False,
        ca_file: str | None = None,
        schema: Mapping[str, Any] | None = None,
        define: bool = True,
        version: int = 1,
        fields: Sequence[str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        owner = "streamsea_publish"
        if not isinstance(stream, str) or not stream:
            raise ValueError(f"{owner}: stream must be a non-empty string, got {stream!r}")
        self._conn = _Connection(
            owner, remote_host, remote_port, client_id, client_secret, secure, ca_file
        )
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"{owner}: version must be an integer >= 1, got {version!r}")
        if not isinstance(define, bool):
            raise TypeError(f"{owner}: define must be true or false, got {define!r}")
        if fields is not None and (
            isinstance(fields, str) or not all(isinstance(f, str) and f for f in fields)
        ):
            raise ValueError(f"{owner}: fields must be a list of field names, got {fields!r}")
        self._schema: SchemaDefinition | None = None
        if schema is not None:
            try:
                self._schema = schema_from_table(stream, version, schema)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{owner}: {exc}") from None
        self._stream = stream
        self._version = version
        self._define = define or schema is not None
        self._defined = not self._define
        self._fields = tuple(fields) if fields is not None else None
        self._timeout = _positive(owner, "timeout", timeout) or 10.0
        self._stopping = threading.Event()
        self._ctx: StageContext | None = None
        self._published = 0
        self._refused = 0
        self._retries = 0
        self._unreachable = 0

    def __repr__(self) -> str:
        return f"StreamSeaPublishSink({self._conn!r}, stream={self._stream!r})"

    def start(self, ctx: StageContext) -> None:
        self._ctx = ctx
        self._stopping.clear()

    def _payload(self, record: Any) -> dict[str, Any]:
        if not isinstance(record, Mapping):
            raise ValueError(f"a record must be a table of fields, got {type(record).__name__}")
        if self._fields is None:
            return dict(record)
        return {f: record[f] for f in self._fields if f in record}

    def _with_retries(self, call: Callable[[], object]) -> None:
        """``call()``, retried with backoff while the server cannot be reached, for up to
        ``timeout`` seconds; then :class:`_Unreachable`."""
        deadline = time.monotonic() + self._timeout
        attempt = 0
        while True:
            try:
                call()
                return
            except CredentialsError:
                raise
            except HttpError as exc:
                if exc.status_code < 500:
                    raise
                error: OSError = exc
            except (ConnectionError, TimeoutError) as exc:
                error = exc
            left = deadline - time.monotonic()
            if left <= 0 or self._stopping.is_set():
                raise _Unreachable(
                    f"stream-sea server {self._conn!r} unreachable for {self._timeout:g} s: {error}"
                ) from None
            self._retries += 1
            if self._ctx is not None:  # seen while the write is still waiting
                self._ctx.state.component_stats = self.stats()
            self._stopping.wait(min(RETRY_BACKOFF.delay(attempt), left))
            attempt += 1

    def _define_stream(self, payload: Mapping[str, Any]) -> None:
        schema = self._schema or infer_schema(self._stream, self._version, payload)

        def call() -> None:
            response = define_stream(
                **self._conn.http(), stream=self._stream, schema=schema, timeout=self._timeout
            )
            if response.status_code in (401, 403):
                raise CredentialsError(
                    f"define {self._stream!r}: the server refused the credentials of client "
                    f"{self._conn.client_id!r}"
                )
            response.raise_for_status()

        self._with_retries(call)
        self._defined = True

    def write(self, records: list[Any], now: float) -> None:
        ctx = self._ctx
        assert ctx is not None
        for i, record in enumerate(records):
            try:
                payload = self._payload(record)
                if not self._defined:
                    self._define_stream(payload)
                self._with_retries(
                    functools.partial(
                        publish,
                        **self._conn.http(),
                        stream=self._stream,
                        payload=payload,
                        timeout=self._timeout,
                    )
                )
            except _Unreachable as exc:
                rest = records[i:]
                self._unreachable += len(rest)
                ctx.log.error("stream-sea server unreachable", failed=len(rest), error=str(exc))
                for failed in rest:
                    ctx.record_failed(failed, exc)
                return
            except (ValueError, TypeError, OSError) as exc:  # refused: the rest go on
                self._refused += 1
                ctx.record_failed(record, exc)
                continue
            self._published += 1

    def stop(self) -> None:
        self._stopping.set()

    def stats(self) -> dict[str, int]:
        return {
            "published": self._published,
            "refused": self._refused,
            "retries": self._retries,
            "unreachable": self._unreachable,
        }


# -- streamsea -------------------------------------------------------------------------------


class StreamSeaSource(Source):
    """``streamsea``: subscribes to ``stream`` and emits each message's payload (a payload
    that is not a table comes as ``{"payload": value}``).

    Connection parameters as the ``streamsea_publish`` sink's. The subscription is the
    client's supervised one (``StreamSeaConnection``): after a drop it redials with backoff
    and resumes after the last message it got. By default it gets every message (a fan-out
    group of its own); ``group_id`` (a UUID) shares the messages with the other
    subscriptions of that group. ``heartbeat_interval``, ``heartbeat_deadline``,
    ``backoff_min`` and ``backoff_max`` tune the link. ``stats()`` counts ``records``,
    ``reconnects``, ``gaps`` (resumes that may have missed messages). Never done.
    """

    def __init__(
        self,
        stream: str,
        remote_host: str | None = None,
        remote_port: int | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        secure: bool = False,
        ca_file: str | None = None,
        group_id: str | None = None,
        timeout: float = 10.0,
        heartbeat_interval: float = 1.0,
        heartbeat_deadline: float = 5.0,
        backoff_min: float = 0.1,
        backoff_max: float = 0.5,
    ) -> None:
        owner = "streamsea"
        if not isinstance(stream, str) or not stream:
            raise ValueError(f"{owner}: stream must be a non-empty string, got {stream!r}")
        self._conn = _Connection(
            owner, remote_host, remote_port, client_id, client_secret, secure, ca_file
        )
        if group_id is not None and not isinstance(group_id, str):
            raise TypeError(f"{owner}: group_id must be a UUID string, got {group_id!r}")
        self._stream = stream
        self._group_id = group_id
        self._timeout = _positive(owner, "timeout", timeout) or 10.0
        self._interval = _positive(owner, "heartbeat_interval", heartbeat_interval) or 1.0
        self._deadline = _positive(owner, "heartbeat_deadline", heartbeat_deadline) or 5.0
        if self._deadline <= self._interval:
            raise ValueError(
                f"{owner}: heartbeat_deadline must be longer than the heartbeat interval "
                f"({self._interval:g} s), got {heartbeat_deadline!r}"
            )
        low = _positive(owner, "backoff_min", backoff_min) or 0.1
        high = _positive(owner, "backoff_max", backoff_max) or 0.5
        if high < low:
            raise ValueError(
                f"{owner}: backoff_max must be at least backoff_min ({low:g} s), "
                f"got {backoff_max!r}"
            )
        self._backoff = Backoff(min=low, max=high, factor=2.0, jitter=0.2)
        self._connection: StreamSeaConnection | None = None
        self._sub: Subscription | None = None
        self._ctx: StageContext | None = None
        self._records = 0
        self._connects = 0

    def __repr__(self) -> str:
        return f"StreamSeaSource({self._conn!r}, stream={self._stream!r})"

    def start(self, ctx: StageContext) -> None:
        self._ctx = ctx
        c = self._conn
        connection = StreamSeaConnection(
            remote_host=c.remote_host,
            remote_port=c.remote_port,
            secure=c.secure,
            client_id=c.client_id,
            client_secret=c.client_secret,
            ca_file=c.ca_file,
            connect_timeout=self._timeout,
            heartbeat_interval=self._interval,
            heartbeat_deadline=self._deadline,
            backoff=self._backoff,
            state_listener=self._on_state,
            system=ctx.system,
        )
        self._connection = connection
        try:
            connection.open()
            self._sub = connection.subscribe(
                self._stream, callback=self._deliver, group_id=self._group_id, timeout=self._timeout
            )
        except BaseException:
            self.stop()
            raise

    def _on_state(self, state: LinkState, _why: str) -> None:
        if state is LinkState.CONNECTED:
            self._connects += 1
        ctx = self._ctx
        if ctx is not None:
            ctx.set_link_state(state.name)
            ctx.state.component_stats = self.stats()

    def _deliver(self, payload: Any) -> None:
        # Runs in the subscription's own actor: one message per call.
        ctx = self._ctx
        if ctx is None:
            return
        record = dict(payload) if isinstance(payload, Mapping) else {"payload": payload}
        self._records += 1
        ctx.state.received += 1
        ctx.state.processed += 1
        ctx.emit([record])
        ctx.state.component_stats = self.stats()

    def stop(self) -> None:
        connection, self._connection = self._connection, None
        self._sub = None
        if connection is None:
            return
        connection.close()
        if self._ctx is not None:
            self._ctx.set_link_state("CLOSED")

    def stats(self) -> dict[str, int]:
        sub = self._sub
        return {
            "records": self._records,
            "reconnects": max(self._connects - 1, 0),
            "gaps": sub.gaps if sub is not None else 0,
        }


# -- the embedded server ---------------------------------------------------------------------


class EmbeddedStreamSea(EmbeddedKind):
    """A definition's ``[servers.<name>] kind = "streamsea"``: its config (a path, relative to
    the definition, or an inline table), port and store."""

    config: StreamSeaConfig
    load = staticmethod(load_config)

    @staticmethod
    def parse(table: dict[str, Any], where: str, base_dir: Path | None) -> StreamSeaConfig:
        return parse_config(table, where, base_dir)

    def open(self) -> RunningServer:
        return serve(self.host, self.port, self.config, store_path=self.store)

    def check_stage(
        self,
        kind: str,
        params: Mapping[str, Any],
        section: str,
        peers: Sequence[tuple[str, Mapping[str, Any]]] = (),
    ) -> list[str]:
        """A ``streamsea`` source must read a stream the server's config defines, or one a
        ``streamsea_publish`` sink of the definition publishes to (it defines it)."""
        if kind != "streamsea":
            return []
        stream = params.get("stream")
        if not isinstance(stream, str) or not stream:
            return []  # the stage's own check says so
        defined = {s.name for s in self.config.streams}
        published = {
            p.get("stream") for k, p in peers if k == "streamsea_publish" and p.get("stream")
        }
        if stream in defined or stream in published:
            return []
        known = sorted(defined | {str(s) for s in published})
        return [
            f"stream: the server's config defines no stream {stream!r} and no "
            f"streamsea_publish sink of this definition publishes to it"
            + (f"; known: {', '.join(known)}" if known else "")
        ]

    def credentials(self, data_type: str = "", verb: str = "") -> tuple[str, str]:
        """``(client_id, secret)`` of the config's first client (every client may publish,
        define and subscribe to every stream)."""
        if not self.config.clients:
            raise ValueError(
                "the stream-sea server's config has no client; give client_id and secret"
            )
        client = self.config.clients[0]
        return client.id, client.secret

    def stage_params(self, params: dict[str, Any], section: str) -> dict[str, Any]:
        """``remote_host`` and ``remote_port``, and unless the stage names its own, the
        first client's ``client_id`` and ``client_secret``."""
        out = dict(params)
        out.setdefault("remote_host", self.host)
        out.setdefault("remote_port", self.port)
        if "client_id" not in out and "client_secret" not in out:
            out["client_id"], out["client_secret"] = self.credentials()
        return out


def plugin() -> Plugin:
    """What this adapter adds to pipelines (the ``actorwire.plugins`` entry point)."""
    return Plugin(
        "streamsea",
        sources={"streamsea": StreamSeaSource},
        sinks={"streamsea_publish": StreamSeaPublishSink},
        servers={
            "streamsea": server_kind(
                "streamsea",
                "stream-sea server",
                DEFAULT_PORT,
                EmbeddedStreamSea,
                lambda host, port, config, store, cert, key: serve(
                    host, port, config, store_path=store, certfile=cert, keyfile=key
                ),
            )
        },
    )
