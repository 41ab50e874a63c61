"""Plugins: how adapters give pipelines their sources, sinks and embedded servers.

Pipelines name no adapter. An adapter package declares an entry point in the
``actorwire.plugins`` group whose object is a function returning a :class:`Plugin`; its
source and sink kinds then resolve by name like the built-in ones (``kind = "keysquare"``),
its server kinds serve ``[servers.x] kind = "..."`` in definitions and ``actorwire serve
KIND``. Plugins load on first use of a kind that is not built in, so ``import
actorwire.pipelines`` loads no adapter (nor its dependencies). A plugin that fails to load
is reported, with its error, wherever one of its kinds is looked for.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, TypeVar

import structlog

__all__ = [
    "ENTRY_POINT_GROUP",
    "EmbeddedKind",
    "EmbeddedServer",
    "KindRegistry",
    "Plugin",
    "ServerKind",
    "plugin_errors",
    "plugins",
    "server_kind",
    "server_kinds",
]

ENTRY_POINT_GROUP = "actorwire.plugins"

T = TypeVar("T")

log = structlog.get_logger("actorwire.plugins")


class EmbeddedServer(Protocol):
    """A running (or ready to run) embedded server of a definition's ``[servers.x]``."""

    @property
    def url(self) -> str:
        """``host:port`` the definition's stages connect to."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def credentials(self, data_type: str, verb: str) -> tuple[str, str]:
        """``(application_name, api_key)`` of the first application of the server's config
        that may ``verb`` ("read" or "publish") ``data_type``; ValueError if none may (or
        the kind has no credentials)."""
        ...

    def check_stage(
        self,
        kind: str,
        params: Mapping[str, Any],
        section: str,
        peers: Sequence[tuple[str, Mapping[str, Any]]] = (),
    ) -> list[str]:
        """What the server's config says is wrong with a stage that names it (a data type,
        topic or stream it does not have): one message per problem, each starting with the
        parameter it is about (``"data_type: ..."``); empty when all is well. ``peers`` are
        the ``(kind, params)`` of every stage of the definition that names this server (a
        sink may define what a source reads)."""
        ...

    def stage_params(self, params: dict[str, Any], section: str) -> dict[str, Any]:
        """The parameters of a stage with ``server = "<this>"`` (``server`` taken out),
        completed with what the stage needs to reach this server; ``section`` is
        ``"sources"`` or ``"sinks"``. ValueError when the server cannot serve the stage."""
        ...


@dataclass(frozen=True)
class ServerKind:
    """One kind of embedded server an adapter offers.

    ``check_config(table, where)`` raises ValueError (``"<where>.<key>: <problem>"``) for a
    bad inline config; ``build(host, port, config, store, base_dir)`` returns an
    :class:`EmbeddedServer` not yet started (``config`` is a path, an inline table or None
    for the default; ``port`` is settled); ``serve(args, stop)`` runs ``actorwire serve
    KIND`` until ``stop`` is set and returns an exit code.
    """

    name: str
    default_port: int
    check_config: Callable[[Mapping[str, Any], str], None]
    build: Callable[[str, int, str | Mapping[str, Any] | None, str | None, Path], EmbeddedServer]
    serve: Callable[[argparse.Namespace, threading.Event], int] | None = None


@dataclass(frozen=True)
class Plugin:
    """What one adapter adds: source and sink kinds (constructors taking keyword
    parameters) and embedded server kinds."""

    name: str
    sources: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    sinks: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    servers: Mapping[str, ServerKind] = field(default_factory=dict)


_lock = threading.RLock()  # a plugin's import may look a kind up
_loaded: dict[str, Plugin] | None = None
_errors: dict[str, str] = {}


class RunningServer(Protocol):
    """What ``run_server`` needs of a started embedded server."""

    host: str

    @property
    def port(self) -> int: ...

    def stop(self) -> None: ...


class EmbeddedKind:
    """What every adapter's :class:`EmbeddedServer` shares: a config from a path (relative
    to the definition's folder), an inline table or the packaged default; a store path
    relative to the definition's folder; ``url``, ``start`` and ``stop``.

    A subclass gives ``load`` (a path or None -> config) and ``parse`` (an inline table, the
    key path it sits at, the definition's folder -> config) as static methods, ``open()``
    (start the server on ``host``, ``port``, ``config`` and ``store``) and
    ``credentials``; ``no_store`` is ``store`` when the definition names none.
    """

    no_store: Any = None
    load: Callable[[str | Path | None], Any]
    parse: Callable[[dict[str, Any], str, Path | None], Any]

    def __init__(
        self,
        host: str,
        port: int,
        config: str | Mapping[str, Any] | None,
        store: str | None,
        base_dir: Path,
    ) -> None:
        self.host = host
        self.port = port
        if isinstance(config, str):
            path = Path(config)
            self.config = type(self).load(path if path.is_absolute() else base_dir / path)
        elif config is not None:
            self.config = type(self).parse(dict(config), "config", base_dir)
        else:
            self.config = type(self).load(None)
        self.store: Any = self.no_store
        if store:
            stored = Path(store)
            self.store = stored if stored.is_absolute() else base_dir / stored
        self.server: RunningServer | None = None

    @property
    def url(self) -> str:
        """``host:port``, IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def open(self) -> RunningServer:
        """Start the server (``host``, ``port``, ``config``, ``store``) and return it."""
        raise NotImplementedError(f"{type(self).__name__} must define open()")

    def credentials(self, data_type: str, verb: str) -> tuple[str, str]:
        """``(application_name, api_key)`` of the first application of the server's config
        that may ``verb`` ("read" or "publish") ``data_type``; ValueError if none may."""
        raise ValueError(f"a {type(self).__name__} has no applications or credentials")

    def check_stage(
        self,
        kind: str,
        params: Mapping[str, Any],
        section: str,
        peers: Sequence[tuple[str, Mapping[str, Any]]] = (),
    ) -> list[str]:
        """Nothing by default; a kind whose config declares what stages may name (data
        types, topics, streams) says here what a stage names that it does not have."""
        return []

    def stage_params(self, params: dict[str, Any], section: str) -> dict[str, Any]:
        """By default ``url`` (``host:port``) and, unless the stage names its own, the
        credentials of the first application allowed to read (a source) or publish (a sink)
        its ``data_type``. A server kind whose stages need something else overrides this."""
        out = dict(params)
        out.setdefault("url", self.url)
        if "application_name" not in out and "api_key" not in out:
            verb = "read" if section == "sources" else "publish"
            out["application_name"], out["api_key"] = self.credentials(
                str(out.get("data_type", "")), verb
            )
        return out

    def start(self) -> None:
        self.server = self.open()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


StartServer = Callable[[str, int, Any, str | None, str | None, str | None], RunningServer]
"""``start(host, port, config, store, certfile, keyfile)``: an embedded server, started."""


def server_kind(
    name: str, what: str, default_port: int, embedded: type[EmbeddedKind], start: StartServer
) -> ServerKind:
    """The :class:`ServerKind` of an adapter's embedded server: ``[servers.x] kind = NAME``
    builds ``embedded``, its inline config is checked by ``embedded.parse``, and ``actorwire
    serve NAME`` runs ``start`` (announced as ``what``) through :func:`run_server`."""

    def check_config(table: Mapping[str, Any], where: str) -> None:
        embedded.parse(dict(table), where, None)

    def serve_command(args: argparse.Namespace, stop: threading.Event) -> int:
        return run_server(
            args,
            stop,
            kind=name,
            what=what,
            default_port=default_port,
            load_config=embedded.load,
            start=start,
        )

    return ServerKind(name, default_port, check_config, embedded, serve_command)


def run_server(
    args: argparse.Namespace,
    stop: threading.Event,
    *,
    kind: str,
    what: str,
    default_port: int,
    load_config: Callable[[str | None], Any],
    start: Callable[[str, int, Any, str | None, str | None, str | None], RunningServer],
) -> int:
    """``actorwire serve KIND`` for an adapter: load ``--config`` (exit 2 naming the
    problem), check ``--cert``/``--key`` go together (exit 2), ``start(host, port, config,
    store, certfile, keyfile)`` (exit 1 naming why it cannot), print one ready line naming
    ``what``, host and port, and run until ``stop`` is set."""
    prefix = f"actorwire serve {kind}"
    try:
        config = load_config(args.config)
    except ValueError as exc:
        return _fail(f"{prefix}: bad config: {exc}", 2)
    cert, key = getattr(args, "cert", None), getattr(args, "key", None)
    if (cert is None) != (key is None):
        return _fail(f"{prefix}: --cert and --key go together", 2)
    port = default_port if args.port is None else args.port
    try:
        server = start(args.host, port, config, args.store, cert, key)
    except (OSError, sqlite3.Error, RuntimeError, ValueError) as exc:
        return _fail(f"{prefix}: cannot start: {exc}", 1)
    try:
        host = f"[{server.host}]" if ":" in server.host else server.host
        tls = " (TLS)" if cert else ""
        print(f"{what} listening on {host}:{server.port}{tls}", flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()
    return 0


def _fail(message: str, code: int) -> int:
    print(message, file=sys.stderr, flush=True)
    return code


def plugins() -> dict[str, Plugin]:
    """Every installed plugin, loaded once (by entry point name)."""
    global _loaded
    with _lock:
        if _loaded is None:
            loaded: dict[str, Plugin] = {}
            for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
                try:
                    factory = entry.load()
                    plugin = factory() if callable(factory) else factory
                    if not isinstance(plugin, Plugin):
                        raise TypeError(f"{entry.value} gave {plugin!r}, not a Plugin")
                except Exception as exc:  # noqa: BLE001 - one broken plugin hides no other
                    error = f"{type(exc).__name__}: {exc}"
                    if isinstance(exc, ModuleNotFoundError) and entry.dist is not None:
                        # An adapter's dependencies come with the extra of its name.
                        error += f" (pip install '{entry.dist.name}[{entry.name}]')"
                    _errors[entry.name] = error
                    log.warning(
                        "plugin failed to load", plugin=entry.name, error=_errors[entry.name]
                    )
                    continue
                loaded[entry.name] = plugin
            _loaded = loaded
        return dict(_loaded)


def plugin_errors() -> dict[str, str]:
    """Plugins that failed to load: entry point name -> the error."""
    plugins()
    return dict(_errors)


def server_kinds() -> dict[str, ServerKind]:
    """Every embedded server kind the installed plugins offer."""
    out: dict[str, ServerKind] = {}
    for plugin in plugins().values():
        out.update(plugin.servers)
    return out


class KindRegistry(Mapping[str, Callable[..., T]]):
    """Built-in kinds plus the kinds the installed plugins add (``"sources"`` or
    ``"sinks"``), loaded on first use of a kind that is not built in."""

    def __init__(self, section: str, builtins: Mapping[str, Callable[..., T]]) -> None:
        self._section = section
        self._builtins = dict(builtins)

    def _all(self) -> dict[str, Callable[..., T]]:
        out = dict(self._builtins)
        for plugin in plugins().values():
            out.update(getattr(plugin, self._section))
        return out

    def __getitem__(self, kind: str) -> Callable[..., T]:
        found = self._builtins.get(kind)
        if found is not None:
            return found
        return self._all()[kind]

    def __contains__(self, kind: object) -> bool:
        return kind in self._builtins or kind in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return f"KindRegistry({self._section!r}: {', '.join(self._all())})"
