"""Pipeline: build a graph of stages, run each stage as a supervised actor, drain on stop.

::

    p = Pipeline("bars")
    prices = p.source("synthetic_prices", symbols=["AAPL", "MSFT"], rate=500, limit=1000)
    bars = prices.then("tumbling_window", size=1.0, key="symbol", aggregations=["ohlc"])
    bars.to("stdout")
    p.run()  # returns once the source is done and everything it produced is through

Wiring: ``then`` adds a stage fed by this one, ``to`` adds a sink (or wires into an existing
stage, a user actor, or any address). Calling ``then``/``to`` several times on one handle
fans out; ``p.merge(a, b).then(...)`` or ``a.to(existing)`` fans in. Every stage is an actor
with its own bounded mailbox (capacity and overflow policy per stage) under the pipeline's
Supervisor; stages address each other by stable addresses, so a restarting stage's records
are held and delivered to its next incarnation.

``add_stage(name, kind, params, inputs)`` is the one way stages are added; the fluent calls
and definition files both use it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import structlog

from ..actors import (
    Actor,
    ActorDeadError,
    ActorSystem,
    Address,
    Backoff,
    ChildSpec,
    Mailbox,
    MailboxFull,
    Overflow,
    Restart,
    Strategy,
    Supervisor,
)
from ..actors.errors import ActorwireError
from ..actors.log import REDACTED, is_secret_key
from .operators import OPERATORS, Map, make_operator
from .registry import check_params
from .sinks import SINKS, CallbackSink, make_sink
from .sources import make_source
from .stage import (
    ON_ERROR,
    Drain,
    OneByOneStage,
    OnError,
    Quiesce,
    Role,
    Sink,
    Source,
    Stage,
    StageRuntime,
    StageState,
    StageTimer,
    build_user_actor,
)

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_CAPACITY",
    "Merge",
    "Pipeline",
    "PipelineError",
    "StageHandle",
    "StageSpec",
]

log = structlog.get_logger("actorwire.pipeline")

DEFAULT_CAPACITY = 10_000
"""Records a stage's mailbox holds by default before its overflow policy applies."""
DEFAULT_BACKOFF = Backoff(min=0.05, max=5.0, factor=2.0, jitter=0.1)
"""Delay before a failed stage restarts, growing with its recent restarts."""
STAGE_OPTIONS = (
    "capacity",
    "overflow",
    "put_timeout",
    "mailbox_key",
    "restart",
    "on_error",
    "shutdown_timeout",
)
"""Keyword arguments of ``then``/``to``/``source`` that configure the stage, not its kind."""
COUNTERS = ("received", "processed", "failed", "emitted")


class PipelineError(ActorwireError, RuntimeError):
    """The pipeline failed: its supervisor gave up after too many restarts."""


@dataclass
class StageSpec:
    """One stage as defined: what it runs, what feeds it, and how its actor is configured.

    ``role`` is ``"source"``, ``"operator"``, ``"sink"`` or ``"actor"`` (your own Actor
    class). ``kind`` is a kind name, a class, an instance or a function, as given.
    """

    name: str
    role: Role
    kind: Any
    params: dict[str, Any]
    inputs: list[str]
    capacity: int | None
    overflow: Overflow
    put_timeout: float | None
    mailbox_key: str | Callable[[Any], Hashable] | None
    restart: Restart
    on_error: OnError
    shutdown_timeout: float
    build: Callable[[], Any] = field(repr=False)
    external: list[Address] = field(default_factory=list)

    def __repr__(self) -> str:
        params = {k: REDACTED if is_secret_key(k) else v for k, v in self.params.items()}
        kind = (
            self.kind if isinstance(self.kind, str) else getattr(self.kind, "__name__", self.kind)
        )
        return (
            f"StageSpec({self.name!r}, role={self.role!r}, kind={kind!r}, params={params!r}, "
            f"inputs={self.inputs!r})"
        )

    def mailbox(self) -> Mailbox:
        key = None
        if self.overflow is Overflow.CONFLATE:
            if self.mailbox_key is None:
                raise ValueError(
                    f"stage {self.name!r}: overflow 'conflate' needs mailbox_key= a field name "
                    "or a function of the record (the key records are conflated on)"
                )
            key = _conflate_key(self.mailbox_key)
        return Mailbox(
            capacity=self.capacity, overflow=self.overflow, put_timeout=self.put_timeout, key=key
        )


def _conflate_key(spec: str | Callable[[Any], Hashable]) -> Callable[[Any], Hashable]:
    """A mailbox key: a record's field (or function) value; timer wake-ups keep their own
    slot; an unhashable value is conflated on its repr."""
    if isinstance(spec, str):
        name = spec

        def read(message: Any) -> Hashable:
            return message.get(name) if isinstance(message, dict) else message

    elif callable(spec):
        fn = spec

        def read(message: Any) -> Hashable:
            return message if message.__class__ is StageTimer else fn(message)

    else:
        raise TypeError(f"mailbox_key must be a field name or a function, got {spec!r}")

    def key(message: Any) -> Hashable:
        value = read(message)
        try:
            hash(value)
        except TypeError:
            return ("unhashable", repr(value))
        return value

    return key


def _enum(kind: type[Any], value: Any, what: str) -> Any:
    if isinstance(value, kind):
        return value
    try:
        return kind(str(value).lower())
    except ValueError:
        names = ", ".join(m.value for m in kind)
        raise ValueError(f"{what} must be one of {names}, got {value!r}") from None


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
        options, rest = _split(params)
        role: Role = "actor" if _is_actor_class(op) else "operator"
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
        options, rest = _split(params)
        role: Role = "actor" if _is_actor_class(sink) else "sink"
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
        options, rest = _split(params)
        role: Role = "actor" if _is_actor_class(op) else "operator"
        return self.pipeline.add_stage(name, op, rest, list(self.names), role=role, **options)

    def to(self, sink: Any, name: str | None = None, **params: Any) -> StageHandle:
        """A sink fed by every merged stage (see ``StageHandle.to``)."""
        if isinstance(sink, StageHandle):
            for upstream in self.names:
                self.pipeline.connect(upstream, sink.name)
            return sink
        options, rest = _split(params)
        role: Role = "actor" if _is_actor_class(sink) else "sink"
        return self.pipeline.add_stage(name, sink, rest, list(self.names), role=role, **options)


def _split(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    options = {k: v for k, v in params.items() if k in STAGE_OPTIONS}
    rest = {k: v for k, v in params.items() if k not in STAGE_OPTIONS}
    return options, rest


def _is_actor_class(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, Actor)


class Pipeline:
    """A graph of stages run as actors under one Supervisor.

    ``system``: run in this ActorSystem (default: the pipeline makes its own and shuts it
    down on stop). ``strategy``, ``intensity`` (restarts allowed within ``period`` seconds
    before the pipeline fails) and ``backoff`` configure the supervisor. ``capacity``,
    ``overflow``, ``put_timeout``, ``restart`` and ``on_error`` are the defaults for every
    stage (each stage may set its own).
    """

    def __init__(
        self,
        name: str,
        system: ActorSystem | None = None,
        *,
        strategy: Strategy | str = Strategy.ONE_FOR_ONE,
        intensity: int = 10,
        period: float = 5.0,
        backoff: Backoff | None = None,
        capacity: int | None = DEFAULT_CAPACITY,
        overflow: Overflow | str = Overflow.BACKPRESSURE,
        put_timeout: float | None = None,
        restart: Restart | str = Restart.PERMANENT,
        on_error: OnError = "skip",
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Pipeline name must be a non-empty string, got {name!r}")
        if system is not None and not isinstance(system, ActorSystem):
            raise TypeError(f"system must be an ActorSystem, got {system!r}")
        if isinstance(intensity, bool) or not isinstance(intensity, int) or intensity < 0:
            raise ValueError(f"intensity must be an integer >= 0, got {intensity!r}")
        if isinstance(period, bool) or not isinstance(period, int | float) or period <= 0:
            raise ValueError(f"period must be a number of seconds > 0, got {period!r}")
        if backoff is not None and not isinstance(backoff, Backoff):
            raise TypeError(f"backoff must be a Backoff, got {backoff!r}")
        self.name = name
        self._strategy: Strategy = _enum(Strategy, strategy, "strategy")
        self._intensity = intensity
        self._period = float(period)
        self._backoff = backoff or DEFAULT_BACKOFF
        self._defaults: dict[str, Any] = {
            "capacity": capacity,
            "overflow": overflow,
            "put_timeout": put_timeout,
            "restart": restart,
            "on_error": on_error,
            "shutdown_timeout": 5.0,
        }
        self._check_options("pipeline", self._defaults)
        self._system_arg = system
        self._system: ActorSystem | None = None
        self._specs: dict[str, StageSpec] = {}
        self._runtimes: dict[str, StageRuntime] = {}
        self._addresses: dict[str, Address] = {}
        self._supervisor: Address | None = None
        self._state = "new"  # new -> running -> stopping -> stopped
        self._lock = threading.RLock()
        self._stop_lock = threading.Lock()
        self._cond = threading.Condition()
        self._failure: BaseException | None = None
        self._stop_requested = False
        self._stopped_ok = True
        self._rows: dict[str, dict[str, Any]] = {}
        self._log = log.bind(pipeline=name)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r} stages={len(self._specs)} {self._state}>"

    # -- building ------------------------------------------------------------------------

    def source(self, kind: Any, name: str | None = None, **params: Any) -> StageHandle:
        """Add a source and return its handle.

        ``kind`` is a source kind (``"synthetic_prices"``, ``"jsonl_file"``, ``"keysquare"``,
        ``"inlet"``), a Source class or instance, or your own Actor class (it produces with
        ``self.emit(record)`` and calls ``self.finish()`` when done). Stage options as in
        ``StageHandle.then``; every other keyword goes to the source.
        """
        options, rest = _split(params)
        role: Role = "actor" if _is_actor_class(kind) else "source"
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
        return Merge(self, names)

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
            role = role or _infer_role(kind, inputs)
            name = self._stage_name(name, kind, role)
            for upstream in inputs:
                self._check_edge(upstream, name)
            if role in ("source",) and inputs:
                raise ValueError(f"stage {name!r}: a source takes no inputs, got {inputs!r}")
            if role in ("operator", "sink") and not inputs:
                raise ValueError(f"stage {name!r}: a {role} needs at least one input")
            build = _component(name, role, kind, params)
            merged = {**self._defaults, **options}
            self._check_options(f"stage {name!r}", merged)
            spec = StageSpec(
                name=name,
                role=role,
                kind=kind,
                params=params,
                inputs=inputs,
                capacity=merged["capacity"],
                overflow=_enum(Overflow, merged["overflow"], f"stage {name!r}: overflow"),
                put_timeout=merged["put_timeout"],
                mailbox_key=merged.get("mailbox_key"),
                restart=_enum(Restart, merged["restart"], f"stage {name!r}: restart"),
                on_error=merged["on_error"],
                shutdown_timeout=float(merged["shutdown_timeout"]),
                build=build,
            )
            spec.mailbox()  # raises now for a bad capacity, policy or conflation key
            self._specs[name] = spec
            return StageHandle(self, name)

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

    @staticmethod
    def _check_options(owner: str, options: Mapping[str, Any]) -> None:
        capacity = options.get("capacity")
        if capacity is not None and (
            isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1
        ):
            raise ValueError(f"{owner}: capacity must be an integer >= 1 or None, got {capacity!r}")
        timeout = options.get("put_timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0
        ):
            raise ValueError(f"{owner}: put_timeout must be seconds >= 0 or None, got {timeout!r}")
        on_error = options.get("on_error", "skip")
        if on_error not in ON_ERROR:
            raise ValueError(f"{owner}: on_error must be 'skip' or 'restart', got {on_error!r}")
        shutdown = options.get("shutdown_timeout", 5.0)
        if isinstance(shutdown, bool) or not isinstance(shutdown, int | float) or shutdown <= 0:
            raise ValueError(f"{owner}: shutdown_timeout must be seconds > 0, got {shutdown!r}")
        _enum(Overflow, options.get("overflow", "backpressure"), f"{owner}: overflow")
        _enum(Restart, options.get("restart", "permanent"), f"{owner}: restart")

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
        return StageHandle(self, name)

    def outputs(self, name: str) -> list[str]:
        """The stages ``name`` feeds, in the order added."""
        return [s.name for s in self._specs.values() if name in s.inputs]

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

    @property
    def system(self) -> ActorSystem | None:
        """The actor system the stages run in (once started)."""
        return self._system

    def address(self, name: str) -> Address:
        """The address of stage ``name`` (once started): tell records to it."""
        self.spec(name)
        address = self._addresses.get(name)
        if address is None:
            raise RuntimeError(
                f"pipeline {self.name!r} is not running: stage {name!r} has no address"
            )
        return address

    @property
    def failure(self) -> str | None:
        """Why the pipeline failed (its supervisor gave up), or None."""
        return None if self._failure is None else repr(self._failure)

    @property
    def done(self) -> bool:
        """True once every source has finished (finite sources only ever do)."""
        sources = [r for r in self._runtimes.values() if not self._specs[r.name].inputs]
        return bool(sources) and all(r.state.done for r in sources)

    def stats(self) -> dict[str, dict[str, int]]:
        """Per stage: ``received``, ``processed``, ``failed`` (its code raised on the record),
        ``dropped`` (mailbox overflow), ``dead_lettered`` (records told to it that it never
        handled: lost), ``mailbox_depth``, ``restarts``, ``emitted``, and the component's
        own counters prefixed ``source_``, ``op_`` or ``sink_``. Still readable after stop."""
        system = self._system
        rows: dict[str, dict[str, Any]] = {}
        lost: dict[str, int] = {}
        if system is not None:
            lost = system.dead_letters.lost()
            if not system.is_shut_down:
                rows = system.metrics()["actors"]
        out: dict[str, dict[str, int]] = {}
        for name, spec in self._specs.items():
            runtime = self._runtimes.get(name)
            state = runtime.state if runtime is not None else StageState()
            actor = f"{self.name}.{name}"
            row = rows.get(actor)
            if row is not None:
                self._rows[name] = row
            else:
                row = self._rows.get(name, {})
            stats: dict[str, int] = {}
            if spec.role == "actor":
                stats["received"] = max(int(row.get("received", 0)) - state.control, 0)
                stats["processed"] = max(int(row.get("processed", 0)) - state.control, 0)
                stats["failed"] = int(row.get("failed", 0))
                stats["emitted"] = state.emitted
            else:
                for counter in COUNTERS:
                    stats[counter] = getattr(state, counter)
            # Policy drops only: records refused by a restarting stage's full hold are
            # dead letters, counted in dead_lettered.
            stats["dropped"] = int(row.get("dropped", 0)) - int(row.get("lost", 0))
            stats["dead_lettered"] = lost.get(actor, 0)
            stats["mailbox_depth"] = int(row.get("mailbox_depth", 0))
            stats["restarts"] = int(row.get("restarts", 0))
            prefix = {"source": "source_", "sink": "sink_"}.get(spec.role, "op_")
            for key, value in state.component_stats.items():
                stats[prefix + key] = int(value)
            out[name] = stats
        return out

    def dispatcher_stats(self) -> dict[str, int]:
        """The pool running the stages: ``workers``, ``blocked_workers``,
        ``blocked_handoffs``, ``run_queue`` (empty before start and after stop)."""
        system = self._system
        if system is None or system.is_shut_down:
            return {}
        return dict(system.metrics()["dispatcher"])

    def links(self) -> dict[str, str]:
        """Stages that hold a connection (keysquare): stage name -> LinkState name."""
        return {
            name: runtime.state.link_state
            for name, runtime in self._runtimes.items()
            if runtime.state.link_state is not None
        }

    # -- running -------------------------------------------------------------------------

    def start(self) -> Pipeline:
        """Start every stage (sinks first) under the pipeline's supervisor; returns self.

        Raises if a stage fails to start (e.g. a keysquare source that cannot connect).
        """
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"pipeline {self.name!r} was already started")
            if not self._specs:
                raise ValueError(f"pipeline {self.name!r} has no stages")
            order = self.order()
            system = self._system_arg or ActorSystem(self.name)
            self._system = system
            children = []
            for name in reversed(order):  # downstream first: a stage's outputs exist
                spec = self._specs[name]
                runtime = StageRuntime(
                    pipeline=self.name,
                    name=name,
                    role=spec.role,
                    build=spec.build,
                    outputs=tuple(f"{self.name}.{o}" for o in self.outputs(name)),
                    external=tuple(spec.external),
                    on_error=spec.on_error,
                    notify=self._notify,
                )
                self._runtimes[name] = runtime
                children.append(
                    ChildSpec(
                        runtime.actor_name,
                        _stage_factory(spec, runtime),
                        restart=spec.restart,
                        shutdown_timeout=spec.shutdown_timeout,
                        mailbox=spec.mailbox(),
                    )
                )
            system.add_failure_listener(self._on_failure)
            self._state = "running"
            try:
                self._supervisor = system.spawn(
                    Supervisor,
                    children=children,
                    strategy=self._strategy,
                    max_restarts=self._intensity,
                    within=self._period,
                    backoff=self._backoff,
                    name=self.name,
                )
            except BaseException:
                self._state = "stopped"
                if self._system_arg is None:
                    system.shutdown()
                raise
            self._addresses = {n: system.lookup(f"{self.name}.{n}") for n in order}
            self._log.info("pipeline started", stages=order)
            return self

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _on_failure(self, address: Address, error: BaseException) -> None:
        if address != self._supervisor:
            return
        self._failure = error
        self._log.error("pipeline failed", error=repr(error))
        self._notify()

    def run(self, duration: float | None = None, *, drain_timeout: float = 10.0) -> None:
        """Start (if needed) and block until every source is done, ``duration`` seconds
        pass, ``stop()`` is called, or KeyboardInterrupt; then drain and stop.

        Raises PipelineError if the pipeline failed (a stage kept failing).
        """
        if duration is not None and (
            isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0
        ):
            raise ValueError(f"duration must be seconds >= 0 or None, got {duration!r}")
        if self._state == "new":
            self.start()
        deadline = None if duration is None else time.monotonic() + duration
        try:
            with self._cond:
                while not (self._stop_requested or self._failure is not None or self.done):
                    if deadline is None:
                        self._cond.wait()
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
        except KeyboardInterrupt:
            self._log.info("interrupted: draining")
        finally:
            self.stop(drain=True, timeout=drain_timeout)
        if self._failure is not None:
            raise PipelineError(f"pipeline {self.name!r} failed: {self._failure}") from (
                self._failure
            )

    def stop(self, drain: bool = True, timeout: float = 10.0) -> bool:
        """Stop the pipeline; True if everything finished within ``timeout`` seconds.

        With ``drain=True`` the sources stop producing, then each stage in topological
        order handles every record it has accepted, flushes what its operator holds (open
        windows, partial batches) downstream, and (sinks) flushes its files, before the
        stages stop: no record the pipeline accepted is lost. With ``drain=False`` the
        stages still handle the records already in their mailboxes as they stop (sources
        first) but what operators hold is discarded. Idempotent.

        Called from inside one of the pipeline's own stages (a callback sink deciding it
        has seen enough), the stop runs on a thread of its own, since the calling stage
        has to keep handling messages for it to finish; returns True at once.
        """
        with self._cond:
            self._stop_requested = True
            self._cond.notify_all()
        system = self._system
        if system is not None and not system.is_shut_down:
            me = system.current()
            if me is not None and me.name.startswith(f"{self.name}."):
                threading.Thread(
                    target=self.stop,
                    args=(drain, timeout),
                    name=f"{self.name}-stop",
                    daemon=True,
                ).start()
                return True
        with self._stop_lock:
            if self._state == "new":
                self._state = "stopped"
                return True
            if self._state == "stopped":
                return self._stopped_ok
            self._state = "stopping"
            deadline = time.monotonic() + timeout
            ok = True
            drainer: threading.Thread | None = None
            supervisor = self._supervisor
            if supervisor is not None and supervisor.is_alive():
                ok, drainer = self._drain(deadline, full=drain)
                self.stats()  # keep the last counters readable after the actors are gone
                stopped = supervisor.stop(timeout=max(deadline - time.monotonic(), 0.5))
                ok = ok and stopped
            else:
                ok = False
            self.stats()
            if self._system_arg is None and self._system is not None:
                self._system.shutdown(timeout=max(deadline - time.monotonic(), 1.0))
            if drainer is not None:
                drainer.join(max(deadline - time.monotonic(), 0.5))
            self._state = "stopped"
            self._stopped_ok = ok
            self._log.info("pipeline stopped", drained=drain, clean=ok)
            return ok

    def _drain(self, deadline: float, *, full: bool) -> tuple[bool, threading.Thread | None]:
        """Quiesce the sources, then (``full``) drain every stage in topological order, on a
        helper thread so that a stuck stage cannot hold ``stop`` past its deadline."""
        order = self.order()
        sources = [n for n in order if not self._specs[n].inputs]
        result: list[bool] = []

        def work() -> None:
            try:
                for name in sources:
                    self._ask(name, Quiesce(), deadline)
                if full:
                    for name in order:
                        self._ask(name, Drain(), deadline)
            except TimeoutError as exc:
                self._log.warning("drain did not finish in time", error=str(exc))
                return
            result.append(True)

        thread = threading.Thread(target=work, name=f"{self.name}-drain", daemon=True)
        thread.start()
        thread.join(max(deadline - time.monotonic(), 0.0))
        if thread.is_alive():
            self._log.warning("drain did not finish in time; stopping anyway")
            return False, thread
        return bool(result), None

    def _ask(self, name: str, message: Any, deadline: float) -> Any:
        address = self._addresses[name]
        pause = threading.Event()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"stage {name!r} did not answer {type(message).__name__}")
            try:
                return address.ask(message, timeout=remaining)
            except MailboxFull:
                pause.wait(min(0.01, remaining))  # a full FAIL/DROP_NEWEST mailbox: retry
            except ActorDeadError:
                self._log.warning("stage is gone; not drained", stage=name)
                return None

    # -- context manager -----------------------------------------------------------------

    def __enter__(self) -> Pipeline:
        if self._state == "new":
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(drain=exc_type is None)


# -- building components ------------------------------------------------------------------


def _infer_role(kind: Any, inputs: list[str]) -> Role:
    if _is_actor_class(kind):
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


def _component(name: str, role: Role, kind: Any, params: dict[str, Any]) -> Callable[[], Any]:
    """A function building the stage's component for each incarnation; checks now."""
    owner = f"stage {name!r}"
    if isinstance(kind, Actor):
        raise TypeError(
            f"{owner}: pass your Actor class, not an instance (each restart builds a new "
            f"one); its constructor arguments go as keyword parameters"
        )
    if role == "actor":
        if not _is_actor_class(kind):
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


def _stage_factory(spec: StageSpec, runtime: StageRuntime) -> Callable[[], Actor]:
    if spec.role == "actor":
        cls = spec.kind
        params = spec.params
        return lambda: build_user_actor(cls, params, runtime)
    stage_cls = OneByOneStage if spec.on_error == "restart" else Stage
    return lambda: stage_cls(runtime)
