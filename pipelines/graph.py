"""StageGraph: a pipeline's stages and how they feed each other, before anything runs.

``add_stage(name, kind, params, inputs)`` is the one way stages are added (``source``,
``StageHandle.then``/``to`` and definition files all use it), and every stage and edge is
checked as it is added: an unknown kind, bad parameters or options, an unknown input, a
sink with outputs or a cycle raise at once. :class:`Pipeline` extends the graph with running
it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from ..actors import Address, Overflow, Restart
from .acks import Problem, problems
from .components import component_builder, infer_role, is_actor_class
from .handles import Merge, StageHandle
from .spec import STAGE_OPTIONS, StageSpec, check_options, coerce_enum, split_options
from .stage import Role

if TYPE_CHECKING:
    from .pipeline import Pipeline

__all__ = ["StageGraph"]


class StageGraph:
    """The stages of the pipeline ``name`` as defined; ``defaults`` are the stage options
    every stage starts from. Stages are added only while the pipeline is new."""

    def __init__(self, name: str, defaults: dict[str, Any]) -> None:
        check_options("pipeline", defaults)
        self.name = name
        self._defaults = defaults
        self._specs: dict[str, StageSpec] = {}
        self._state = "new"  # new -> running -> stopping -> stopped (the Pipeline moves it)
        self._lock = threading.RLock()

    def _as_pipeline(self) -> Pipeline:
        # A StageGraph only exists as a Pipeline's base; handles wire through its full API.
        return cast("Pipeline", self)

    # -- building ------------------------------------------------------------------------

    def source(self, kind: Any, name: str | None = None, **params: Any) -> StageHandle:
        """Add a source and return its handle.

        ``kind`` is a source kind (``"synthetic_prices"``, ``"jsonl_file"``, ``"keysquare"``,
        ``"inlet"``), a Source class or instance, or your own Actor class (it produces with
        ``self.emit(record)`` and calls ``self.finish()`` when done). Stage options as in
        ``StageHandle.then``; every other keyword goes to the source.
        """
        options, rest = split_options(params)
        role: Role = "actor" if is_actor_class(kind) else "source"
        return self.add_stage(name, kind, rest, [], role=role, **options)

    def merge(self, *handles: StageHandle) -> Merge:
        """Several stages to feed one stage: ``p.merge(a, b).then(op)`` (fan-in)."""
        if not handles:
            raise ValueError("merge needs at least one stage handle")
        names = []
        for handle in handles:
            if not isinstance(handle, StageHandle) or handle.pipeline is not self:
                raise TypeError(f"merge takes handles of this pipeline's stages, got {handle!r}")
            names.append(handle.name)
        return Merge(self._as_pipeline(), names)

    def add_stage(
        self,
        name: str | None,
        kind: Any,
        params: Mapping[str, Any] | None = None,
        inputs: Iterable[str] = (),
        *,
        role: Role | None = None,
        **options: Any,
    ) -> StageHandle:
        """Add one stage fed by ``inputs`` (stage names) and return its handle.

        ``kind`` and ``params`` as for ``source``/``then``/``to``. ``role`` (``"source"``,
        ``"operator"``, ``"sink"``, ``"actor"``) is inferred when not given: no inputs is a
        source, a sink kind is a sink, else an operator. ``options`` are the stage options
        (capacity, overflow, put_timeout, mailbox_key, restart, on_error, shutdown_timeout).
        Raises at once for an unknown kind, bad parameters, unknown inputs or a bad option.
        """
        with self._lock:
            self._check_building()
            params = dict(params or {})
            inputs = list(inputs)
            unknown = [k for k in options if k not in STAGE_OPTIONS]
            if unknown:
                raise TypeError(
                    f"unknown stage option {', '.join(map(repr, unknown))}; "
                    f"options: {', '.join(STAGE_OPTIONS)}"
                )
            role = role or infer_role(kind, inputs)
            name = self._stage_name(name, kind, role)
            for upstream in inputs:
                self._check_edge(upstream, name)
            if role in ("source",) and inputs:
                raise ValueError(f"stage {name!r}: a source takes no inputs, got {inputs!r}")
            if role in ("operator", "sink") and not inputs:
                raise ValueError(f"stage {name!r}: a {role} needs at least one input")
            build = component_builder(name, role, kind, params)
            merged = {**self._defaults, **options}
            check_options(f"stage {name!r}", merged)
            spec = StageSpec(
                name=name,
                role=role,
                kind=kind,
                params=params,
                inputs=inputs,
                capacity=merged["capacity"],
                overflow=coerce_enum(Overflow, merged["overflow"], f"stage {name!r}: overflow"),
                put_timeout=merged["put_timeout"],
                mailbox_key=merged.get("mailbox_key"),
                restart=coerce_enum(Restart, merged["restart"], f"stage {name!r}: restart"),
                on_error=merged["on_error"],
                shutdown_timeout=float(merged["shutdown_timeout"]),
                build=build,
            )
            spec.mailbox()  # raises now for a bad capacity, policy or conflation key
            self._specs[name] = spec
            return StageHandle(self._as_pipeline(), name)

    def connect(self, upstream: str, downstream: str) -> None:
        """Feed ``downstream`` from ``upstream`` too (fan-in into an existing stage)."""
        with self._lock:
            self._check_building()
            if downstream not in self._specs:
                raise ValueError(f"unknown stage {downstream!r} (stages: {self._known()})")
            self._check_edge(upstream, downstream)
            target = self._specs[downstream]
            if target.role == "source":
                raise ValueError(f"stage {downstream!r} is a source: it takes no inputs")
            if upstream in target.inputs:
                raise ValueError(f"stage {upstream!r} already feeds {downstream!r}")
            if upstream == downstream or self._reaches(downstream, upstream):
                raise ValueError(f"feeding {downstream!r} from {upstream!r} would make a cycle")
            target.inputs.append(upstream)

    def connect_address(self, upstream: str, address: Address) -> None:
        """Tell ``upstream``'s output records to an actor outside the pipeline too."""
        with self._lock:
            self._check_building()
            self._check_edge(upstream, "")
            self._specs[upstream].external.append(address)

    def _check_building(self) -> None:
        if self._state != "new":
            raise RuntimeError(
                f"pipeline {self.name!r} is {self._state}: stages are added before start()"
            )

    def _check_edge(self, upstream: str, downstream: str) -> None:
        spec = self._specs.get(upstream)
        if spec is None:
            raise ValueError(f"unknown stage {upstream!r} (stages: {self._known()})")
        if spec.role == "sink":
            raise ValueError(f"stage {upstream!r} is a sink: sinks have no output")

    def _reaches(self, start: str, goal: str) -> bool:
        """True when ``goal`` is downstream of ``start``."""
        seen = set()
        frontier = [start]
        while frontier:
            node = frontier.pop()
            for spec in self._specs.values():
                if node in spec.inputs and spec.name not in seen:
                    if spec.name == goal:
                        return True
                    seen.add(spec.name)
                    frontier.append(spec.name)
        return False

    def _known(self) -> str:
        return ", ".join(self._specs) or "none yet"

    def _stage_name(self, name: str | None, kind: Any, role: Role) -> str:
        if name is not None:
            if not isinstance(name, str) or not name or name != name.strip():
                raise ValueError(f"stage name must be a non-empty string, got {name!r}")
            if name in self._specs:
                raise ValueError(f"pipeline {self.name!r} already has a stage named {name!r}")
            return name
        if isinstance(kind, str):
            base = kind
        elif isinstance(kind, type):
            base = kind.__name__
        elif callable(kind) and not hasattr(kind, "on_record"):
            base = "callback" if role == "sink" else "map"  # a function: its stage kind
        else:
            base = type(kind).__name__
        candidate, n = base, 1
        while candidate in self._specs:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    # -- inspection ----------------------------------------------------------------------

    @property
    def stages(self) -> tuple[StageSpec, ...]:
        """Every stage as defined, in the order added."""
        return tuple(self._specs.values())

    def spec(self, name: str) -> StageSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"unknown stage {name!r} (stages: {self._known()})") from None

    def handle(self, name: str) -> StageHandle:
        """The handle of the stage called ``name``."""
        self.spec(name)
        return StageHandle(self._as_pipeline(), name)

    def outputs(self, name: str) -> list[str]:
        """The stages ``name`` feeds, in the order added."""
        return [s.name for s in self._specs.values() if name in s.inputs]

    def components(self) -> dict[str, Any]:
        """A fresh component of every source and operator stage, for checks that need one
        (building one only checks its parameters: nothing is opened)."""
        return {n: s.build() for n, s in self._specs.items() if s.role in ("source", "operator")}

    def ack_problems(self) -> list[Problem]:
        """What would lose data or stall behind a source with acknowledgements (see
        :mod:`.acks`); ``Pipeline.start`` refuses to start while there is any."""
        return problems(self._specs, self.components(), self.outputs)

    def order(self) -> list[str]:
        """Stage names in topological order (every stage after all its inputs)."""
        pending = {name: len(spec.inputs) for name, spec in self._specs.items()}
        ready = [name for name, count in pending.items() if count == 0]
        out: list[str] = []
        while ready:
            name = ready.pop(0)
            out.append(name)
            for child in self.outputs(name):
                pending[child] -= 1
                if pending[child] == 0:
                    ready.append(child)
        return out
