"""The embedded platform's configuration: applications, permissions and schemas from TOML.

``load_config`` checks the whole file before anything starts and names the file and the key
path of the first error (``schemas[0].types[1].fields.bid: unknown field type ...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ...actors.tomlcheck import TomlChecker, kind_of, read_toml
from .protocol import FIELD_TYPES

__all__ = [
    "MAX_OUTBOX_BYTES",
    "STALL_DEADLINE",
    "AppConfig",
    "PlatformConfig",
    "TypeDef",
    "load_config",
    "min_outbox_bytes",
    "parse_config",
    "permits",
    "with_session_limits",
]

MAX_OUTBOX_BYTES = 32 << 20
"""Bytes a session's outbound queue may hold before the session is dropped (32 MiB)."""
STALL_DEADLINE = 10.0
"""Seconds a session may take nothing while data waits for it before it is dropped."""
_LARGEST_BATCH = 1 << 20  # the server's BATCH_BYTES: the most bytes one delivery packs

_PLATFORM_DEFAULTS: dict[str, Any] = {
    "name": "actorwire keysquare platform",
    "heartbeat_interval": 1.0,
    "heartbeat_deadline": 5.0,
    "max_record_bytes": 65536,
    "max_outbox_bytes": MAX_OUTBOX_BYTES,
    "stall_deadline": STALL_DEADLINE,
    "journal_bytes": 64 << 20,
    "journal_seconds": 600.0,
    "dedupe_window_bytes": 16 << 20,
    "dedupe_window_seconds": 600.0,
    "store_path": "",
}


def min_outbox_bytes(max_record_bytes: int) -> int:
    """The least ``max_outbox_bytes`` may be: room for two of the largest messages a session
    is sent (a 1 MiB delivery batch, or one record of ``max_record_bytes``)."""
    return 2 * max(_LARGEST_BATCH, max_record_bytes)


def permits(patterns: tuple[str, ...], schema: str, name: str) -> bool:
    """True when one of the permission patterns ("*", "Type", "schema.Type") covers the type."""
    return any(pattern in ("*", name, f"{schema}.{name}") for pattern in patterns)


@dataclass(frozen=True)
class AppConfig:
    """An application allowed to register, with its read and publish permissions."""

    name: str
    api_key: str
    read: tuple[str, ...] = ()
    publish: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"AppConfig(name={self.name!r}, api_key='[redacted]', read={self.read!r}, "
            f"publish={self.publish!r})"
        )

    def can_read(self, schema: str, name: str) -> bool:
        """True when this application may snapshot and subscribe to ``schema.name``."""
        return permits(self.read, schema, name)

    def can_publish(self, schema: str, name: str) -> bool:
        """True when this application may publish and edit ``schema.name``."""
        return permits(self.publish, schema, name)


@dataclass(frozen=True)
class TypeDef:
    """A data type: its schema, its name and its fields (field name -> field type)."""

    schema: str
    name: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        """``schema.name``."""
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class PlatformConfig:
    """The whole platform configuration (see default_config.toml for the shape)."""

    name: str
    heartbeat_interval: float
    heartbeat_deadline: float
    max_record_bytes: int
    store_path: str | None
    applications: dict[str, AppConfig]
    types: list[TypeDef]
    max_outbox_bytes: int = MAX_OUTBOX_BYTES
    """Bytes of serialized messages one session may have waiting to be written."""
    stall_deadline: float = STALL_DEADLINE
    """Seconds one session may take nothing from its waiting messages."""
    journal_bytes: int = 64 << 20
    """Bytes of accepted records kept for subscriptions that come back (they resume)."""
    journal_seconds: float = 600.0
    """Seconds an accepted record stays in the journal."""
    dedupe_window_bytes: int = 16 << 20
    """Bytes of publish ids remembered, so a retried publish is applied once."""
    dedupe_window_seconds: float = 600.0
    """Seconds a publish id is remembered."""


def _permissions(check: TomlChecker, value: Any, path: str) -> tuple[str, ...]:
    patterns = []
    for i, item in enumerate(check.array(value, path)):
        where = f"{path}[{i}]"
        text = check.string(item, where)
        parts = text.split(".")
        if text != "*" and (len(parts) > 2 or not all(p.strip() == p and p for p in parts)):
            raise check.fail(
                where, f"bad permission pattern {text!r} (expected '*', 'Type' or 'schema.Type')"
            )
        patterns.append(text)
    return tuple(patterns)


def _parse(check: TomlChecker, doc: Mapping[str, Any]) -> PlatformConfig:
    check.table(doc, "", ("platform", "applications", "schemas"))
    raw_platform = check.table(doc.get("platform", {}), "platform", tuple(_PLATFORM_DEFAULTS))
    platform = {**_PLATFORM_DEFAULTS, **raw_platform}
    name = check.string(platform["name"], "platform.name")
    if not name.strip():
        raise check.fail("platform.name", "must be a non-empty string")
    interval = check.positive(platform["heartbeat_interval"], "platform.heartbeat_interval")
    deadline = check.positive(platform["heartbeat_deadline"], "platform.heartbeat_deadline")
    if deadline <= interval:
        raise check.fail(
            "platform.heartbeat_deadline",
            f"must be greater than heartbeat_interval ({deadline!r} <= {interval!r})",
        )
    max_bytes = check.positive_int(platform["max_record_bytes"], "platform.max_record_bytes")
    least = min_outbox_bytes(max_bytes)
    if "max_outbox_bytes" in raw_platform:
        outbox = check.positive_int(platform["max_outbox_bytes"], "platform.max_outbox_bytes")
        if outbox < least:
            raise check.fail("platform.max_outbox_bytes", _outbox_expected(least, outbox))
    else:  # the default grows with the record limit
        outbox = max(MAX_OUTBOX_BYTES, least)
    stall = check.positive(platform["stall_deadline"], "platform.stall_deadline")
    journal_bytes = check.positive_int(platform["journal_bytes"], "platform.journal_bytes")
    journal_seconds = check.positive(platform["journal_seconds"], "platform.journal_seconds")
    dedupe_bytes = check.positive_int(
        platform["dedupe_window_bytes"], "platform.dedupe_window_bytes"
    )
    dedupe_seconds = check.positive(
        platform["dedupe_window_seconds"], "platform.dedupe_window_seconds"
    )
    store_path = check.string(platform["store_path"], "platform.store_path")

    applications: dict[str, AppConfig] = {}
    for i, raw in enumerate(check.array(doc.get("applications", []), "applications")):
        where = f"applications[{i}]"
        app = check.table(raw, where, ("name", "api_key", "read", "publish"))
        if "name" not in app:
            raise check.fail(f"{where}.name", "missing (every application needs a name)")
        app_name = check.name(app["name"], f"{where}.name")
        if app_name in applications:
            raise check.fail(f"{where}.name", f"duplicate application {app_name!r}")
        if "api_key" not in app:
            raise check.fail(f"{where}.api_key", f"missing for application {app_name!r}")
        api_key = check.string(app["api_key"], f"{where}.api_key")
        if not api_key:
            raise check.fail(f"{where}.api_key", f"empty for application {app_name!r}")
        applications[app_name] = AppConfig(
            name=app_name,
            api_key=api_key,
            read=_permissions(check, app.get("read", []), f"{where}.read"),
            publish=_permissions(check, app.get("publish", []), f"{where}.publish"),
        )

    types: list[TypeDef] = []
    schema_names: set[str] = set()
    for i, raw in enumerate(check.array(doc.get("schemas", []), "schemas")):
        where = f"schemas[{i}]"
        schema = check.table(raw, where, ("name", "types"))
        if "name" not in schema:
            raise check.fail(f"{where}.name", "missing (every schema needs a name)")
        schema_name = check.name(schema["name"], f"{where}.name")
        if schema_name in schema_names:
            raise check.fail(f"{where}.name", f"duplicate schema {schema_name!r}")
        schema_names.add(schema_name)
        type_names: set[str] = set()
        for j, raw_type in enumerate(check.array(schema.get("types", []), f"{where}.types")):
            twhere = f"{where}.types[{j}]"
            typ = check.table(raw_type, twhere, ("name", "fields"))
            if "name" not in typ:
                raise check.fail(f"{twhere}.name", "missing (every type needs a name)")
            type_name = check.name(typ["name"], f"{twhere}.name")
            if type_name in type_names:
                raise check.fail(f"{twhere}.name", f"duplicate type '{schema_name}.{type_name}'")
            type_names.add(type_name)
            raw_fields = typ.get("fields", {})
            if not isinstance(raw_fields, dict):
                raise check.fail(f"{twhere}.fields", f"must be a table, got {kind_of(raw_fields)}")
            fields: dict[str, str] = {}
            for fname, ftype in raw_fields.items():
                fwhere = f"{twhere}.fields.{fname}"
                if not fname.strip():
                    raise check.fail(fwhere, "field names must not be empty")
                if ftype not in FIELD_TYPES:
                    raise check.fail(
                        fwhere,
                        f"unknown field type {ftype!r} (expected one of {', '.join(FIELD_TYPES)})",
                    )
                fields[fname] = ftype
            types.append(TypeDef(schema_name, type_name, fields))

    return PlatformConfig(
        name=name,
        heartbeat_interval=interval,
        heartbeat_deadline=deadline,
        max_record_bytes=max_bytes,
        store_path=store_path or None,
        applications=applications,
        types=types,
        max_outbox_bytes=outbox,
        stall_deadline=stall,
        journal_bytes=journal_bytes,
        journal_seconds=journal_seconds,
        dedupe_window_bytes=dedupe_bytes,
        dedupe_window_seconds=dedupe_seconds,
    )


def _outbox_expected(least: int, got: object) -> str:
    return (
        f"must be an integer of at least {least} (twice the largest message a session is "
        f"sent: max(1 MiB, max_record_bytes)), got {got!r}"
    )


def with_session_limits(
    config: PlatformConfig,
    *,
    max_outbox_bytes: int | None = None,
    stall_deadline: float | None = None,
) -> PlatformConfig:
    """``config`` with these per-session limits instead of its own (None keeps its own).

    Raises ValueError naming the bad value and what was expected.
    """
    changes: dict[str, Any] = {}
    if max_outbox_bytes is not None:
        least = min_outbox_bytes(config.max_record_bytes)
        if (
            isinstance(max_outbox_bytes, bool)
            or not isinstance(max_outbox_bytes, int)
            or max_outbox_bytes < least
        ):
            raise ValueError("max_outbox_bytes " + _outbox_expected(least, max_outbox_bytes))
        changes["max_outbox_bytes"] = max_outbox_bytes
    if stall_deadline is not None:
        if (
            isinstance(stall_deadline, bool)
            or not isinstance(stall_deadline, int | float)
            or not stall_deadline > 0
        ):
            raise ValueError(f"stall_deadline must be seconds > 0, got {stall_deadline!r}")
        changes["stall_deadline"] = float(stall_deadline)
    return replace(config, **changes) if changes else config


def load_config(path: str | Path | None = None) -> PlatformConfig:
    """Read and check a platform config; ``None`` means the packaged default_config.toml.

    Raises ValueError naming the file and the key path of the first problem.
    """
    source, text, doc = read_toml(path, "actorwire.adapters.keysquare")
    return _parse(TomlChecker(source, text), doc)


def parse_config(doc: Mapping[str, Any], source: str = "<config>") -> PlatformConfig:
    """Check an already-parsed config table (one inline in a pipeline definition, say);
    errors name ``source`` and the key path as ``load_config``'s do."""
    return _parse(TomlChecker(source), doc)
