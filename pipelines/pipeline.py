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

This module runs the graph (start, run, stop and drain, and what it reads back while it
runs). The building lives beside it: :class:`StageGraph` (``graph.py``: ``add_stage``,
the one way stages are added), the fluent handles (``handles.py``), stage specs and options
(``spec.py``), what each stage runs (``components.py``) and per-stage counters
(``stats.py``).
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

import structlog

from ..actors import (
    ActorDeadError,
    ActorSystem,
    Address,
    Backoff,
    ChildSpec,
    MailboxFull,
    Overflow,
    Restart,
    Strategy,
    Supervisor,
)
from ..actors.errors import ActorwireError
from .acks import plan, problems
from .components import stage_factory
from .graph import StageGraph
from .handles import Merge, StageHandle

# STAGE_OPTIONS and COUNTERS are part of this module's namespace too (not of __all__).
from .spec import STAGE_OPTIONS, StageSpec, coerce_enum  # noqa: F401
from .stage import Drain, OnError, Quiesce, StageRuntime
from .stats import COUNTERS, stage_stats  # noqa: F401

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


class PipelineError(ActorwireError, RuntimeError):
    """The pipeline failed: its supervisor gave up after too many restarts."""


class Pipeline(StageGraph):
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
        self._strategy: Strategy = coerce_enum(Strategy, strategy, "strategy")
        self._intensity = intensity
        self._period = float(period)
        self._backoff = backoff or DEFAULT_BACKOFF
        defaults: dict[str, Any] = {
            "capacity": capacity,
            "overflow": overflow,
            "put_timeout": put_timeout,
            "restart": restart,
            "on_error": on_error,
            "shutdown_timeout": 5.0,
        }
        super().__init__(name, defaults)
        self._system_arg = system
        self._system: ActorSystem | None = None
        self._runtimes: dict[str, StageRuntime] = {}
        self._addresses: dict[str, Address] = {}
        self._supervisor: Address | None = None
        self._stop_lock = threading.Lock()
        self._cond = threading.Condition()
        self._failure: BaseException | None = None
        self._stop_requested = False
        self._stopped_ok = True
        self._rows: dict[str, dict[str, Any]] = {}
        self._log = log.bind(pipeline=name)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r} stages={len(self._specs)} {self._state}>"

    # -- inspection ----------------------------------------------------------------------

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
        return stage_stats(self.name, self._specs, self._runtimes, self._system, self._rows)

    def dispatcher_stats(self) -> dict[str, int]:
        """The pool running the stages: ``workers``, ``blocked_workers``,
        ``blocked_handoffs``, ``run_queue`` (empty before start and after stop)."""
        system = self._system
        if system is None or system.is_shut_down:
            return {}
        return dict(system.metrics()["dispatcher"])

    def components_running(self) -> list[Any]:
        """The component (source, operator or sink) of each stage's current incarnation, for
        a reader of their state (the live view's ``view`` sinks); empty before ``start``."""
        return [rt.component for rt in self._runtimes.values() if rt.component is not None]

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
            components = self.components()
            refused = problems(self._specs, components, self.outputs)
            if refused:
                raise ValueError(f"pipeline {self.name!r}: " + "; ".join(p.text for p in refused))
            carrying, paths = plan(self._specs, components, self.outputs)
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
                    barriers=name in carrying,
                    paths=paths.get(name, 0),
                )
                self._runtimes[name] = runtime
                children.append(
                    ChildSpec(
                        runtime.actor_name,
                        stage_factory(spec, runtime),
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
