"""The embedded stream-sea server's configuration: clients, predefined streams and limits, from
TOML.

``load_config`` checks the whole file before anything starts and names the file, the line
and the key path of the first error (``demo.toml:14: limits.ping_interval: must be at most 30
(the spec asks for a ping at least every 30 s), got 45.0``). Secrets never appear in reprs or
errors; a JWT public key is read and checked here, so a bad one fails at load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ...actors.tomlcheck import TomlChecker, kind_of, read_toml
from .schema import SchemaDefinition

__all__ = [
    "MAX_PING_INTERVAL",
    "ClientConfig",
    "StreamSeaConfig",
    "load_config",
    "parse_config",
    "schema_version",
]

MAX_PING_INTERVAL = 30.0
"""The spec: the server pings each websocket at least every 30 seconds."""

_LIMITS: dict[str, Any] = {
    "max_log_bytes": 64 << 20,
    "max_streams": 1024,
    "max_groups": 4096,
    "rejoin_grace": 10.0,
    "group_ttl": 600.0,
    "ping_interval": 20.0,
    "ping_timeout": 60.0,
    "auth_timeout": 10.0,
    "max_message_size": 1 << 20,
    "max_body_bytes": 1 << 20,
    "max_subscriptions": 1024,
}
_CLIENT_KEYS = ("id", "secret", "jwt_public_key", "jwt_public_key_file")
_STREAM_KEYS = ("name", "version", "fields")


@dataclass(frozen=True)
class ClientConfig:
    """A client that may connect: its id, its secret (Basic auth over HTTP and the
    websocket), and the PEM public key its JWTs verify against (None: no JWT login)."""

    id: str
    secret: str = field(repr=False)
    jwt_public_key: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        jwt = ", jwt_public_key=<PEM>" if self.jwt_public_key is not None else ""
        return f"ClientConfig(id={self.id!r}, secret=***{jwt})"


@dataclass(frozen=True)
class StreamSeaConfig:
    """The whole server configuration (see default_config.toml for the shape)."""

    clients: tuple[ClientConfig, ...] = ()
    streams: tuple[SchemaDefinition, ...] = ()
    """Streams defined at start (their schemas)."""
    max_log_bytes: int = 64 << 20
    """Bytes of each stream's log (entries cost their size plus an overhead): what a consumer
    group resumes from after a reconnect."""
    max_streams: int = 1024
    """Streams the server holds, defined or subscribed to."""
    max_groups: int = 4096
    """Consumer groups per stream."""
    rejoin_grace: float = 10.0
    """Seconds a dropped member has to come back before what it was sent goes to another."""
    group_ttl: float = 600.0
    """Seconds a consumer group without members is kept."""
    ping_interval: float = 20.0
    """Seconds between the pings each websocket gets (at most 30, the spec's bound)."""
    ping_timeout: float = 60.0
    """A websocket that sends nothing (no pong either) this long is closed."""
    auth_timeout: float = 10.0
    """Seconds a websocket has to authenticate."""
    max_message_size: int = 1 << 20
    """The largest websocket message a client may send; a larger one closes with 1009."""
    max_body_bytes: int = 1 << 20
    """The largest HTTP request body, as sent and once inflated; a larger one is a 413."""
    max_subscriptions: int = 1024
    """Live subscriptions per websocket."""

    def client(self, client_id: str) -> ClientConfig | None:
        """The client with id ``client_id``, None if there is none."""
        for client in self.clients:
            if client.id == client_id:
                return client
        return None


def schema_version(version: int | str) -> int:
    """A schema's version as the number the versions vector carries: an int, or the digits of
    one as a string; ValueError otherwise."""
    if isinstance(version, bool):
        raise ValueError(f"schema version must be an integer, got {version!r}")
    if isinstance(version, int):
        return version
    if isinstance(version, str) and version.isascii() and version.strip().isdigit():
        return int(version)
    raise ValueError(f"schema version must be an integer (or its digits), got {version!r}")


def _required(check: TomlChecker, table: Mapping[str, Any], where: str, key: str) -> Any:
    if key not in table:
        raise check.fail(f"{where}.{key}", "missing")
    return table[key]


def _limits(check: TomlChecker, doc: Mapping[str, Any]) -> dict[str, Any]:
    raw = check.table(doc.get("limits", {}), "limits", tuple(_LIMITS))
    settings = {**_LIMITS, **raw}
    out: dict[str, Any] = {}
    for key in ("rejoin_grace", "group_ttl", "ping_interval", "ping_timeout", "auth_timeout"):
        out[key] = check.positive(settings[key], f"limits.{key}")
    for key in ("max_log_bytes", "max_streams", "max_groups", "max_subscriptions"):
        out[key] = check.positive_int(settings[key], f"limits.{key}")
    for key in ("max_message_size", "max_body_bytes"):
        out[key] = check.integer(settings[key], f"limits.{key}", minimum=1024)
    if out["ping_interval"] > MAX_PING_INTERVAL:
        raise check.fail(
            "limits.ping_interval",
            f"must be at most {MAX_PING_INTERVAL:g} (the spec asks for a ping at least every "
            f"30 s), got {out['ping_interval']!r}",
        )
    if out["ping_timeout"] <= out["ping_interval"]:
        raise check.fail(
            "limits.ping_timeout",
            f"must be greater than ping_interval "
            f"({out['ping_timeout']!r} <= {out['ping_interval']!r})",
        )
    if out["group_ttl"] < out["rejoin_grace"]:
        raise check.fail(
            "limits.group_ttl",
            f"must be at least rejoin_grace ({out['group_ttl']!r} < {out['rejoin_grace']!r}): "
            f"a group must outlive the grace its dropped members have",
        )
    return out


def _public_key(
    check: TomlChecker, table: Mapping[str, Any], where: str, base_dir: Path | None
) -> str | None:
    inline, path = table.get("jwt_public_key"), table.get("jwt_public_key_file")
    if inline is not None and path is not None:
        raise check.fail(
            f"{where}.jwt_public_key_file", "give jwt_public_key or jwt_public_key_file, not both"
        )
    if inline is None and path is None:
        return None
    if inline is not None:
        key_path = f"{where}.jwt_public_key"
        pem = check.string(inline, key_path)
    else:
        key_path = f"{where}.jwt_public_key_file"
        name = Path(check.string(path, key_path))
        file = name if name.is_absolute() or base_dir is None else base_dir / name
        try:
            pem = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise check.fail(key_path, f"cannot read {str(file)!r}: {reason}") from None
    try:
        key = load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # Never the text: only what was expected.
        raise check.fail(key_path, "is not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
    if not isinstance(key, RSAPublicKey):
        raise check.fail(
            key_path, f"must be an RSA public key (JWTs are RS512 or RS256), got {_key_kind(key)}"
        )
    return pem


def _key_kind(key: object) -> str:
    return type(key).__name__.lstrip("_").replace("PublicKey", " key")


def _clients(
    check: TomlChecker, doc: Mapping[str, Any], base_dir: Path | None
) -> tuple[ClientConfig, ...]:
    clients: list[ClientConfig] = []
    ids: dict[str, str] = {}
    for i, raw in enumerate(check.array(doc.get("clients", []), "clients")):
        where = f"clients[{i}]"
        table = check.table(raw, where, _CLIENT_KEYS)
        client_id = check.string(_required(check, table, where, "id"), f"{where}.id")
        if not client_id.strip() or ":" in client_id:
            raise check.fail(
                f"{where}.id",
                f"must be a non-empty string without ':' (Basic auth splits on it), "
                f"got {client_id!r}",
            )
        if client_id in ids:
            raise check.fail(f"{where}.id", f"duplicate client id {client_id!r} ({ids[client_id]})")
        ids[client_id] = where
        secret = check.string(_required(check, table, where, "secret"), f"{where}.secret")
        if not secret:  # never echo a secret, even a bad one
            raise check.fail(f"{where}.secret", f"empty for client {client_id!r}")
        key = _public_key(check, table, where, base_dir)
        clients.append(ClientConfig(client_id, secret, key))
    return tuple(clients)


def _streams(check: TomlChecker, doc: Mapping[str, Any]) -> tuple[SchemaDefinition, ...]:
    streams: list[SchemaDefinition] = []
    names: dict[str, str] = {}
    for i, raw in enumerate(check.array(doc.get("streams", []), "streams")):
        where = f"streams[{i}]"
        table = check.table(raw, where, _STREAM_KEYS)
        name = check.string(_required(check, table, where, "name"), f"{where}.name")
        if not name:
            raise check.fail(f"{where}.name", "must be a non-empty string")
        if name in names:
            raise check.fail(f"{where}.name", f"duplicate stream {name!r} ({names[name]})")
        names[name] = where
        version = _required(check, table, where, "version")
        try:
            schema_version(version)
        except ValueError:
            raise check.fail(
                f"{where}.version", f"must be an integer, got {kind_of(version)} {version!r}"
            ) from None
        fields = _required(check, table, where, "fields")
        try:
            schema = SchemaDefinition.from_json(
                {"name": name, "version": version, "fields": fields}
            )
        except ValueError as exc:
            raise check.fail(f"{where}.fields", str(exc)) from None
        streams.append(schema)
    return tuple(streams)


def _parse(check: TomlChecker, doc: Mapping[str, Any], base_dir: Path | None) -> StreamSeaConfig:
    check.table(doc, "", ("limits", "clients", "streams"))
    limits = _limits(check, doc)
    clients = _clients(check, doc, base_dir)
    streams = _streams(check, doc)
    if len(streams) > limits["max_streams"]:
        raise check.fail("streams", f"defines {len(streams)} streams, over limits.max_streams")
    return StreamSeaConfig(clients=clients, streams=streams, **limits)


def load_config(path: str | Path | None = None) -> StreamSeaConfig:
    """Read and check a server config; ``None`` means the packaged default_config.toml.

    Raises ValueError (a ``TomlError``) naming the file, the line when known and the key
    path of the first problem. A ``jwt_public_key_file`` is read relative to the file.
    """
    source, text, doc = read_toml(path, "actorwire.adapters.streamsea")
    base_dir = Path(path).parent if path is not None else None
    return _parse(TomlChecker(source, text), doc, base_dir)


def parse_config(
    doc: Mapping[str, Any], source: str = "<config>", base_dir: str | Path | None = None
) -> StreamSeaConfig:
    """Check an already-parsed config table (one inline in a pipeline definition, say);
    errors name ``source`` and the key path as ``load_config``'s do. A
    ``jwt_public_key_file`` is read relative to ``base_dir`` (the working directory when
    None)."""
    return _parse(TomlChecker(source), doc, None if base_dir is None else Path(base_dir))
