"""Build a Pipeline from a definition file: ``load_definition(path_or_text)``.

The definition is checked first (``parse_definition``: nothing starts when it has a
problem). Embedded servers (``[servers.<name>]``) belong to the returned pipeline: they
start before its stages and stop after them. A source or sink with ``server = "<name>"``
gets that server's address, and, unless it names its own, the credentials of the first
application in the server's config allowed to read (a source) or publish (a sink) its
data type.
"""

from __future__ import annotations

import dataclasses
import re
import socket
from pathlib import Path
from typing import Any

import structlog

from ..actors import ActorSystem, Backoff
from ..actors.tomlcheck import TomlError
from .components import component_builder
from .definition import (
    Definition,
    DefinitionError,
    ServerDef,
    StageDef,
    default_registries,
    importable,
    looks_callable,
    parse_definition,
)
from .pipeline import Pipeline
from .plugins import EmbeddedServer, plugin_errors, server_kinds
from .stage import Role

__all__ = ["DefinitionPipeline", "build_pipeline", "check_definition", "load_definition"]


def _missing(message: str) -> str:
    """The ``missing parameter 'x'`` part of a message (the same in both passes)."""
    found = re.search(r"missing parameter '[^']+'", message)
    return found.group(0) if found else message


def _without_bad_params(
    definition: Definition, errors: list[TomlError]
) -> tuple[Definition, set[str]]:
    """The definition with each stage's refused parameters left out, so that the rest of
    its values are still checked; and the stages that cannot be checked at all (a bad kind,
    bad wiring)."""
    skip: set[str] = set()
    changed: dict[str, StageDef] = {}
    for stage in definition.all_stages():
        params = [
            e.path[len(stage.path) + 1 :].split(".")[0]
            for e in errors
            if e.path.startswith(stage.path + ".")
        ]
        if any(e.path == stage.path for e in errors) or any(p in ("kind", "from") for p in params):
            skip.add(stage.name)
        elif params:
            kept = {k: v for k, v in stage.params.items() if k not in params}
            changed[stage.name] = dataclasses.replace(stage, params=kept)
    if changed:

        def fix(stages: tuple[StageDef, ...]) -> tuple[StageDef, ...]:
            return tuple(changed.get(s.name, s) for s in stages)

        definition = dataclasses.replace(
            definition,
            sources=fix(definition.sources),
            stages=fix(definition.stages),
            sinks=fix(definition.sinks),
        )
    return definition, skip


log = structlog.get_logger("actorwire.pipelines")


class DefinedServer:
    """One ``[servers.<name>]`` entry: its port (settled now, so the stages can be built with
    the server's address) and the server its kind's plugin builds."""

    def __init__(self, spec: ServerDef, base_dir: Path) -> None:
        kinds = server_kinds()
        kind = kinds.get(spec.kind)
        if kind is None:
            raise ValueError(
                f"servers.{spec.name}.kind: no installed adapter serves {spec.kind!r}"
                f"{_plugin_hint()}"
            )
        self.spec = spec
        self.port = spec.port or _free_port(spec.host)
        try:
            self.server: EmbeddedServer = kind.build(
                spec.host, self.port, spec.config, spec.store, base_dir
            )
        except ValueError as exc:
            raise ValueError(f"servers.{spec.name}.config: {exc}") from None

    @property
    def url(self) -> str:
        return self.server.url

    def credentials(self, data_type: str, verb: str) -> tuple[str, str]:
        """``(application_name, api_key)`` of the first application of the server's config
        that may ``verb`` ("read" or "publish") ``data_type`` (a program wiring its own
        stages to the server, say)."""
        try:
            return self.server.credentials(data_type, verb)
        except ValueError as exc:
            raise ValueError(f"server {self.spec.name!r}: {exc}") from None

    def check_stage(
        self,
        kind: str,
        params: dict[str, Any],
        section: str,
        peers: list[tuple[str, dict[str, Any]]],
    ) -> list[str]:
        check = getattr(self.server, "check_stage", None)
        return list(check(kind, params, section, peers)) if check is not None else []

    def stage_params(self, params: dict[str, Any], section: str) -> dict[str, Any]:
        try:
            return self.server.stage_params(params, section)
        except ValueError as exc:
            raise ValueError(f"server {self.spec.name!r}: {exc}") from None

    def start(self) -> None:
        self.server.start()
        log.info("embedded server started", server=self.spec.name, url=self.url)

    def stop(self) -> None:
        self.server.stop()
        log.info("embedded server stopped", server=self.spec.name)


def _plugin_hint() -> str:
    errors = plugin_errors()
    if not errors:
        return ""
    return " (" + "; ".join(f"plugin {n!r} failed to load: {e}" for n, e in errors.items()) + ")"


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class DefinitionPipeline(Pipeline):
    """A Pipeline built from a definition: it also owns the definition's embedded servers."""

    def __init__(self, definition: Definition, system: ActorSystem | None = None) -> None:
        sup = definition.supervision
        super().__init__(
            definition.name,
            system,
            strategy=sup.strategy,
            intensity=sup.intensity,
            period=sup.period,
            backoff=Backoff(
                min=sup.backoff_min,
                max=sup.backoff_max,
                factor=sup.backoff_factor,
                jitter=sup.backoff_jitter,
            ),
        )
        self.definition = definition
        self.servers: dict[str, DefinedServer] = {}
        # (key path, what is wrong) per server that cannot be built: build_pipeline reports
        # them with the stages' problems, in one pass.
        self.server_errors: list[tuple[str, str]] = []
        for spec in definition.servers:
            try:
                self.servers[spec.name] = DefinedServer(spec, definition.base_dir)
            except ValueError as exc:
                path, _, what = str(exc).partition(": ")
                self.server_errors.append((path, what))

    def start(self) -> DefinitionPipeline:
        """Start the embedded servers, then the stages (servers stop again if that fails)."""
        started: list[DefinedServer] = []
        try:
            for server in self.servers.values():
                server.start()
                started.append(server)
            super().start()
        except BaseException:
            for server in reversed(started):
                server.stop()
            raise
        return self

    def stop(self, drain: bool = True, timeout: float = 10.0) -> bool:
        """Stop the stages (draining them unless ``drain=False``), then the servers."""
        try:
            return super().stop(drain=drain, timeout=timeout)
        finally:
            for server in reversed(self.servers.values()):
                server.stop()


def check_definition(path_or_text: str | Path) -> tuple[Definition | None, list[TomlError]]:
    """Every problem of a definition in one pass (``actorwire check``): its shape, then the
    values of every stage and server whose shape is right (each constructor runs once;
    nothing starts). Returns the definition (None when it does not parse at all) and the
    problems in the file's order."""
    errors: list[TomlError] = []
    try:
        definition: Definition | None = parse_definition(path_or_text)
    except DefinitionError as exc:
        errors = list(exc.errors)
        definition = exc.partial
    if definition is not None:
        definition, skip = _without_bad_params(definition, errors)
        try:
            build_pipeline(definition, skip=skip)
        except DefinitionError as exc:
            known = {e.path for e in errors}
            said = " ".join(e.message for e in errors if "missing parameter" in e.message)
            errors += [
                e
                for e in exc.errors
                if e.path not in known
                and not ("missing parameter" in e.message and _missing(e.message) in said)
            ]
    errors.sort(key=lambda e: (e.line is None, e.line or 0))
    return definition, errors


def build_pipeline(
    definition: Definition, system: ActorSystem | None = None, *, skip: set[str] | None = None
) -> Pipeline:
    """The Pipeline a checked definition describes (nothing started).

    Building checks every parameter's value (each kind's constructor runs once); raises
    DefinitionError listing every stage that refused its parameters. ``skip``: stages not
    to build (their shape is wrong), nor what they feed.
    """
    from ..actors.tomlcheck import TomlError, locate  # noqa: PLC0415

    pipeline = DefinitionPipeline(definition, system)
    text = _source_text(definition)
    errors: list[TomlError] = [
        TomlError(definition.source, path, what, locate(text, path) if text else None)
        for path, what in pipeline.server_errors
    ]
    refused: set[str] = set(skip or ())
    with importable(definition.base_dir):
        for stage in definition.all_stages():
            if stage.name in refused:
                continue
            server = stage.params.get("server")
            if server is not None and server not in pipeline.servers:
                refused.add(stage.name)  # its server was refused: no second error for it
                continue
            if server is not None:
                # What the embedded server's config says of the stage (a data type or topic
                # it does not have): reported with the rest, the stage still built.
                peers = [
                    (other.kind, dict(other.params))
                    for other in definition.all_stages()
                    if other.params.get("server") == server
                ]
                said = pipeline.servers[server].check_stage(
                    stage.kind, dict(stage.params), stage.section, peers
                )
                for what in said:
                    param = what.split(":", 1)[0]
                    path = f"{stage.path}.{param}" if param in stage.params else stage.path
                    line = locate(text, path) if text is not None else None
                    errors.append(
                        TomlError(definition.source, path, f"server {server!r}: {what}", line)
                    )
            try:
                params = _resolve_server(stage, pipeline.servers)
                kind, role = _kind_and_role(stage)
                if refused.intersection(stage.inputs):
                    # Its input was refused: it cannot join the graph, but its own values
                    # are still checked, so that one pass reports every problem.
                    refused.add(stage.name)
                    component_builder(stage.name, role, kind, params)
                    continue
                pipeline.add_stage(
                    stage.name, kind, params, stage.inputs, role=role, **stage.options()
                )
            except (TypeError, ValueError, OSError) as exc:  # OSError: a missing input file
                refused.add(stage.name)
                path = _key_path(stage, str(exc))
                line = locate(text, path) if text is not None else None
                errors.append(TomlError(definition.source, path, str(exc), line))
    if not errors and not skip:
        by_name = {stage.name: stage for stage in definition.all_stages()}
        for problem in pipeline.ack_problems():
            found = by_name.get(problem.stage)
            if found is None:
                continue
            path = found.path
            if problem.param is not None and (
                problem.param in found.params or problem.param in found.options()
            ):
                path = f"{found.path}.{problem.param}"
            line = locate(text, path) if text is not None else None
            errors.append(TomlError(definition.source, path, problem.text, line))
    if errors:
        raise DefinitionError(errors)
    return pipeline


_ROLES: dict[str, Role] = {"sources": "source", "stages": "operator", "sinks": "sink"}


def load_definition(path_or_text: str | Path, system: ActorSystem | None = None) -> Pipeline:
    """Check a definition (file path or TOML text) and build its Pipeline.

    Raises DefinitionError listing every problem, with file, line and key path. The
    pipeline starts its embedded servers, then its stages, on ``start()`` or ``run()``.
    """
    return build_pipeline(parse_definition(path_or_text), system)


def _resolve_server(stage: StageDef, servers: dict[str, DefinedServer]) -> dict[str, Any]:
    params = dict(stage.params)
    name = params.pop("server", None)
    if name is None:
        return params
    return servers[name].stage_params(params, stage.section)


def _kind_and_role(stage: StageDef) -> tuple[Any, Role]:
    """A built-in kind by name, or a custom ``module:Class``/``module:function`` resolved;
    an Actor class is an actor stage in any section."""
    role = _ROLES[stage.section]
    if stage.kind in default_registries()[stage.section] or not looks_callable(stage.kind):
        return stage.kind, role
    from ..actors import Actor  # noqa: PLC0415
    from .operators import resolve_callable  # noqa: PLC0415

    kind = resolve_callable(stage.kind)
    if isinstance(kind, type) and issubclass(kind, Actor):
        return kind, "actor"
    return kind, role


def _key_path(stage: StageDef, message: str) -> str:
    """The stage's key path, down to the parameter the message names, if it names one."""
    for name in stage.params:
        found = re.search(rf"(?<![\w.]){re.escape(name)}((?:\.\w+|\[\d+\])*)(?![\w])", message)
        if found:
            # A key inside a table parameter (``stream.max_byte``): down to it.
            inner = found.group(1) if isinstance(stage.params[name], dict | list) else ""
            return f"{stage.path}.{name}{inner}"
    for name, value in stage.params.items():  # else the parameter whose value it quotes
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and len(v) > 1 and repr(v) in message for v in items):
            return f"{stage.path}.{name}"
    return stage.path


def _source_text(definition: Definition) -> str | None:
    if definition.text is not None:
        return definition.text
    try:
        return Path(definition.source).read_text(encoding="utf-8")
    except OSError:
        return None
