"""Pipeline definition files (TOML): parsing and validation before anything starts.

A definition names its embedded servers, sources, stages and sinks, wires them with
``from``, and sets supervision, logging and metrics::

    [pipeline]
    name = "bars"

    [servers.platform]            # started in-process before the pipeline
    kind = "keysquare"

    [[sources]]
    name = "prices"
    kind = "keysquare"
    server = "platform"           # or url = "127.0.0.1:6800"
    data_type = "Price"

    [[stages]]
    name = "bars"
    kind = "tumbling_window"
    from = "prices"
    size = 1.0
    aggregations = ["ohlc", "vwap"]

    [[sinks]]
    name = "out"
    kind = "jsonl_file"
    from = "bars"
    path = "bars.jsonl"

Every problem is reported, not just the first, each with the file, the line (when it can
be found) and the key path, and what was expected: ``DefinitionError.errors``.
``parse_definition`` does only this; ``load_definition`` then builds the Pipeline.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..actors.errors import ActorwireError
from ..actors.tomlcheck import TomlChecker, TomlError, join, kind_of
from .plugins import plugin_errors, server_kinds
from .registry import param_problems

__all__ = [
    "SECTIONS",
    "Definition",
    "DefinitionError",
    "LoggingDef",
    "MetricsDef",
    "ServerDef",
    "StageDef",
    "SupervisionDef",
    "importable",
    "parse_definition",
]

SECTIONS = ("sources", "stages", "sinks")
TOP_KEYS = ("pipeline", "servers", *SECTIONS, "supervision", "logging", "metrics")
STAGE_KEYS = (
    "name",
    "kind",
    "from",
    "capacity",
    "overflow",
    "restart",
    "put_timeout",
    "on_error",
    "mailbox_key",
)

SERVER_KEYS = ("kind", "host", "port", "config", "store")
OVERFLOWS = ("backpressure", "drop_oldest", "drop_newest", "conflate", "fail")
RESTARTS = ("permanent", "transient", "temporary")
ON_ERROR = ("skip", "restart")
# With ``server = "<name>"`` a keysquare source or sink takes its address from that
# embedded server, and its credentials from the server's config unless given.
SERVER_FILLED = ("url", "application_name", "api_key")
STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")
LOG_FORMATS = ("console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class DefinitionError(ActorwireError, ValueError):
    """A definition file with problems; ``errors`` holds each one (a TomlError)."""

    partial: Definition | None = None
    """With parse errors: the definition made of what did parse (``actorwire check`` goes
    on to check it)."""

    def __init__(self, errors: list[TomlError]) -> None:
        self.errors = errors
        count = f"{len(errors)} problems" if len(errors) > 1 else "1 problem"
        lines = "\n".join(f"  {e}" for e in errors)
        super().__init__(f"invalid pipeline definition ({count}):\n{lines}")


@dataclass(frozen=True)
class ServerDef:
    """An embedded server to start before the pipeline."""

    name: str
    kind: str
    host: str = "127.0.0.1"
    port: int = 0
    config: str | Mapping[str, Any] | None = None  # a file path, or an inline table
    store: str | None = None


@dataclass(frozen=True)
class StageDef:
    """A source, stage or sink: its kind, its inputs and its kind's own parameters."""

    section: str
    index: int
    name: str
    kind: str
    inputs: tuple[str, ...]
    params: dict[str, Any]
    capacity: int | None = None
    overflow: str | None = None
    restart: str | None = None
    put_timeout: float | None = None
    on_error: str | None = None
    mailbox_key: str | None = None

    @property
    def path(self) -> str:
        return f"{self.section}[{self.index}]"

    def options(self) -> dict[str, Any]:
        """The stage options given (capacity, overflow, ...), for ``Pipeline.add_stage``."""
        names = ("capacity", "overflow", "restart", "put_timeout", "on_error", "mailbox_key")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass(frozen=True)
class SupervisionDef:
    strategy: str = "one_for_one"
    intensity: int = 10  # restarts allowed within ``period`` before the pipeline fails
    period: float = 5.0
    backoff_min: float = 0.05
    backoff_max: float = 5.0
    backoff_factor: float = 2.0
    backoff_jitter: float = 0.1


@dataclass(frozen=True)
class LoggingDef:
    level: str = "info"
    format: str = "console"


@dataclass(frozen=True)
class MetricsDef:
    host: str = "127.0.0.1"
    port: int | None = None  # None: no metrics endpoint unless --metrics-port


@dataclass(frozen=True)
class Definition:
    """A checked definition, ready to build."""

    source: str  # the file name, or "<text>"
    base_dir: Path  # where relative paths and "module:function" modules are looked up
    name: str
    description: str = ""
    servers: tuple[ServerDef, ...] = ()
    sources: tuple[StageDef, ...] = ()
    stages: tuple[StageDef, ...] = ()
    sinks: tuple[StageDef, ...] = ()
    supervision: SupervisionDef = field(default_factory=SupervisionDef)
    logging: LoggingDef = field(default_factory=LoggingDef)
    metrics: MetricsDef = field(default_factory=MetricsDef)
    text: str | None = field(default=None, repr=False)  # the TOML text (for error lines)
    warnings: tuple[TomlError, ...] = ()  # legal but likely mistakes (a stage feeding nothing)

    def all_stages(self) -> tuple[StageDef, ...]:
        return (*self.sources, *self.stages, *self.sinks)


# -- reading ------------------------------------------------------------------------------

Registry = Mapping[str, Callable[..., Any]]
Registries = Mapping[str, Registry]  # section -> kind -> factory


def read_definition(path_or_text: str | Path) -> tuple[str, str, Path]:
    """(source name, text, base dir) for a file path or TOML text."""
    is_path = isinstance(path_or_text, Path) or (
        "\n" not in path_or_text and "=" not in path_or_text and "[" not in path_or_text
    )
    if not is_path:
        return "<text>", str(path_or_text), Path.cwd()
    path = Path(path_or_text)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DefinitionError([TomlError(str(path), "", f"cannot read: {reason}")]) from None
    return str(path), text, path.resolve().parent


def parse_definition(path_or_text: str | Path, registries: Registries | None = None) -> Definition:
    """Read and check a definition; raises DefinitionError listing every problem.

    ``registries`` (section -> kind -> factory) checks kinds and parameters; by default
    the built-in sources, operators and sinks.
    """
    source, text, base_dir = read_definition(path_or_text)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise DefinitionError([TomlError(source, "", f"invalid TOML: {exc}", line)]) from None
    parser = _Parser(TomlChecker(source, text), registries or default_registries())
    doc = substitute_environment(doc, parser.check, parser.errors)
    with importable(base_dir):
        definition = parser.parse(doc, source, base_dir)
    if parser.errors:
        error = DefinitionError(parser.errors)
        error.partial = definition  # what did parse, for a check that goes on
        raise error
    assert definition is not None
    return definition


_ENV = re.compile(r"\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_environment(
    doc: Mapping[str, Any], check: TomlChecker, errors: list[TomlError]
) -> dict[str, Any]:
    """``doc`` with every ``${NAME}`` in a string value replaced by the environment
    variable ``NAME`` (``$${NAME}`` is a literal ``${NAME}``): secrets stay out of the file.
    ``${NAME:-default}`` gives ``default`` when ``NAME`` is not set; otherwise a variable
    that is not set is an error at the key path that names it."""

    def string(value: str, path: str) -> str:
        def one(match: re.Match[str]) -> str:
            if match.group(1):
                return match.group(0)[1:]  # $${NAME}: the text itself
            name = match.group(2)
            found = os.environ.get(name)
            if found is None and match.group(3) is not None:
                return match.group(3)
            if found is None:
                errors.append(check.fail(path, f"environment variable {name!r} is not set"))
                return ""
            return found

        return _ENV.sub(one, value) if "${" in value else value

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, str):
            return string(value, path)
        if isinstance(value, dict):
            return {k: walk(v, join(path, k) if path else k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    return {k: walk(v, k) for k, v in doc.items()}


def _server_kinds() -> tuple[str, ...]:
    kinds = tuple(server_kinds())
    if not kinds:
        errors = plugin_errors()
        return ("none installed",) if not errors else (f"none loaded: {errors}",)
    return kinds


def default_registries() -> Registries:
    """The built-in kinds: sources, operators (stages) and sinks."""
    from .operators import OPERATORS  # noqa: PLC0415 - the registries import the stages
    from .sinks import SINKS  # noqa: PLC0415
    from .sources import SOURCES  # noqa: PLC0415

    return {"sources": SOURCES, "stages": OPERATORS, "sinks": SINKS}


class _Parser:
    """Collects every problem (a TomlError each) instead of stopping at the first."""

    def __init__(self, check: TomlChecker, registries: Registries) -> None:
        self.check = check
        self.registries = registries
        self.errors: list[TomlError] = []
        self.warnings: list[TomlError] = []  # legal but likely a mistake

    def attempt(self, read: Callable[[], Any], default: Any = None) -> Any:
        try:
            return read()
        except TomlError as exc:
            self.errors.append(exc)
            return default

    def parse(self, doc: Mapping[str, Any], source: str, base_dir: Path) -> Definition | None:
        check = self.check
        for key in doc:
            if key not in TOP_KEYS:
                self.errors.append(
                    check.fail(key, f"unknown section (expected one of {', '.join(TOP_KEYS)})")
                )
        name = self.pipeline(doc.get("pipeline"))
        servers = self.servers(doc.get("servers", {}))
        sections = {s: self.section(s, doc.get(s, [])) for s in SECTIONS}
        self.wiring(sections, {s.name for s in servers})
        supervision = self.supervision(doc.get("supervision", {}))
        logging = self.logging(doc.get("logging", {}))
        metrics = self.metrics(doc.get("metrics", {}))
        return Definition(
            source=source,
            base_dir=base_dir,
            name=name[0],
            description=name[1],
            servers=tuple(servers),
            sources=tuple(sections["sources"]),
            stages=tuple(sections["stages"]),
            sinks=tuple(sections["sinks"]),
            supervision=supervision,
            logging=logging,
            metrics=metrics,
            text=self.check.text,
            warnings=tuple(self.warnings),
        )

    def pipeline(self, raw: Any) -> tuple[str, str]:
        check = self.check
        if raw is None:
            self.errors.append(check.fail("pipeline", "missing (a [pipeline] with a name)"))
            return ("", "")
        table = self.attempt(lambda: check.table(raw, "pipeline", ("name", "description")))
        if table is None:
            return ("", "")
        if "name" not in table:
            self.errors.append(check.fail("pipeline.name", "missing (the pipeline's name)"))
            return ("", "")
        name = self.attempt(lambda: check.name(table["name"], "pipeline.name"), "")
        description = self.attempt(
            lambda: check.string(table.get("description", ""), "pipeline.description"), ""
        )
        return (name, description)

    def servers(self, raw: Any) -> list[ServerDef]:
        check = self.check
        if not isinstance(raw, dict):
            self.errors.append(check.fail("servers", f"must be a table, got {kind_of(raw)}"))
            return []
        out = []
        for name, value in raw.items():
            server = self.server(name, value)
            if server is not None:
                out.append(server)
        return out

    def server(self, name: str, value: Any) -> ServerDef | None:
        check = self.check
        where = f"servers.{name}"
        table: Mapping[str, Any] | None = self.attempt(
            lambda: check.table(value, where, SERVER_KEYS)
        )
        if table is None:
            return None
        if "kind" not in table:
            self.errors.append(
                check.fail(f"{where}.kind", f"missing (one of {', '.join(_server_kinds())})")
            )
            return None
        kind: str | None = self.attempt(
            lambda: check.choice(table["kind"], f"{where}.kind", _server_kinds())
        )
        host: str | None = self.attempt(
            lambda: check.string(table.get("host", "127.0.0.1"), f"{where}.host")
        )
        port: int | None = self.attempt(
            lambda: check.integer(table.get("port", 0), f"{where}.port", minimum=0)
        )
        if port is not None and port > 65535:
            self.errors.append(check.fail(f"{where}.port", f"must be at most 65535, got {port}"))
        config = table.get("config")
        if config is not None and not isinstance(config, str | dict):
            self.errors.append(
                check.fail(
                    f"{where}.config", f"must be a file path or a table, got {kind_of(config)}"
                )
            )
        elif isinstance(config, dict):
            self.server_config(kind, config, f"{where}.config")
        store: str | None = self.attempt(
            lambda: check.string(table.get("store", ""), f"{where}.store")
        )
        if kind is None or host is None or port is None:
            return None
        return ServerDef(name, kind, host, port, config, store or None)

    def server_config(self, kind: str | None, config: dict[str, Any], where: str) -> None:
        server_kind = server_kinds().get(kind or "")
        if server_kind is None:
            return
        try:
            server_kind.check_config(config, self.check.source)
        except ValueError as exc:
            # parse_config names the path inside the config table: re-anchor it here.
            text = str(exc).removeprefix(f"{self.check.source}: ")
            inner, _, message = text.partition(": ")
            self.errors.append(self.check.fail(join(where, inner), message or text))

    def section(self, section: str, raw: Any) -> list[StageDef]:
        check = self.check
        if not isinstance(raw, list):
            self.errors.append(
                check.fail(
                    section,
                    f"must be an array of tables ([[{section}]]), got {kind_of(raw)}",
                )
            )
            return []
        registry = self.registries.get(section, {})
        out = []
        for index, item in enumerate(raw):
            where = f"{section}[{index}]"
            if not isinstance(item, dict):
                self.errors.append(check.fail(where, f"must be a table, got {kind_of(item)}"))
                continue
            stage = self.stage(section, index, item, registry)
            if stage is not None:
                out.append(stage)
        return out

    def stage(
        self, section: str, index: int, item: Mapping[str, Any], registry: Registry
    ) -> StageDef | None:
        check = self.check
        where = f"{section}[{index}]"
        ok = True
        if "name" not in item:
            self.errors.append(check.fail(f"{where}.name", "missing (every entry needs a name)"))
            ok = False
        name = self.attempt(lambda: check.name(item["name"], f"{where}.name")) if ok else None
        if "kind" not in item:
            kinds = ", ".join(sorted(registry))
            self.errors.append(check.fail(f"{where}.kind", f"missing (one of {kinds})"))
            return None
        kind = self.attempt(lambda: check.string(item["kind"], f"{where}.kind"))
        inputs: tuple[str, ...] = ()
        if section == "sources":
            if "from" in item:
                self.errors.append(check.fail(f"{where}.from", "a source takes no inputs"))
        elif "from" not in item:
            self.errors.append(
                check.fail(f"{where}.from", "missing (the name of a source or stage, or a list)")
            )
        else:
            inputs = self.inputs(item["from"], f"{where}.from")
        capacity = None
        if "capacity" in item:
            capacity = self.attempt(
                lambda: check.integer(item["capacity"], f"{where}.capacity", minimum=1)
            )
        overflow = None
        if "overflow" in item:
            overflow = self.attempt(
                lambda: check.choice(item["overflow"], f"{where}.overflow", OVERFLOWS)
            )
        restart = None
        if "restart" in item:
            restart = self.attempt(
                lambda: check.choice(item["restart"], f"{where}.restart", RESTARTS)
            )
        put_timeout = None
        if "put_timeout" in item:
            put_timeout = self.attempt(
                lambda: check.positive(item["put_timeout"], f"{where}.put_timeout")
            )
        on_error = None
        if "on_error" in item:
            on_error = self.attempt(
                lambda: check.choice(item["on_error"], f"{where}.on_error", ON_ERROR)
            )
        mailbox_key = None
        if "mailbox_key" in item:
            mailbox_key = self.attempt(
                lambda: check.string(item["mailbox_key"], f"{where}.mailbox_key")
            )
            if overflow != "conflate":
                self.errors.append(
                    check.fail(
                        f"{where}.mailbox_key",
                        'only used with overflow = "conflate" (the field to conflate by)',
                    )
                )
        params = {k: v for k, v in item.items() if k not in STAGE_KEYS}
        if kind is not None:
            self.kind_and_params(section, where, kind, params, registry)
        if name is None or kind is None:
            return None
        return StageDef(
            section,
            index,
            name,
            kind,
            inputs,
            params,
            capacity,
            overflow,
            restart,
            put_timeout,
            on_error,
            mailbox_key,
        )

    def inputs(self, raw: Any, where: str) -> tuple[str, ...]:
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            self.errors.append(
                self.check.fail(where, f"must be a name or a non-empty list of names, got {raw!r}")
            )
            return ()
        return tuple(names)

    def kind_and_params(
        self,
        section: str,
        where: str,
        kind: str,
        params: dict[str, Any],
        registry: Registry,
    ) -> None:
        check = self.check
        factory = registry.get(kind)
        if factory is None and looks_callable(kind):
            # A custom stage: "module:Class" (your Actor, Operator, Source or Sink class)
            # or "module:function" (a map in [[stages]], a callback in [[sinks]]).
            from .operators import resolve_callable  # noqa: PLC0415

            try:
                factory = resolve_callable(kind)
            except ValueError as exc:
                self.errors.append(check.fail(f"{where}.kind", str(exc)))
                return
            if not isinstance(factory, type):
                if params:
                    self.errors.append(
                        check.fail(
                            f"{where}.{next(iter(params))}",
                            f"a function stage ({kind}) takes no parameters",
                        )
                    )
                return
        if factory is None:
            close = difflib.get_close_matches(kind, list(registry), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            broken = "".join(
                f"; plugin {name!r} failed to load: {error}"
                for name, error in plugin_errors().items()
            )
            self.errors.append(
                check.fail(
                    f"{where}.kind",
                    f"unknown {section[:-1]} kind {kind!r} "
                    f"(expected one of {', '.join(sorted(registry))}, "
                    f"or 'module:Class' for your own){hint}{broken}",
                )
            )
            return
        # "server" names an embedded server; the loader turns it into the url.
        given = {k: v for k, v in params.items() if k != "server"}
        filled = SERVER_FILLED if "server" in params else ()
        for key, problem in param_problems(factory, given, filled):
            self.errors.append(check.fail(f"{where}.{key}", f"{kind}: {problem}"))
        try:
            signature = inspect.signature(factory)
        except (TypeError, ValueError):
            return
        for key, value in given.items():
            target = signature.parameters.get(key)
            if (
                target is not None
                and _takes_callable(target)
                and isinstance(value, str)
                and looks_callable(value)
            ):
                self.callable_param(f"{where}.{key}", value)

    def callable_param(self, where: str, spec: str) -> None:
        from .operators import resolve_callable  # noqa: PLC0415

        try:
            resolve_callable(spec)
        except ValueError as exc:
            self.errors.append(self.check.fail(where, str(exc)))

    def wiring(self, sections: Mapping[str, list[StageDef]], servers: set[str]) -> None:
        check = self.check
        names: dict[str, StageDef] = {}
        for stage in (s for section in SECTIONS for s in sections[section]):
            if stage.name in names:
                first = names[stage.name]
                self.errors.append(
                    check.fail(
                        f"{stage.path}.name",
                        f"duplicate name {stage.name!r} (also {first.path})",
                    )
                )
            else:
                names[stage.name] = stage
            server = stage.params.get("server")
            if server is not None and server not in servers:
                known = ", ".join(sorted(servers)) or "none defined"
                self.errors.append(
                    check.fail(
                        f"{stage.path}.server",
                        f"unknown server {server!r} (servers: {known})",
                    )
                )
        unknown_inputs = False
        for stage in names.values():
            for i, source in enumerate(stage.inputs):
                where = f"{stage.path}.from" + (f"[{i}]" if len(stage.inputs) > 1 else "")
                target = names.get(source)
                if target is None:
                    unknown_inputs = True
                    close = difflib.get_close_matches(source, list(names), n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    self.errors.append(
                        check.fail(where, f"unknown source or stage {source!r}{hint}")
                    )
                elif target.section == "sinks":
                    self.errors.append(
                        check.fail(where, f"{source!r} is a sink: sinks have no output")
                    )
        cycle = _find_cycle({s.name: s.inputs for s in names.values()})
        if cycle:
            stage = names[cycle[0]]
            self.errors.append(check.fail(f"{stage.path}.from", f"cycle: {' -> '.join(cycle)}"))
        # A warning, not an error: a program may wire more stages onto the loaded
        # pipeline. A misspelt input already explains why something feeds nothing.
        if (sections["sinks"] or sections["stages"]) and not unknown_inputs:
            used = {i for s in names.values() for i in s.inputs}
            for stage in (*sections["sources"], *sections["stages"]):
                if stage.name not in used:
                    self.warnings.append(
                        check.fail(
                            f"{stage.path}.name",
                            f"{stage.name!r} feeds nothing (no stage or sink has it in 'from')",
                        )
                    )

    def supervision(self, raw: Any) -> SupervisionDef:
        check = self.check
        keys = ("strategy", "intensity", "period", "backoff")
        table = self.attempt(lambda: check.table(raw, "supervision", keys))
        if table is None:
            return SupervisionDef()
        d = SupervisionDef()
        strategy = self.attempt(
            lambda: check.choice(
                table.get("strategy", d.strategy), "supervision.strategy", STRATEGIES
            ),
            d.strategy,
        )
        intensity = self.attempt(
            lambda: check.integer(
                table.get("intensity", d.intensity), "supervision.intensity", minimum=0
            ),
            d.intensity,
        )
        period = self.attempt(
            lambda: check.positive(table.get("period", d.period), "supervision.period"), d.period
        )
        backoff = self.attempt(
            lambda: check.table(
                table.get("backoff", {}), "supervision.backoff", ("min", "max", "factor", "jitter")
            ),
            {},
        )
        bmin = self.attempt(
            lambda: check.positive(backoff.get("min", d.backoff_min), "supervision.backoff.min"),
            d.backoff_min,
        )
        bmax = self.attempt(
            lambda: check.positive(backoff.get("max", d.backoff_max), "supervision.backoff.max"),
            d.backoff_max,
        )
        factor = self.attempt(
            lambda: check.number(
                backoff.get("factor", d.backoff_factor), "supervision.backoff.factor", minimum=1
            ),
            d.backoff_factor,
        )
        jitter = self.attempt(
            lambda: check.number(
                backoff.get("jitter", d.backoff_jitter), "supervision.backoff.jitter", minimum=0
            ),
            d.backoff_jitter,
        )
        if jitter > 1:
            self.errors.append(
                check.fail("supervision.backoff.jitter", f"must be at most 1, got {jitter!r}")
            )
        if bmax < bmin:
            self.errors.append(
                check.fail("supervision.backoff.max", f"must be at least min ({bmax!r} < {bmin!r})")
            )
        return SupervisionDef(strategy, intensity, period, bmin, bmax, factor, jitter)

    def logging(self, raw: Any) -> LoggingDef:
        check = self.check
        table = self.attempt(lambda: check.table(raw, "logging", ("level", "format")))
        if table is None:
            return LoggingDef()
        level = self.attempt(
            lambda: check.choice(
                str(table.get("level", "info")).lower(), "logging.level", LOG_LEVELS
            ),
            "info",
        )
        fmt = self.attempt(
            lambda: check.choice(table.get("format", "console"), "logging.format", LOG_FORMATS),
            "console",
        )
        return LoggingDef(level, fmt)

    def metrics(self, raw: Any) -> MetricsDef:
        check = self.check
        table = self.attempt(lambda: check.table(raw, "metrics", ("host", "port")))
        if table is None:
            return MetricsDef()
        host = self.attempt(
            lambda: check.string(table.get("host", "127.0.0.1"), "metrics.host"), "127.0.0.1"
        )
        port = None
        if "port" in table:
            port = self.attempt(
                lambda: check.integer(table["port"], "metrics.port", minimum=0), None
            )
        return MetricsDef(host, port)


_CALLABLE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


_CALLABLE_ANNOTATION = re.compile(r"\b(Callable|FnSpec)\b")


def _takes_callable(parameter: inspect.Parameter) -> bool:
    """A parameter annotated with a callable (``Callable``, ``FnSpec``...): a string for it
    is a ``module:function`` reference, checked by importing it."""
    return _CALLABLE_ANNOTATION.search(str(parameter.annotation)) is not None


def looks_callable(value: str) -> bool:
    """A ``module:function`` string (``pkg.mod:name``): checked by importing it. Addresses
    such as ``127.0.0.1:6800`` or ``host:6800`` never match."""
    return _CALLABLE.match(value) is not None


def _find_cycle(graph: Mapping[str, tuple[str, ...]]) -> list[str]:
    """A cycle in ``name -> inputs`` as a path (first name repeated at the end), or []."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in graph:
        if state.get(node) is None:
            found = visit(node)
            if found:
                # Report it in data-flow order (upstream first).
                return list(reversed(found))
    return []


@contextmanager
def importable(base_dir: Path) -> Iterator[None]:
    """``module:function`` names in a definition resolve next to the definition file."""
    entry = str(base_dir)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added:
            sys.path.remove(entry)
