"""Pipelines: builder API, operators, sources and sinks, definitions and the supervisor process.

Build a graph of stages with :class:`Pipeline` (``p.source(...).then(...).to(...)``); each
stage is a supervised actor with its own bounded mailbox. Sources, operators and sinks are
named by kind (``make_source``, ``make_operator``, ``make_sink``) or given as classes,
instances, functions, or your own actors (:class:`StageActor`). Definition files (TOML)
describe the same graph: :func:`load_definition` checks one and returns its Pipeline;
``actorwire run FILE`` runs it under the supervisor process, with ``/metrics`` and
``/healthz`` (:class:`MetricsServer`).
"""

from .definition import Definition, DefinitionError, parse_definition
from .loader import DefinitionPipeline, build_pipeline, load_definition
from .metrics import MetricsServer, Snapshot
from .operators import OPERATORS, Operator, OperatorBase, make_operator, resolve_callable
from .pipeline import (
    DEFAULT_CAPACITY,
    Merge,
    Pipeline,
    PipelineError,
    StageHandle,
    StageSpec,
)
from .plugins import KindRegistry, Plugin, ServerKind, plugin_errors, plugins
from .sinks import (
    SINKS,
    CallbackSink,
    JsonlFileSink,
    ParquetFileSink,
    StdoutSink,
    make_sink,
)
from .sources import (
    SOURCES,
    InletSource,
    JsonlFileSource,
    SyntheticPricesSource,
    make_source,
)
from .stage import Sink, Source, StageActor, StageContext
from .synthetic import SyntheticPrices

__all__ = [
    "DEFAULT_CAPACITY",
    "OPERATORS",
    "SINKS",
    "SOURCES",
    "CallbackSink",
    "Definition",
    "DefinitionError",
    "DefinitionPipeline",
    "InletSource",
    "JsonlFileSink",
    "JsonlFileSource",
    "KindRegistry",
    "Merge",
    "MetricsServer",
    "Operator",
    "OperatorBase",
    "ParquetFileSink",
    "Pipeline",
    "PipelineError",
    "Plugin",
    "ServerKind",
    "Sink",
    "Snapshot",
    "Source",
    "StageActor",
    "StageContext",
    "StageHandle",
    "StageSpec",
    "StdoutSink",
    "SyntheticPrices",
    "SyntheticPricesSource",
    "build_pipeline",
    "load_definition",
    "make_operator",
    "make_sink",
    "make_source",
    "parse_definition",
    "plugin_errors",
    "plugins",
    "resolve_callable",
]
