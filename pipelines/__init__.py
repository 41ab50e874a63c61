"""Pipelines: builder API, operators, sources and sinks, definitions and the supervisor process.

Build a graph of stages with :class:`Pipeline` (``p.source(...).then(...).to(...)``); each
stage is a supervised actor with its own bounded mailbox. Sources, operators and sinks are
named by kind (``make_source``, ``make_operator``, ``make_sink``) or given as classes,
instances, functions, or your own actors (:class:`StageActor`).
"""

from .operators import OPERATORS, Operator, OperatorBase, make_operator, resolve_callable
from .pipeline import (
    DEFAULT_CAPACITY,
    Merge,
    Pipeline,
    PipelineError,
    StageHandle,
    StageSpec,
)
from .sinks import (
    SINKS,
    CallbackSink,
    JsonlFileSink,
    KeySquarePublishSink,
    ParquetFileSink,
    StdoutSink,
    make_sink,
)
from .sources import (
    SOURCES,
    InletSource,
    JsonlFileSource,
    KeySquareSource,
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
    "InletSource",
    "JsonlFileSink",
    "JsonlFileSource",
    "KeySquarePublishSink",
    "KeySquareSource",
    "Merge",
    "Operator",
    "OperatorBase",
    "ParquetFileSink",
    "Pipeline",
    "PipelineError",
    "Sink",
    "Source",
    "StageActor",
    "StageContext",
    "StageHandle",
    "StageSpec",
    "StdoutSink",
    "SyntheticPrices",
    "SyntheticPricesSource",
    "make_operator",
    "make_sink",
    "make_source",
    "resolve_callable",
]
