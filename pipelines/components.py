"""What a stage runs: its kind checked at once and turned into a builder per incarnation.

A kind is a registered name, a class, an instance, a function, or your own Actor class. A
name or class builds a new component on every restart; an instance or function is kept
across restarts. ``stage_factory`` gives the Supervisor the actor that runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..actors import Actor
from .operators import OPERATORS, Map, make_operator
from .registry import check_params
from .sinks import SINKS, CallbackSink, make_sink
from .sources import make_source
from .spec import StageSpec
from .stage import (
    OneByOneStage,
    Role,
    Sink,
    Source,
    Stage,
    StageRuntime,
    build_user_actor,
)

__all__ = ["component_builder", "infer_role", "is_actor_class", "stage_factory"]


def is_actor_class(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, Actor)


def infer_role(kind: Any, inputs: list[str]) -> Role:
    """The role of a stage added without one: from its kind, else from its inputs."""
    if is_actor_class(kind):
        return "actor"
    if isinstance(kind, Source) or (isinstance(kind, type) and issubclass(kind, Source)):
        return "source"
    if isinstance(kind, Sink) or (isinstance(kind, type) and issubclass(kind, Sink)):
        return "sink"
    if not inputs:
        return "source"
    if isinstance(kind, str) and kind in SINKS and kind not in OPERATORS:
        return "sink"
    return "operator"


def component_builder(
    name: str, role: Role, kind: Any, params: dict[str, Any]
) -> Callable[[], Any]:
    """A function building the stage's component for each incarnation; checks now."""
    owner = f"stage {name!r}"
    if isinstance(kind, Actor):
        raise TypeError(
            f"{owner}: pass your Actor class, not an instance (each restart builds a new "
            f"one); its constructor arguments go as keyword parameters"
        )
    if role == "actor":
        if not is_actor_class(kind):
            raise TypeError(f"{owner}: role 'actor' needs an Actor subclass, got {kind!r}")
        check_params(f"{owner} ({kind.__name__})", kind, params)
        return lambda: kind  # the stage factory builds the actor itself
    expected = {"source": Source, "sink": Sink}.get(role)
    if isinstance(kind, str):
        registry: Callable[..., Any] = {
            "source": make_source,
            "sink": make_sink,
            "operator": make_operator,
        }[role]

        def build_kind() -> Any:
            return registry(kind, **params)

        build_kind()  # raises now for an unknown kind or bad parameters
        return build_kind
    if isinstance(kind, type):
        if expected is not None and not issubclass(kind, expected):
            raise TypeError(f"{owner}: a {role} class must subclass {expected.__name__}")
        check_params(f"{owner} ({kind.__name__})", kind, params)

        def build_class() -> Any:
            return kind(**params)

        _check_component(owner, role, build_class())
        return build_class
    if params:
        raise TypeError(
            f"{owner}: parameters {sorted(params)} go with a kind or a class, not {kind!r}"
        )
    if callable(kind) and not hasattr(kind, "on_record"):
        if role == "sink":
            return _shared(CallbackSink(kind))
        if role == "operator":
            return _shared(Map(kind))
        raise TypeError(f"{owner}: a function cannot be a source; use an Actor class or 'inlet'")
    _check_component(owner, role, kind)
    return _shared(kind)  # an instance is kept across restarts


def _shared(component: Any) -> Callable[[], Any]:
    return lambda: component


def _check_component(owner: str, role: Role, component: Any) -> None:
    if role == "source" and not isinstance(component, Source):
        raise TypeError(f"{owner}: a source must be a kind name or a Source, got {component!r}")
    if role == "sink" and not isinstance(component, Sink):
        raise TypeError(f"{owner}: a sink must be a kind name, a Sink or a function")
    if role == "operator" and not all(
        callable(getattr(component, m, None))
        for m in ("on_record", "on_tick", "next_deadline", "flush", "stats")
    ):
        raise TypeError(
            f"{owner}: an operator must implement on_record, on_tick, next_deadline, flush "
            f"and stats (subclass OperatorBase), got {component!r}"
        )


def stage_factory(spec: StageSpec, runtime: StageRuntime) -> Callable[[], Actor]:
    """The Supervisor's factory for one stage: a new actor per incarnation."""
    if spec.role == "actor":
        cls = spec.kind
        params = spec.params
        return lambda: build_user_actor(cls, params, runtime)
    stage_cls = OneByOneStage if spec.on_error == "restart" else Stage
    return lambda: stage_cls(runtime)
