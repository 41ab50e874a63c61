"""The stage actor: the shell that runs one source, operator or sink inside a pipeline.

A stage drains its mailbox in batches. Records (plain dicts) go through the stage's
component, and the outputs go to every downstream stage with one ``tell_many`` per batch.
Everything time-based is a deadline the component reports (``next_deadline`` for operators
and sinks, ``next_poll`` for sources): the stage keeps one timer for it, re-armed only when
the deadline changes. The timer message is only a wake-up (a Control message, which a full
mailbox never drops): due work runs at the end of every batch, whichever message began it.

Errors: a record whose handling raises is counted as ``failed`` and sent to the system's
dead letters (counted and logged there with the stage's name and the error); with
``on_error="skip"`` (the default) the stage goes on with the next record, with
``on_error="restart"`` the stage then fails and its supervisor restarts it (records after
the failing one wait in the stage's address and go to the new incarnation).

Counters that must outlive restarts (records received, processed, failed, emitted, a
source's progress) live in a :class:`StageState` owned by the pipeline, not in the actor.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..actors import Actor, Address, Control, Timer
from .operators import Operator

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from ..actors import ActorSystem

__all__ = [
    "Barrier",
    "BarrierDone",
    "Drain",
    "Quiesce",
    "Sink",
    "Source",
    "StageActor",
    "StageContext",
    "StageState",
]

Role = Literal["source", "operator", "sink", "actor"]
OnError = Literal["skip", "restart"]
ON_ERROR = ("skip", "restart")

_MAX_TICKS_PER_BATCH = 100
"""Bound on back-to-back ``on_tick`` calls at one batch end (a component whose deadline
never moves past ``now`` must not spin the stage)."""


# -- messages ---------------------------------------------------------------------------


class StageTimer(Control):
    """Timer wake-up for a stage; ``slot`` says which timer ("tick" or "poll"). A Control
    message: a full mailbox never drops it, so a saturated stage counts no false drops."""

    __slots__ = ("slot",)

    def __init__(self, slot: str) -> None:
        self.slot = slot


class Quiesce:
    """Asked of every source first at a drain: stop producing (unsubscribe, stop reading)."""

    __slots__ = ()


class Drain:
    """Asked of each stage in topological order at a drain: everything before it in the
    mailbox has been handled; flush what the component holds, forward it, and reply."""

    __slots__ = ()


CONTROL = (Quiesce, Drain)


class Barrier:
    """A marker that a source with acknowledgements (``Source.acks``) puts between its
    records: every stage passes it on in order, after everything derived from the records
    before it (a window holds it until the windows open when it came have closed), and each
    terminal stage reports it done to the source (:class:`BarrierDone`) once what it got
    before the barrier is accepted (a sink's writes confirmed). The source then acknowledges
    the records before the barrier upstream: nothing is acknowledged that a crash could
    still lose."""

    __slots__ = ("n", "origin")

    def __init__(self, origin: str, n: int) -> None:
        self.origin = origin  # the source stage's actor name
        self.n = n

    def __repr__(self) -> str:
        return f"Barrier({self.origin!r}, {self.n})"


class BarrierDone(Control):
    """To the source stage ``barrier.origin``: one path from it to a terminal stage has
    passed barrier ``n`` on (a Control message: never dropped, never blocks the sender)."""

    __slots__ = ("n", "stage")

    def __init__(self, n: int, stage: str) -> None:
        self.n = n
        self.stage = stage

    def __repr__(self) -> str:
        return f"BarrierDone({self.n}, {self.stage!r})"


# -- shared state -----------------------------------------------------------------------


class StageState:
    """What outlives a stage's incarnations: record counters and a source's progress.

    Written by the stage's own thread (a push source's subscription actor for ``emitted``);
    read by ``Pipeline.stats()``.
    """

    __slots__ = (
        "component_stats",
        "control",
        "done",
        "drained",
        "emitted",
        "failed",
        "incarnations",
        "link_state",
        "position",
        "processed",
        "received",
    )

    def __init__(self) -> None:
        self.received = 0
        self.processed = 0
        self.failed = 0
        self.emitted = 0
        self.control = 0  # pipeline control asks a user actor stage answered
        self.incarnations = 0
        self.position = 0  # records a source has produced (resumed after a restart)
        self.done = False  # a finite source has produced everything
        self.drained = False
        self.link_state: str | None = None
        self.component_stats: dict[str, int] = {}


@dataclass
class StageRuntime:
    """How the pipeline builds one stage: handed to every incarnation's constructor."""

    pipeline: str
    name: str
    role: Role
    build: Callable[[], Any]  # a new (or the same, for instances) component per incarnation
    outputs: tuple[str, ...]  # actor names of the downstream stages
    external: tuple[Address, ...] = ()  # addresses outside the pipeline (``.to(address)``)
    state: StageState = field(default_factory=StageState)
    on_error: OnError = "skip"
    notify: Callable[[], None] = lambda: None  # a source finished
    component: Any = None  # the last incarnation's component
    barriers: bool = False  # downstream of a source with acknowledgements: Barriers come
    paths: int = 0  # a source with acknowledgements: the paths to terminal stages

    @property
    def actor_name(self) -> str:
        return f"{self.pipeline}.{self.name}"


class StageContext:
    """What a source or sink gets in ``start(ctx)``: its names, the system, a logger,
    ``emit`` for push sources, and ``record_failed`` for per-record errors."""

    def __init__(self, stage: _Wiring, runtime: StageRuntime) -> None:
        self._stage = stage
        self.name = runtime.name
        self.pipeline = runtime.pipeline
        self.state = runtime.state
        self.system: ActorSystem = stage.system
        self.address: Address = stage.address
        self.log: FilteringBoundLogger = stage.log

    @property
    def incarnation(self) -> int:
        """1 for the first start, 2 after the first restart, ..."""
        return self.state.incarnations

    def emit(self, records: list[Any]) -> None:
        """Hand records to the downstream stages now (safe from another thread, e.g. a
        subscription callback)."""
        self._stage._forward(records)

    def record_failed(self, record: Any, error: BaseException) -> None:
        """Count one record as failed and send it to dead letters (a sink's bad record)."""
        self._stage._record_failed(record, error, raise_now=False)

    def set_link_state(self, state: str) -> None:
        """Report a connection's state (a LinkState name) for health checks."""
        self.state.link_state = state

    @property
    def paths(self) -> int:
        """A source with acknowledgements: how many :class:`BarrierDone` make one barrier
        done (the paths from it to terminal stages; 0: none, a barrier is done at once)."""
        return self._stage._rt.paths

    def wake(self) -> None:
        """Have the stage poll its source soon (safe from any thread, never blocks): for a
        source whose records arrive on another thread."""
        self.address.tell_control(StageTimer("poll"))

    def barrier_done(self, barrier: Barrier) -> None:
        """A terminal stage (a sink): everything before ``barrier`` is accepted (safe from
        any thread, never blocks)."""
        self._stage._barrier_done(barrier)


# -- components -------------------------------------------------------------------------


class Source:
    """Base for sources: records come from ``poll`` (pulled on the stage's timer) or are
    pushed with ``ctx.emit`` (from a callback). Constructors only check parameters;
    resources are opened in ``start``."""

    def start(self, ctx: StageContext) -> None:
        """Open what the source reads (runs in the stage actor's ``on_start``)."""

    def poll(self, now: float) -> list[Any]:
        """The records due at ``now`` (stage clock, seconds)."""
        return []

    def next_poll(self) -> float | None:
        """When ``poll`` next has work (stage clock); None: nothing scheduled."""
        return None

    @property
    def done(self) -> bool:
        """True once a finite source has produced everything."""
        return False

    def skip(self, count: int) -> None:
        """After a restart: the first ``count`` records were already produced."""

    acks: bool = False
    """True for a source that acknowledges what it read once it is passed on (it puts
    :class:`Barrier` markers between its records and gets ``on_barrier_done``)."""

    def on_barrier_done(self, n: int, stage: str) -> None:
        """One path to a terminal stage (``stage``) has passed barrier ``n`` on."""

    def stop(self) -> None:
        """Stop producing and release resources; idempotent."""

    def quiesce(self) -> None:
        """Stop producing (the first step of a drain; ``stop`` follows once the stages
        after it have drained). By default ``stop``; a source that still has work after
        the drain (acknowledging what the sinks accepted meanwhile) keeps its resources."""
        self.stop()

    def stats(self) -> dict[str, int]:
        return {}


class Sink:
    """Base for sinks: ``write`` takes each batch of records; ``flush`` makes everything
    written durable (at a drain); ``stop`` closes. Constructors only check parameters."""

    def start(self, ctx: StageContext) -> None:
        """Open files or connections (runs in the stage actor's ``on_start``)."""

    def write(self, records: list[Any], now: float) -> None:
        raise NotImplementedError

    def next_deadline(self) -> float | None:
        return None

    def on_tick(self, now: float) -> None:
        """Time-based work (e.g. refreshing a live table) when ``next_deadline`` is due."""

    def flush(self, now: float) -> None:
        """Push everything buffered out (at a drain and before ``stop``)."""

    def on_barrier(self, barrier: Barrier, now: float, ctx: StageContext) -> None:
        """Every record written before ``barrier`` must be accepted (kept whatever happens
        to this process) before ``ctx.barrier_done(barrier)``. By default ``flush`` and done
        at once; a sink whose writes are confirmed later (a publish's ack) calls it then."""
        self.flush(now)
        ctx.barrier_done(barrier)

    def stop(self) -> None:
        """Flush and close; idempotent."""

    def stats(self) -> dict[str, int]:
        return {}


# -- the stage shell --------------------------------------------------------------------


class _Wiring:
    """Downstream wiring and failure accounting shared by the shell and user actor stages."""

    system: ActorSystem
    address: Address
    log: FilteringBoundLogger
    _rt: StageRuntime
    _downstream: list[Address]

    def _resolve_downstream(self) -> None:
        rt = self._rt
        # Downstream stages start first (the pipeline orders its children that way), so
        # their addresses exist; an address survives their restarts.
        self._downstream = [self.system.lookup(n) for n in rt.outputs] + list(rt.external)

    def _forward(self, records: list[Any]) -> None:
        if not records:
            return
        downstream = self._downstream
        if self._rt.barriers and any(r.__class__ is Barrier for r in records):
            self._forward_with_barriers(records)
            return
        if not downstream:
            return
        downstream[0].tell_many(records)
        for address in downstream[1:]:
            # Each further branch gets its own shallow copies: a branch that edits a
            # record in place must not change what another branch sees.
            address.tell_many([dict(r) if type(r) is dict else r for r in records])
        self._rt.state.emitted += len(records)

    def _forward_with_barriers(self, records: list[Any]) -> None:
        """Barriers go on to the pipeline's own downstream stages only (not to addresses
        outside it); where there are none, this stage is terminal and reports them done."""
        plain = [r for r in records if r.__class__ is not Barrier]
        internal = len(self._downstream) - len(self._rt.external)
        if internal <= 0:
            for r in records:
                if r.__class__ is Barrier:
                    self._barrier_done(r)
        for i, address in enumerate(self._downstream):
            batch = records if i < internal else plain
            if not batch:
                continue
            address.tell_many(
                batch if i == 0 else [dict(r) if type(r) is dict else r for r in batch]
            )
        if self._downstream:
            self._rt.state.emitted += len(plain)

    def _barrier_done(self, barrier: Barrier) -> None:
        try:
            origin = self.system.lookup(barrier.origin)
        except LookupError:
            return  # the source has stopped: nothing is left to acknowledge
        origin.tell_control(BarrierDone(barrier.n, self._rt.name))

    def _record_failed(self, record: Any, error: BaseException, *, raise_now: bool) -> None:
        rt = self._rt
        rt.state.failed += 1
        self.system.dead_letters.record(
            self.address.name,
            record,
            f"stage {rt.name!r} failed on the record: {error!r}",
            failed=True,
        )
        if raise_now:
            raise error


class Stage(_Wiring, Actor):
    """Runs one component (a Source, an Operator or a Sink) as a pipeline stage."""

    def __init__(self, runtime: StageRuntime) -> None:
        super().__init__()
        self._rt = runtime
        self._downstream = []
        self._source: Source | None = None
        self._op: Operator | None = None
        self._sink: Sink | None = None
        self._producing = False
        self._timers: dict[str, Timer] = {}
        self._armed: dict[str, float] = {}
        self._raise = runtime.on_error == "restart"
        self._clock: Callable[[], float] = time.monotonic  # the system's clock from on_start
        self._ctx: StageContext = None  # type: ignore[assignment]  # set in on_start
        self._woken = False

    # -- lifecycle ---------------------------------------------------------------------

    def on_start(self) -> None:
        rt = self._rt
        state = rt.state
        state.incarnations += 1
        self._clock = self.system.clock
        self.log = self.log.bind(pipeline=rt.pipeline, stage=rt.name)
        self._resolve_downstream()
        component = rt.build()
        fresh = component is not rt.component  # an instance given by the user is reused
        rt.component = component
        ctx = StageContext(self, rt)
        self._ctx = ctx
        if rt.role == "source":
            assert isinstance(component, Source)
            self._source = component
            if fresh and state.position:
                component.skip(state.position)  # resume after a restart, no duplicates
            component.start(ctx)
            self._producing = not state.drained
        elif rt.role == "sink":
            assert isinstance(component, Sink)
            self._sink = component
            component.start(ctx)
        else:
            self._op = component
        self._batch_end(self._clock())

    def on_stop(self) -> None:
        self._close()

    def on_failure(self, *_exc_info: Any) -> None:
        self._close()

    def _close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._source is not None:
            self._source.stop()
        if self._sink is not None:
            self._sink.stop()
        self._snapshot_stats()

    # -- messages ----------------------------------------------------------------------

    def on_batch(self, messages: list[Any]) -> None:
        records = [m for m in messages if not isinstance(m, Control)]
        if len(records) != len(messages):
            for m in messages:
                if m.__class__ is BarrierDone:
                    self._on_barrier_done(m)
                    continue
                timer = self._timers.get(m.slot) if m.__class__ is StageTimer else None
                if timer is not None and timer.message is m:  # else a stale wake-up
                    del self._timers[m.slot]
                    self._armed.pop(m.slot, None)
                elif m.__class__ is StageTimer and m.slot == "poll":
                    # A source's wake() (or a stale wake-up): poll now; an armed timer stays.
                    self._woken = True
        now = self._clock()
        if records:
            self._process(records, now)
        self._batch_end(now)

    def on_receive(self, message: Any) -> Any:
        if message.__class__ is Drain:
            return self._drain()
        if message.__class__ is Quiesce:
            return self._quiesce()
        self.on_batch([message])  # one message at a time (on_error="restart")
        return None

    # -- records -----------------------------------------------------------------------

    def _on_barrier_done(self, done: BarrierDone) -> None:
        source = self._source
        if source is None:
            return
        try:
            source.on_barrier_done(done.n, done.stage)
        except Exception as exc:  # noqa: BLE001 - counted and logged; the stage goes on
            self._component_failed("on_barrier_done", exc)

    def _process(self, records: list[Any], now: float) -> None:
        if self._rt.barriers and any(r.__class__ is Barrier for r in records):
            self._process_with_barriers(records, now)
            return
        state = self._rt.state
        state.received += len(records)
        op = self._op
        sink = self._sink
        if sink is not None:
            failed_before = state.failed
            try:
                sink.write(records, now)
            except Exception as exc:  # a sink's error is counted, not fatal
                for record in records[: len(records) - (state.failed - failed_before)]:
                    self._record_failed(record, exc, raise_now=False)
                if self._raise:
                    raise
                return
            failed = state.failed - failed_before
            state.processed += len(records) - failed
            if failed and self._raise:
                raise RuntimeError(f"sink {self._rt.name!r} failed on {failed} record(s)")
            return
        if op is None:  # a source: records told to its address pass straight through
            state.processed += len(records)
            self._forward(records)
            return
        outputs: list[Any] = []
        on_record = op.on_record
        ok = 0
        for record in records:
            try:
                result = on_record(record, now)
            except Exception as exc:  # noqa: BLE001 - a user function's error is counted
                self._forward(outputs)
                outputs = []
                self._record_failed(record, exc, raise_now=self._raise)
                continue
            ok += 1
            if result:
                outputs.extend(result)
        state.processed += ok
        self._forward(outputs)

    def _process_with_barriers(self, records: list[Any], now: float) -> None:
        """``_process`` for a batch holding Barriers: the records between them as a batch
        each, every Barrier handled in its place."""
        run: list[Any] = []
        for item in records:
            if item.__class__ is not Barrier:
                run.append(item)
                continue
            if run:
                self._process(run, now)
                run = []
            self._barrier(item, now)
        if run:
            self._process(run, now)

    def _barrier(self, barrier: Barrier, now: float) -> None:
        sink, op = self._sink, self._op
        if sink is not None:
            try:
                sink.on_barrier(barrier, now, self._ctx)
            except Exception as exc:  # noqa: BLE001 - the barrier stays undone: logged
                self._component_failed("on_barrier", exc)
            return
        if op is not None:
            on_barrier = getattr(op, "on_barrier", None)
            if on_barrier is not None:
                try:
                    self._forward(on_barrier(barrier, now))
                except Exception as exc:  # noqa: BLE001 - the barrier stays undone: logged
                    self._component_failed("on_barrier", exc)
                return
        self._forward([barrier])  # a source's own, or a stage that holds no records

    # -- time --------------------------------------------------------------------------

    def _batch_end(self, now: float) -> None:
        source = self._source
        if source is not None and self._producing:
            due = source.next_poll()
            if self._woken or (due is not None and due <= now):
                self._woken = False
                self._poll(source, now)
                due = source.next_poll()
            if source.done and not self._rt.state.done:
                self._rt.state.done = True
                self.log.info("source finished", records=self._rt.state.position)
                self._rt.notify()
            self._arm("poll", due if self._producing else None, now)
        timed: Operator | Sink | None = self._op if self._op is not None else self._sink
        if timed is not None:
            due = timed.next_deadline()
            rounds = 0
            while due is not None and due <= now and rounds < _MAX_TICKS_PER_BATCH:
                rounds += 1
                self._tick(timed, now)
                due = timed.next_deadline()
            self._arm("tick", due, now)
        self._snapshot_stats()

    def _poll(self, source: Source, now: float) -> None:
        try:
            records = source.poll(now)
        except Exception as exc:
            self.log.error("source poll failed", error=repr(exc))
            raise  # a broken source is a failure for the supervisor
        if records:
            state = self._rt.state
            n = len(records)
            if self._rt.barriers:
                n -= sum(1 for r in records if r.__class__ is Barrier)
            state.position += n
            state.received += n
            state.processed += n
            self._forward(records)

    def _tick(self, timed: Operator | Sink, now: float) -> None:
        try:
            outputs = timed.on_tick(now)
        except Exception as exc:  # noqa: BLE001 - counted, then skipped or re-raised
            self._component_failed("on_tick", exc)
            return
        if outputs:
            self._forward(outputs)

    def _component_failed(self, what: str, error: Exception) -> None:
        """A failure outside any one record (a tick, a flush): counted and logged."""
        self._rt.state.failed += 1
        self.log.error(f"{what} failed", error=repr(error))
        if self._raise:
            raise error

    def _arm(self, slot: str, due: float | None, now: float) -> None:
        if due is None or self._armed.get(slot) == due:
            return
        old = self._timers.pop(slot, None)
        if old is not None:
            old.cancel()
        self._armed[slot] = due
        self._timers[slot] = self.system.send_after(
            max(due - now, 0.0), self.address, StageTimer(slot)
        )

    # -- drain -------------------------------------------------------------------------

    def _quiesce(self) -> bool:
        if self._source is not None and self._producing:
            self._producing = False
            timer = self._timers.pop("poll", None)
            if timer is not None:
                timer.cancel()
            self._source.quiesce()
        return True

    def _drain(self) -> bool:
        self._quiesce()
        now = self._clock()
        op = self._op
        if op is not None and self._rt.barriers and getattr(op, "holds_records", False):
            # Behind a source with acknowledgements, what the operator holds (an open
            # window) is unacknowledged: the next run gets it again and computes it whole.
            # Flushed now, a part would go out under the whole's identity.
            self.log.info("open state left for the next run", **op.stats())
        elif op is not None:
            try:
                outputs = op.flush(now)
            except Exception as exc:  # noqa: BLE001 - counted; the drain goes on
                self._rt.state.failed += 1
                self.log.error("flush failed", error=repr(exc))
                outputs = []
            self._forward(outputs)
        if self._sink is not None:
            self._sink.flush(now)
        self._rt.state.drained = True
        self._snapshot_stats()
        return True

    def _snapshot_stats(self) -> None:
        component: Any = self._source or self._sink or self._op
        if component is None:
            return
        try:
            stats = component.stats()
        except Exception:  # noqa: BLE001 - stats are best effort
            return
        state = self._rt.state
        if stats or state.component_stats:
            state.component_stats = dict(stats)


class OneByOneStage(Stage):
    """A stage with ``on_error="restart"``: one message per call, so a failure leaves every
    record after the failing one in the address for the next incarnation."""

    on_batch = Actor.on_batch

    def on_receive(self, message: Any) -> Any:
        if message.__class__ is Drain:
            return self._drain()
        if message.__class__ is Quiesce:
            return self._quiesce()
        Stage.on_batch(self, [message])
        return None


# -- user actors as stages --------------------------------------------------------------


class StageActor(_Wiring, Actor):
    """Base for your own actor as a pipeline stage (subclassing it is optional: any Actor
    subclass works, and gets these methods when wired into a pipeline).

    Records told to the stage reach ``on_receive`` / ``on_batch`` as for any actor.
    ``self.emit(record)`` / ``self.emit_many(records)`` send to the downstream stages,
    ``self.downstream`` lists their addresses. As a source, call ``self.finish()`` once
    everything is produced (``Pipeline.run()`` returns when every source has finished).
    ``on_drain()`` runs at ``stop(drain=True)`` after every record told before it: emit
    what you hold there, and stop producing.
    """

    @property
    def downstream(self) -> Sequence[Address]:
        return tuple(getattr(self, "_downstream", ()))

    @property
    def stage_name(self) -> str:
        return self._rt.name

    def emit(self, record: Any) -> None:
        self.emit_many([record])

    def emit_many(self, records: list[Any]) -> None:
        self._forward(records)

    def finish(self) -> None:
        state = self._rt.state
        if not state.done:
            state.done = True
            self._rt.notify()

    def on_drain(self) -> None:
        """Called at a drain, in topological order; emit what is held, stop producing."""


class _UserStageMixin:
    """Put first in a user actor's MRO: answers the pipeline's control asks, so the user's
    ``on_receive`` only ever sees records."""

    def on_start(self) -> None:
        assert isinstance(self, StageActor)
        self._resolve_downstream()
        self._rt.state.incarnations += 1
        super().on_start()  # type: ignore[misc]

    def on_receive(self, message: Any) -> Any:
        if message.__class__ is Barrier:
            assert isinstance(self, StageActor)
            self._rt.state.control += 1  # not a record: out of the stage's counts
            self._forward([message])
            return None
        if message.__class__ in CONTROL:
            assert isinstance(self, StageActor)
            self._rt.state.control += 1
            if message.__class__ is Drain:
                self.on_drain()
                self._rt.state.drained = True
            return True
        return super().on_receive(message)  # type: ignore[misc]


class _UserBatchMixin:
    """Put before the user's class when it overrides ``on_batch``: a Barrier passes on after
    the records before it were handled (what the actor emits later is not waited for)."""

    def on_batch(self, messages: list[Any]) -> None:
        if not any(m.__class__ is Barrier for m in messages):
            super().on_batch(messages)  # type: ignore[misc]
            return
        assert isinstance(self, StageActor)
        run: list[Any] = []
        for message in messages:
            if message.__class__ is not Barrier:
                run.append(message)
                continue
            if run:
                super().on_batch(run)  # type: ignore[misc]
                run = []
            self._rt.state.control += 1  # not a record: out of the stage's counts
            self._forward([message])
        if run:
            super().on_batch(run)  # type: ignore[misc]


_user_classes: dict[type[Actor], type[Actor]] = {}
_user_lock = threading.Lock()


def user_stage_class(cls: type[Actor]) -> type[Actor]:
    """The class a user's Actor runs as in a pipeline: the user's class with the stage
    methods (``emit``, ``finish``, ``on_drain``) and the control-ask handling added."""
    with _user_lock:
        built = _user_classes.get(cls)
        if built is None:
            bases: tuple[type, ...] = (
                (_UserStageMixin, cls)
                if issubclass(cls, StageActor)
                else (_UserStageMixin, StageActor, cls)
            )
            if cls.on_batch is not Actor.on_batch:
                bases = (_UserBatchMixin, *bases)
            built = type(
                cls.__name__,
                bases,
                {"__module__": cls.__module__, "__qualname__": cls.__qualname__},
            )
            _user_classes[cls] = built
        return built


def build_user_actor(cls: type[Actor], params: dict[str, Any], runtime: StageRuntime) -> Actor:
    """A new incarnation of a user actor stage."""
    actor = user_stage_class(cls)(**params)
    actor._rt = runtime  # type: ignore[attr-defined]
    actor._downstream = []  # type: ignore[attr-defined]
    return actor
