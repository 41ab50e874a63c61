"""The embedded Service Gateway's configuration: the bearer tokens it accepts, its topics
(keyed tables and the rows they start with), the update interval and limits, from TOML.

``load_config`` checks the whole file before anything starts and names the file, the line
and the key path of the first error (``demo.toml:21: topics[0].rows[1].val: must be a float
(a finite number), got str 'x'``). Tokens never appear in reprs or errors.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ...actors.tomlcheck import TomlChecker, kind_of, read_toml
from .topics import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    DEFAULT_UPDATE_INTERVAL,
    Column,
    LimitError,
    Topics,
    TopicSpec,
    check_type,
    coerce_value,
)

__all__ = ["GatewayConfig", "load_config", "parse_config"]

_GATEWAY: dict[str, Any] = {
    "auth": True,
    "tokens": [],
    "update_interval": DEFAULT_UPDATE_INTERVAL,
}
_LIMITS: dict[str, Any] = {
    "max_message_size": 16 << 20,
    "snap_chunk_bytes": 1 << 20,
    "max_rows_per_topic": DEFAULT_MAX_ROWS,
    "max_data_bytes": DEFAULT_MAX_BYTES,
    "max_subscriptions": 1024,
    "max_outbox_bytes": 64 << 20,
    "ping_interval": 20.0,
    "ping_timeout": 60.0,
}
_TOPIC_KEYS = ("name", "keys", "values", "rows")


@dataclass(frozen=True)
class GatewayConfig:
    """The whole gateway configuration (see default_config.toml for the shape)."""

    tokens: tuple[str, ...] = field(default=(), repr=False)
    """Bearer tokens a client may connect with (``Sec-WebSocket-Protocol: Bearer <token>``)."""
    auth: bool = True
    """False: every client is let in, with or without a token (the spec's "authorization
    has been disabled")."""
    topics: tuple[TopicSpec, ...] = ()
    update_interval: float = DEFAULT_UPDATE_INTERVAL
    """Seconds between a subscription's updates (the spec's gateway: 5)."""
    max_message_size: int = 16 << 20
    """The largest websocket message a client may send; a larger one closes with 1009."""
    snap_chunk_bytes: int = 1 << 20
    """Bytes of row data a snapshot is encoded in at a time, so that a large snap does not
    hold up other connections (at most ``max_message_size``)."""
    max_rows_per_topic: int = DEFAULT_MAX_ROWS
    """Rows a topic may hold; an upsert past it is refused."""
    max_data_bytes: int = DEFAULT_MAX_BYTES
    """Bytes every topic's rows may take together (an estimate); an upsert past it is
    refused."""
    max_subscriptions: int = 1024
    """Live subscriptions per connection."""
    max_outbox_bytes: int = 64 << 20
    """Bytes waiting to be sent to one connection; past it the reader is too slow and its
    connection is closed (at least ``max_message_size``)."""
    ping_interval: float = 20.0
    """Seconds between the pings each websocket gets."""
    ping_timeout: float = 60.0
    """A websocket that sends nothing (no pong either) this long is closed."""

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name != "tokens"
        )
        return f"GatewayConfig(tokens=<{len(self.tokens)} hidden>, {shown})"

    def accepts(self, token: str | None) -> bool:
        """True when a client with ``token`` (None: none given) may connect: auth is off,
        or the token is one of ``tokens`` (compared in constant time)."""
        if not self.auth:
            return True
        if token is None:
            return False
        given = token.encode("utf-8", "surrogateescape")
        found = False
        for accepted in self.tokens:
            found |= hmac.compare_digest(given, accepted.encode("utf-8"))
        return found

    def topic(self, name: str) -> TopicSpec | None:
        """The topic named ``name``, None if there is none."""
        for spec in self.topics:
            if spec.name == name:
                return spec
        return None

    def new_topics(self, now: float = 0.0) -> Topics:
        """A fresh :class:`Topics` with this config's topics, rows, interval and bounds."""
        return Topics(
            self.topics,
            update_interval=self.update_interval,
            max_rows=self.max_rows_per_topic,
            max_bytes=self.max_data_bytes,
            now=now,
        )


def _gateway(check: TomlChecker, doc: Mapping[str, Any]) -> dict[str, Any]:
    raw = check.table(doc.get("gateway", {}), "gateway", tuple(_GATEWAY))
    settings = {**_GATEWAY, **raw}
    auth = check.boolean(settings["auth"], "gateway.auth")
    tokens: list[str] = []
    for i, token in enumerate(check.array(settings["tokens"], "gateway.tokens")):
        path = f"gateway.tokens[{i}]"
        # Never echo a token, even a bad one: say only what was expected.
        if not isinstance(token, str):
            raise check.fail(path, f"must be a string, got {kind_of(token)}")
        if not token or not token.isascii() or not token.isprintable():
            raise check.fail(path, "must be non-empty printable ASCII")
        if any(c in token for c in " ,"):
            raise check.fail(
                path,
                "must not hold a space or a comma (it rides in Sec-WebSocket-Protocol as "
                "'Bearer <token>')",
            )
        if token in tokens:
            raise check.fail(path, f"the same token as gateway.tokens[{tokens.index(token)}]")
        tokens.append(token)
    if auth and not tokens:
        raise check.fail(
            "gateway.tokens",
            "no token is given, so no client could connect (give one, or set auth = false)",
        )
    interval = check.positive(settings["update_interval"], "gateway.update_interval")
    return {"auth": auth, "tokens": tuple(tokens), "update_interval": interval}


def _limits(check: TomlChecker, doc: Mapping[str, Any]) -> dict[str, Any]:
    raw = check.table(doc.get("limits", {}), "limits", tuple(_LIMITS))
    settings = {**_LIMITS, **raw}
    out: dict[str, Any] = {}
    for key in ("ping_interval", "ping_timeout"):
        out[key] = check.positive(settings[key], f"limits.{key}")
    for key in ("max_rows_per_topic", "max_data_bytes", "max_subscriptions"):
        out[key] = check.positive_int(settings[key], f"limits.{key}")
    for key in ("max_message_size", "snap_chunk_bytes", "max_outbox_bytes"):
        out[key] = check.integer(settings[key], f"limits.{key}", minimum=1024)
    if out["ping_timeout"] <= out["ping_interval"]:
        raise check.fail(
            "limits.ping_timeout",
            f"must be greater than ping_interval "
            f"({out['ping_timeout']!r} <= {out['ping_interval']!r})",
        )
    if out["snap_chunk_bytes"] > out["max_message_size"]:
        raise check.fail(
            "limits.snap_chunk_bytes",
            f"must be at most max_message_size "
            f"({out['snap_chunk_bytes']} > {out['max_message_size']})",
        )
    if out["max_outbox_bytes"] < out["max_message_size"]:
        raise check.fail(
            "limits.max_outbox_bytes",
            f"must be at least max_message_size, so that one whole message fits "
            f"({out['max_outbox_bytes']} < {out['max_message_size']})",
        )
    return out


def _columns(
    check: TomlChecker, raw: Any, where: str, taken: Mapping[str, str]
) -> tuple[Column, ...]:
    """``{column = "type", ...}`` in the file's order."""
    if not isinstance(raw, dict):
        raise check.fail(where, f'must be a table of column = "type", got {kind_of(raw)}')
    columns: list[Column] = []
    for name, type_name in raw.items():
        path = f"{where}.{name}"
        if not name.strip():
            raise check.fail(path, "a column's name must be a non-empty string")
        if name in taken:
            raise check.fail(path, f"duplicate column {name!r} (a {taken[name]} column has it)")
        try:
            check_type(type_name, f"column {name!r}")
        except ValueError as exc:
            raise check.fail(path, str(exc).removeprefix(f"column {name!r}: ")) from None
        columns.append(Column(name, type_name))
    return tuple(columns)


def _rows(
    check: TomlChecker, raw: Any, where: str, keys: tuple[Column, ...], values: tuple[Column, ...]
) -> tuple[dict[str, Any], ...]:
    """The starting rows, each with every column, values in their canonical form."""
    columns = (*keys, *values)
    names = tuple(c.name for c in columns)
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[Any, ...], str] = {}
    for i, raw_row in enumerate(check.array(raw, where)):
        rwhere = f"{where}[{i}]"
        table = check.table(raw_row, rwhere, names)
        row: dict[str, Any] = {}
        for column in columns:
            path = f"{rwhere}.{column.name}"
            if column.name not in table:
                raise check.fail(path, f"missing (a row gives every column: {', '.join(names)})")
            try:
                row[column.name] = coerce_value(column.type, table[column.name])
            except ValueError as exc:
                raise check.fail(path, str(exc)) from None
        key = tuple(row[c.name] for c in keys)
        if key in seen:
            raise check.fail(rwhere, f"duplicate key {key!r} ({seen[key]} has it)")
        seen[key] = rwhere
        rows.append(row)
    return tuple(rows)


def _topics(check: TomlChecker, doc: Mapping[str, Any]) -> tuple[TopicSpec, ...]:
    topics: list[TopicSpec] = []
    names: dict[str, str] = {}
    for i, raw in enumerate(check.array(doc.get("topics", []), "topics")):
        where = f"topics[{i}]"
        table = check.table(raw, where, _TOPIC_KEYS)
        if "name" not in table:
            raise check.fail(f"{where}.name", "missing")
        name = check.string(table["name"], f"{where}.name")
        if not name.strip():
            raise check.fail(f"{where}.name", "must be a non-empty string")
        if name in names:
            raise check.fail(f"{where}.name", f"duplicate topic {name!r} ({names[name]})")
        names[name] = where
        if "keys" not in table:
            raise check.fail(
                f"{where}.keys",
                'missing (a topic is a keyed table: keys = { column = "type" }, types: '
                "symbol, string, float, long, int, boolean, timestamp)",
            )
        keys = _columns(check, table["keys"], f"{where}.keys", {})
        if not keys:
            raise check.fail(f"{where}.keys", "a topic needs at least one key column")
        values = _columns(
            check, table.get("values", {}), f"{where}.values", {c.name: "key" for c in keys}
        )
        rows = _rows(check, table.get("rows", []), f"{where}.rows", keys, values)
        topics.append(TopicSpec(name, keys, values, rows))
    return tuple(topics)


def _parse(check: TomlChecker, doc: Mapping[str, Any]) -> GatewayConfig:
    check.table(doc, "", ("gateway", "limits", "topics"))
    gateway = _gateway(check, doc)
    limits = _limits(check, doc)
    topics = _topics(check, doc)
    config = GatewayConfig(topics=topics, **gateway, **limits)
    try:
        config.new_topics()  # the starting rows within max_rows_per_topic and max_data_bytes
    except LimitError as exc:
        raise check.fail(
            "topics",
            (
                "the starting rows do not fit limits.max_rows_per_topic and "
                f"limits.max_data_bytes: {exc}"
            ),
        ) from None
    return config


def load_config(path: str | Path | None = None) -> GatewayConfig:
    """Read and check a gateway config; ``None`` means the packaged default_config.toml.

    Raises ValueError (a ``TomlError``) naming the file, the line when known and the key
    path of the first problem.
    """
    source, text, doc = read_toml(path, "actorwire.adapters.kdb")
    return _parse(TomlChecker(source, text), doc)


def parse_config(doc: Mapping[str, Any], source: str = "<config>") -> GatewayConfig:
    """Check an already-parsed config table (one inline in a pipeline definition, say);
    errors name ``source`` and the key path as ``load_config``'s do."""
    return _parse(TomlChecker(source), doc)
