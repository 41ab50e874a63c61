"""What the kdb adapter adds to pipelines: the embedded Service Gateway as a server kind
(``[servers.x] kind = "kdb"`` in a definition, ``actorwire serve kdb``) and the
``kdb_upsert`` sink, which writes records into one of its topics.

The Service Gateway's websocket protocol has snap, subscribe and subsnap but no publish, so
``kdb_upsert`` writes into an embedded gateway in the same process (``server = "x"`` naming
a ``[servers.x] kind = "kdb"``, or a :class:`~.server.GatewayServer` handed in as
``gateway``); its subscribers get the rows at their next batched update.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...pipelines.plugins import EmbeddedKind, Plugin, RunningServer, server_kind
from ...pipelines.stage import Sink
from .config import GatewayConfig, load_config, parse_config
from .server import DEFAULT_PORT, GatewayServer, serve
from .topics import Columns, LimitError, TopicError, TopicSpec

if TYPE_CHECKING:
    from ...pipelines.stage import StageContext

__all__ = ["TIME_UNITS", "EmbeddedGateway", "KdbUpsertSink", "plugin"]

TIME_UNITS: Mapping[str, int] = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
"""Nanoseconds per unit of a number bound for a timestamp column (``time_unit``)."""

_NO_PUBLISH = (
    "the Service Gateway's websocket protocol has no publish (only snap, subscribe and "
    'subsnap), so kdb_upsert writes only into an embedded gateway: give server = "<name>" '
    'naming a [servers.<name>] kind = "kdb" in a definition, or gateway=<a GatewayServer>'
)


class EmbeddedGateway(EmbeddedKind):
    """A definition's ``[servers.<name>] kind = "kdb"``: its config (a path, relative to the
    definition, or an inline table) and port. The gateway keeps no store.

    An inline config that gives no ``tokens`` (and leaves auth on) takes the packaged
    config's (``demo-token``), so ``config = { topics = [...] }`` alone declares topics.
    Stages with ``server = "<name>"`` get this object as ``gateway`` (the running
    :class:`GatewayServer` is its ``server`` once the definition has started)."""

    config: GatewayConfig
    load = staticmethod(load_config)

    @staticmethod
    def parse(table: dict[str, Any], where: str, base_dir: Path | None) -> GatewayConfig:
        gateway = table.get("gateway", {})
        if (
            isinstance(gateway, dict)
            and "tokens" not in gateway
            and gateway.get("auth") is not False
        ):
            # No token given: the packaged config's (demo-token), so that a config of topics
            # alone serves clients.
            table = {**table, "gateway": {**gateway, "tokens": list(load_config(None).tokens)}}
        return parse_config(table, where)

    def __repr__(self) -> str:
        return f"EmbeddedGateway({self.url})"

    def open(self) -> RunningServer:
        return serve(self.host, self.port, self.config)

    def credentials(self, data_type: str = "", verb: str = "") -> tuple[str, str]:
        """``("", token)``: the config's first bearer token (every token may snap and
        subscribe to every topic); ``("", "")`` when auth is off and there is no token."""
        if self.config.tokens:
            return "", self.config.tokens[0]
        if not self.config.auth:
            return "", ""
        raise ValueError("the kdb gateway's config has no token; give the token")

    def stage_params(self, params: dict[str, Any], section: str) -> dict[str, Any]:
        """``gateway``: this server (the stage reads the running gateway from it at start,
        since the servers start after the stages are built)."""
        out = dict(params)
        out.setdefault("gateway", self)
        return out


def _fields(owner: str, fields: object) -> dict[str, str] | None:
    """``fields`` as ``{record field: column}`` (None: every column, same names)."""
    if fields is None:
        return None
    if isinstance(fields, Mapping):
        pairs = list(fields.items())
    elif isinstance(fields, Sequence) and not isinstance(fields, str):
        pairs = [(name, name) for name in fields]
    else:
        raise TypeError(
            f"{owner}: fields must be a list of column names or a table of record field = "
            f'"column", got {fields!r}'
        )
    if not pairs or not all(
        isinstance(f, str) and f and isinstance(c, str) and c for f, c in pairs
    ):
        raise ValueError(
            f"{owner}: fields must name at least one record field and column, as non-empty "
            f"strings, got {fields!r}"
        )
    columns = [c for _, c in pairs]
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise ValueError(f"{owner}: fields writes column(s) {', '.join(map(repr, twice))} twice")
    return dict(pairs)


class KdbUpsertSink(Sink):
    """``kdb_upsert``: upserts each batch of records into ``topic`` of an embedded gateway,
    as one column dict (rows in order; a later row with the same key wins).

    ``fields`` maps record fields to the topic's columns: a table ``{field = "column"}``, a
    list of names (the same in both), or None (every column of the topic, same names; other
    record fields are left out). A record lacking a mapped field, or one the topic refuses
    (a value of the wrong type, a new key without every column, a limit passed: TopicError
    or LimitError), is counted as failed with the reason; the rest of its batch is written.
    Numbers bound for a timestamp column are epoch ``time_unit`` (``"s"``, as pipelines'
    event times are; ``"ms"``, ``"us"``, ``"ns"``); ISO 8601 text and datetimes pass as
    they are.

    ``gateway`` is a :class:`GatewayServer`, or an object whose ``server`` is one once
    started (what ``server = "x"`` hands in: a definition's embedded gateway). There is no
    ``url``: the Service Gateway protocol has no publish (see the module docstring).
    ``stats()`` counts ``upserted`` (rows written) and ``batches``.
    """

    def __init__(
        self,
        topic: str,
        fields: Sequence[str] | Mapping[str, str] | None = None,
        time_unit: str = "s",
        gateway: Any = None,
        url: str | None = None,
    ) -> None:
        owner = "kdb_upsert"
        if url is not None:
            raise ValueError(f"{owner}: cannot write to url {url!r}: {_NO_PUBLISH}")
        if gateway is None:
            raise ValueError(f"{owner}: no gateway: {_NO_PUBLISH}")
        if not isinstance(gateway, GatewayServer) and not hasattr(gateway, "server"):
            raise TypeError(
                f"{owner}: gateway must be a GatewayServer or an embedded kdb server "
                f'(server = "<name>"), got {gateway!r}'
            )
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"{owner}: topic must be a topic's name, got {topic!r}")
        if time_unit not in TIME_UNITS:
            raise ValueError(
                f"{owner}: time_unit must be one of {', '.join(TIME_UNITS)}, got {time_unit!r}"
            )
        self._owner = owner
        self._topic = topic
        self._gateway = gateway
        self._given = _fields(owner, fields)
        self._ns = TIME_UNITS[time_unit]
        self._server: GatewayServer | None = None
        self._ctx: StageContext | None = None
        self._map: tuple[tuple[str, str], ...] = ()  # (record field, column) in column order
        self._timestamps: frozenset[str] = frozenset()
        self._upserted = 0
        self._batches = 0
        config = getattr(gateway, "config", None)
        if isinstance(config, GatewayConfig):
            self._plan(config)  # the config is known before the server runs: check now

    def __repr__(self) -> str:
        return f"KdbUpsertSink(topic={self._topic!r})"

    def _plan(self, config: GatewayConfig) -> None:
        """The (field, column) pairs for ``config``'s topic; ValueError naming what does not
        fit (an unknown topic or column, a key column left out)."""
        owner = self._owner
        spec: TopicSpec | None = config.topic(self._topic)
        if spec is None:
            known = ", ".join(repr(t.name) for t in config.topics) or "none"
            raise ValueError(
                f"{owner}: topic {self._topic!r} is not one of the gateway's topics ({known})"
            )
        names = [c.name for c in spec.columns]
        if self._given is None:
            pairs = [(name, name) for name in names]
        else:
            unknown = [c for c in self._given.values() if c not in names]
            if unknown:
                raise ValueError(
                    f"{owner}: fields names column(s) {', '.join(map(repr, unknown))} that "
                    f"topic {self._topic!r} lacks (columns: {', '.join(names)})"
                )
            keys = [c.name for c in spec.keys if c.name not in self._given.values()]
            if keys:
                raise ValueError(
                    f"{owner}: fields leaves out key column(s) {', '.join(map(repr, keys))} of "
                    f"topic {self._topic!r}: every row needs its key"
                )
            by_column = {c: f for f, c in self._given.items()}
            pairs = [(by_column[name], name) for name in names if name in by_column]
        self._map = tuple(pairs)
        self._timestamps = frozenset(c.name for c in spec.columns if c.type == "timestamp")

    def start(self, ctx: StageContext) -> None:
        gateway = self._gateway
        server = gateway if isinstance(gateway, GatewayServer) else gateway.server
        if not isinstance(server, GatewayServer):
            raise RuntimeError(
                f"{self._owner}: the embedded gateway {gateway!r} is not running: start it "
                f"before the pipeline (a definition starts its servers before its stages)"
            )
        self._plan(server.config)
        self._server = server
        self._ctx = ctx

    def _row(self, record: Any) -> tuple[Any, ...]:
        """The record's values in column order; ValueError naming the missing fields."""
        if not isinstance(record, Mapping):
            raise ValueError(
                f"kdb_upsert: a record must be a dict of fields, got {type(record).__name__}"
            )
        missing = [f for f, _ in self._map if f not in record]
        if missing:
            raise ValueError(
                f"kdb_upsert: record has no field(s) {', '.join(map(repr, missing))} for "
                f"topic {self._topic!r}"
            )
        stamps = self._timestamps
        return tuple(self._ns_of(record[f]) if c in stamps else record[f] for f, c in self._map)

    def _ns_of(self, value: Any) -> Any:
        """A number of ``time_unit`` as an int of ns; anything else as it is (the topic
        checks it)."""
        if isinstance(value, bool) or not isinstance(value, Real):
            return value
        if isinstance(value, int):
            return value * self._ns
        number = float(value)
        if not math.isfinite(number):
            return value
        # Through the float's shortest text: 1700000000.15 s is ...150000000 ns, not the
        # ...150000128 that multiplying the binary float gives.
        return int((Decimal(repr(number)) * self._ns).to_integral_value())

    def _columns(self, rows: list[tuple[Any, ...]]) -> Columns:
        return {c: [row[i] for row in rows] for i, (_, c) in enumerate(self._map)}

    def write(self, records: list[Any], now: float) -> None:
        server, ctx = self._server, self._ctx
        assert server is not None and ctx is not None
        kept: list[tuple[Any, tuple[Any, ...]]] = []
        for record in records:
            try:
                kept.append((record, self._row(record)))
            except ValueError as exc:
                ctx.record_failed(record, exc)
        if not kept:
            return
        self._batches += 1
        try:
            server.upsert(self._topic, self._columns([row for _, row in kept]))
        except (TopicError, LimitError):
            # The batch is refused whole: write it row by row so only the bad rows fail.
            for record, row in kept:
                try:
                    server.upsert(self._topic, self._columns([row]))
                except (TopicError, LimitError) as exc:
                    ctx.record_failed(record, exc)
                else:
                    self._upserted += 1
            return
        self._upserted += len(kept)

    def stop(self) -> None:
        self._server = None

    def stats(self) -> dict[str, int]:
        return {"upserted": self._upserted, "batches": self._batches}


def plugin() -> Plugin:
    """What this adapter adds to pipelines (the ``actorwire.plugins`` entry point)."""
    return Plugin(
        "kdb",
        sinks={"kdb_upsert": KdbUpsertSink},
        servers={
            "kdb": server_kind(
                "kdb",
                "kdb Insights gateway",
                DEFAULT_PORT,
                EmbeddedGateway,
                lambda host, port, config, store, cert, key: serve(
                    host, port, config, certfile=cert, keyfile=key
                ),
            )
        },
    )
