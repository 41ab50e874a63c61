"""The fluent wiring API: ``StageHandle`` (``then``/``to`` from one stage) and ``Merge``
(from several). Both only translate a call into ``Pipeline.add_stage`` or ``connect``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..actors import Address
from .components import is_actor_class
from .spec import StageSpec, split_options
from .stage import Role

if TYPE_CHECKING:
    from .pipeline import Pipeline

__all__ = ["Merge", "StageHandle"]


class StageHandle:
    """A stage in a pipeline being built: wire more stages to it with ``then`` and ``to``."""

    def __init__(self, pipeline: Pipeline, name: str) -> None:
        self.pipeline = pipeline
        self.name = name

    def __repr__(self) -> str:
        return f"StageHandle({self.pipeline.name!r}, {self.name!r})"

    @property
    def spec(self) -> StageSpec:
        return self.pipeline.spec(self.name)

    @property
    def address(self) -> Address:
        """The stage's address (once the pipeline has started): tell records to it."""
        return self.pipeline.address(self.name)

    def then(self, op: Any, name: str | None = None, **params: Any) -> StageHandle:
        """Add a stage fed by this one and return its handle.

        ``op`` is an operator kind (``"map"``, ``"tumbling_window"``, ...), an Operator class
        or instance, a function (a ``map``), your own Actor class, or an existing stage's
        handle (wire into it: fan-in). ``capacity``, ``overflow``, ``put_timeout``,
        ``mailbox_key``, ``restart``, ``on_error`` and ``shutdown_timeout`` configure the
        stage; every other keyword goes to the operator (or your actor's constructor).
        """
        if isinstance(op, StageHandle):
            self.pipeline.connect(self.name, op.name)
            return op
        options, rest = split_options(params)
        role: Role = "actor" if is_actor_class(op) else "operator"
        return self.pipeline.add_stage(name, op, rest, [self.name], role=role, **options)

    def to(self, sink: Any, name: str | None = None, **params: Any) -> StageHandle:
        """Add a sink fed by this one and return its handle.

        ``sink`` is a sink kind (``"jsonl_file"``, ``"stdout"``, ...), a Sink class or
        instance, a function (a ``callback`` sink), your own Actor class, an existing stage's
        handle (fan-in; returns that handle), or an Address outside the pipeline (records
        are told to it; returns this handle).
        """
        if isinstance(sink, StageHandle):
            self.pipeline.connect(self.name, sink.name)
            return sink
        if isinstance(sink, Address):
            if params or name is not None:
                raise TypeError("to(address) takes no name or parameters")
            self.pipeline.connect_address(self.name, sink)
            return self
        options, rest = split_options(params)
        role: Role = "actor" if is_actor_class(sink) else "sink"
        return self.pipeline.add_stage(name, sink, rest, [self.name], role=role, **options)


class Merge:
    """Several stages feeding one: ``p.merge(a, b).then(...)`` / ``.to(...)``."""

    def __init__(self, pipeline: Pipeline, names: list[str]) -> None:
        self.pipeline = pipeline
        self.names = names

    def then(self, op: Any, name: str | None = None, **params: Any) -> StageHandle:
        """A stage fed by every merged stage (see ``StageHandle.then``)."""
        if isinstance(op, StageHandle):
            for upstream in self.names:
                self.pipeline.connect(upstream, op.name)
            return op
        options, rest = split_options(params)
        role: Role = "actor" if is_actor_class(op) else "operator"
        return self.pipeline.add_stage(name, op, rest, list(self.names), role=role, **options)

    def to(self, sink: Any, name: str | None = None, **params: Any) -> StageHandle:
        """A sink fed by every merged stage (see ``StageHandle.to``)."""
        if isinstance(sink, StageHandle):
            for upstream in self.names:
                self.pipeline.connect(upstream, sink.name)
            return sink
        options, rest = split_options(params)
        role: Role = "actor" if is_actor_class(sink) else "sink"
        return self.pipeline.add_stage(name, sink, rest, list(self.names), role=role, **options)
