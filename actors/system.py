"""The actor system: registry, cells (stable addresses), I/O loop, timers, dead letters."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from pykka import ActorDeadError
from pykka import messages as pykka_messages
from pykka._envelope import Envelope

from .actor import Actor
from .address import Address
from .clock import Clock, monotonic
from .deadletters import DeadLetters
from .dispatcher import (
    Dispatcher,
    PinnedDispatcher,
    PoolDispatcher,
    _local,
    _set_current,
    blocking,
    current_cell,
)
from .errors import ActorwireError
from .ioloop import IOLoop
from .mailbox import Mailbox, _expand, build_inbox
from .messages import NORMAL, SHUTDOWN, Control, ExpectedFailure, Stop, Terminated, Wake, is_failure
from .timers import Timer, TimerService

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

__all__ = ["ActorStartError", "ActorSystem", "FailureListener", "root_cause"]

A = TypeVar("A", bound=Actor)
FailureListener = Callable[[Address, BaseException], None]

DEFAULT_HOLD_LIMIT = 10_000
"""Messages held for an actor while it restarts; beyond that, senders wait."""
DEFAULT_HOLD_TIMEOUT = 10.0
"""Seconds a sender waits for a restarting actor whose hold is full (unbounded mailbox;
a bounded one waits its ``put_timeout``); then the message is a counted dead letter."""


class ActorStartError(ActorwireError, RuntimeError):
    """An actor's ``on_start`` raised; the cause is chained."""


class _Internal:
    """Marker base for runtime messages that are not user data (never dead-lettered)."""

    __slots__ = ()


_RUNTIME_MESSAGES: tuple[type, ...] = (Stop, Wake, _Internal, pykka_messages._ActorStop)


class _Cell:
    """Everything that outlives one incarnation: the name, the inbox, counters, links.

    ``token`` is the dispatcher handshake: a one-element list while the actor is idle and
    may run, empty while a turn is queued or running and while the actor cannot run
    (starting, restarting, dead). Whoever pops the token (an atomic list operation)
    schedules the turn, so a sender only schedules an idle, running actor, at most once.
    """

    __slots__ = (
        "__weakref__",
        "actor",
        "address",
        "backlog",
        "children",
        "control",
        "dispatcher",
        "factory",
        "failed",
        "finalized",
        "inbox",
        "limit",
        "lock",
        "logger",
        "mailbox",
        "name",
        "parent",
        "pending",
        "policy_drops",
        "processed",
        "reason",
        "restarts",
        "state",
        "stop_by_parent",
        "stop_final",
        "submit",
        "system",
        "token",
        "watchers",
    )

    def __init__(
        self,
        system: ActorSystem,
        name: str,
        factory: Callable[[], Actor],
        mailbox: Mailbox | None,
        parent: _Cell | None,
        dispatcher: Dispatcher,
    ) -> None:
        self.system = system
        self.name = name
        self.factory = factory
        self.mailbox = mailbox
        self.parent = parent
        self.dispatcher = dispatcher
        self.submit = dispatcher._execute  # bound once: the hot path makes no extra call
        self.limit = dispatcher.throughput
        self.inbox = build_inbox(mailbox, self, self._reject, self._drop, system.hold_timeout)
        self.pending = self.inbox.items  # truthy while anything waits (a C-level check)
        self.address = Address(self)
        self.actor: Actor | None = None
        self.state = "new"  # new -> running -> held (restarting) -> running ... -> dead
        self.token: list[bool] = []  # not runnable until its first incarnation has started
        self.lock = threading.Lock()
        self.backlog: list[Any] = []
        self.control = 0  # runtime messages taken (stop, wake): not counted as received
        self.processed = 0
        self.failed = 0
        self.restarts = 0
        self.policy_drops = 0
        self.watchers: list[_Cell] | None = None
        self.children: dict[_Cell, None] | None = None
        self.stop_by_parent = False
        self.stop_final = False
        self.finalized = False
        self.reason: object = None
        self.logger: FilteringBoundLogger | None = None

    @property
    def log(self) -> FilteringBoundLogger:
        # Bound on first use, not per actor: 100,000 idle actors need no logger each.
        logger = self.logger
        if logger is None:
            logger = self.logger = _LOG.bind(system=self.system.name, actor=self.name)
        return logger

    @property
    def dead(self) -> bool:
        return self.state == "dead"

    # -- scheduling (see the dispatcher module) ---------------------------------------

    @property
    def scheduled(self) -> bool:
        """True while a turn is queued or running, or the actor cannot run."""
        return not self.token

    def schedule(self) -> None:
        """Queue a turn on the dispatcher unless one is queued or the actor cannot run."""
        try:
            self.token.pop()
        except IndexError:
            return
        self.submit(self)

    def runnable(self) -> None:
        """The incarnation may run now: open the handshake, and schedule what waits."""
        self.token.append(True)
        if self.backlog or self.pending:
            self.schedule()

    def run_turn(self) -> None:
        """One turn on a dispatcher thread: start the incarnation, or handle messages."""
        actor = self.actor
        if actor is None or not actor._aw_running:
            if actor is not None and not actor._aw_started and not actor._aw_finished:
                self.system._run_start(self, actor)
            return
        outcome = actor._aw_turn(self, actor._aw_limit)
        if outcome is not None:
            reply = _local.reply
            if reply is not None:  # answered now, not after on_stop and the cleanup
                _local.reply = None
                reply[0].set(reply[1])
            actor._aw_end(outcome)  # the handshake stays closed until a new incarnation
            return
        self.token.append(True)
        if self.backlog or self.pending:
            self.schedule()

    def try_claim(self) -> bool:
        """Take an idle actor with nothing waiting off its dispatcher, so the caller may end
        it on its own thread (no hand-off to a worker and back)."""
        with self.lock:
            if self.backlog or self.pending or self.state != "running":
                return False
            try:
                self.token.pop()
            except IndexError:
                return False
            return True

    def take_backlog(self) -> list[Any]:
        with self.lock:
            backlog = self.backlog
            self.backlog = []
        return backlog

    def leave(self, actor: Actor, rest: list[Any]) -> None:
        """What a turn of ``actor`` drained but did not handle (it failed or was stopped):
        the backlog of this incarnation or the next. A turn that outlived its incarnation
        (abandoned past its shutdown timeout) hands it to the one running now, in front of
        what that one has, or to dead letters when the address is dead."""
        if not rest:
            return
        with self.lock:
            if self.state == "dead":
                rejected = _expand(rest)
            else:
                rejected = []
                self.backlog = rest + self.backlog
                stale = self.actor is not actor
        for env in rejected:
            self._reject(env, "actor stopped before handling it")
        if not rejected and stale:
            self.schedule()  # the current incarnation may be idle: wake it

    def backlog_size(self) -> int:
        return sum(len(i) if i.__class__ is list else 1 for i in self.backlog)

    def _reject(self, envelope: Envelope[Any], why: str) -> None:
        message = envelope.message
        if envelope.reply_to is not None:
            err = ActorDeadError(f"actor {self.name!r} cannot take the message: {why}")
            envelope.reply_to.set_exception((ActorDeadError, err, None))
        if isinstance(message, _RUNTIME_MESSAGES):
            return
        if isinstance(message, Control):  # a wake-up or marker: no data was lost
            self.log.debug("control message not delivered", message_type=type(message).__name__)
            return
        self.system.dead_letters.record(self.name, message, why)

    def _drop(self, envelope: Envelope[Any], why: str) -> None:
        # Overflow drops are counted by the inbox; log at debug to keep hot paths quiet.
        self.log.debug("message dropped", message_type=type(envelope.message).__name__, reason=why)

    def count_drop(self, message: Any, why: str) -> None:
        self.policy_drops += 1
        self.log.warning("message dropped", message_type=type(message).__name__, reason=why)

    def add_child(self, child: _Cell) -> None:
        with self.lock:
            if self.children is None:
                self.children = {}
            self.children[child] = None

    def incarnation_ended(self, actor: Actor, reason: object) -> None:
        """Called on the dying incarnation's thread: hold for the parent, or finalize."""
        system = self.system
        with self.lock:
            if self.actor is not actor or self.state == "dead":
                return
            if isinstance(reason, ExpectedFailure):
                self.log.warning("actor failed", error=_describe(reason))
            elif is_failure(reason) and actor._aw_start_error is reason:
                # A failed on_start is raised to whoever started the actor, who reports
                # it: here only at debug level, with the traceback.
                assert isinstance(reason, BaseException)
                self.log.debug(
                    "actor failed to start",
                    error=root_cause(reason),
                    exc_info=(type(reason), reason, reason.__traceback__),
                )
            elif is_failure(reason):
                assert isinstance(reason, BaseException)
                self.log.error(
                    "actor failed",
                    error=_describe(reason),
                    exc_info=(type(reason), reason, reason.__traceback__),
                )
            parent = self.parent
            if parent is not None and not parent.dead:
                self.state = "held"
                self.inbox.hold(system.hold_limit)
                if self.stop_by_parent:
                    return
                from .supervisor import ChildExited  # noqa: PLC0415 - cycle

                parent.inbox.put_system(Envelope(ChildExited(self, actor, reason)))
                return
        if is_failure(reason):
            assert isinstance(reason, BaseException)
            system._report_failure(self.address, reason, in_start=actor._aw_start_error is reason)
        system._finalize(self, reason)


_LOG: FilteringBoundLogger = structlog.get_logger("actorwire.actor")


def root_cause(exc: BaseException) -> str:
    """The innermost cause of ``exc`` (following ``raise ... from``) in one line: its type
    and message, without the wrappers' texts that repeat it."""
    seen: set[int] = set()
    while exc.__cause__ is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    try:
        text = " ".join(str(exc).split())
    except Exception:  # noqa: BLE001 - a failure is reported whatever the exception does
        text = ""
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _describe(exc: BaseException) -> str:
    """``repr(exc)``, or its type when its own ``__repr__`` raises: a failure is reported
    whatever the exception does."""
    try:
        return repr(exc)
    except Exception:  # noqa: BLE001
        return f"<{type(exc).__name__} (repr failed)>"


class ActorSystem:
    """Owns a registry, a dispatcher, one I/O loop thread, a timer service, metrics and
    dead letters.

    ``dispatcher`` runs the actors (default: a new ``PoolDispatcher()``: a few workers
    shared by every actor). ``hold_limit`` and ``hold_timeout`` bound what a restarting
    actor holds and how long a sender waits on it. ``start_timeout`` bounds the wait for a
    pinned actor's ``on_start`` (a pooled actor's runs on the spawning thread). Use it as a
    context manager, or call ``shutdown()``. Two systems share nothing.
    """

    def __init__(
        self,
        name: str = "actorwire",
        *,
        dispatcher: Dispatcher | None = None,
        on_failure: FailureListener | None = None,
        hold_limit: int = DEFAULT_HOLD_LIMIT,
        hold_timeout: float | None = DEFAULT_HOLD_TIMEOUT,
        start_timeout: float = 30.0,
        clock: Clock = monotonic,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"ActorSystem name must be a non-empty string, got {name!r}")
        if hold_limit < 1:
            raise ValueError(f"hold_limit must be >= 1, got {hold_limit!r}")
        if hold_timeout is not None and hold_timeout < 0:
            raise ValueError(f"hold_timeout must be >= 0 seconds or None, got {hold_timeout!r}")
        if dispatcher is None:
            dispatcher = PoolDispatcher()
        elif not isinstance(dispatcher, Dispatcher):
            raise TypeError(f"dispatcher must be a Dispatcher, got {dispatcher!r}")
        if isinstance(dispatcher, PinnedDispatcher):
            raise TypeError(
                "a PinnedDispatcher serves one actor: pass it to spawn(..., dispatcher=...), "
                "not to ActorSystem"
            )
        self.name = name
        self.hold_limit = hold_limit
        self.hold_timeout = hold_timeout
        self.start_timeout = start_timeout
        self.clock = clock
        self.log: FilteringBoundLogger = structlog.get_logger("actorwire.system").bind(system=name)
        self._lock = threading.RLock()
        self._registry: dict[str, _Cell] = {}
        self._top: dict[_Cell, None] = {}
        self._pinned: set[Dispatcher] = set()
        self._pools: list[Dispatcher] = []
        self._released: list[Dispatcher] = []
        self._names = itertools.count(1)
        self._failure_listeners: list[FailureListener] = []
        if on_failure is not None:
            self._failure_listeners.append(on_failure)
        self._shut = False
        self._done = threading.Condition(threading.Lock())
        self._waiting = 0
        self._retired = {
            "received": 0,
            "processed": 0,
            "failed": 0,
            "dropped": 0,
            "restarts": 0,
            "actors": 0,
        }
        self.dead_letters = DeadLetters(name)
        self.dispatcher = dispatcher
        dispatcher._attach(name)
        self.io = IOLoop(name)
        self.timers = TimerService(name, clock)

    # -- context manager ---------------------------------------------------------------

    def __enter__(self) -> ActorSystem:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"<ActorSystem {self.name!r} actors={len(self._registry)}>"

    # -- spawning ----------------------------------------------------------------------

    def spawn(
        self,
        actor_cls: type[A],
        *args: Any,
        name: str | None = None,
        mailbox: Mailbox | None = None,
        dispatcher: Dispatcher | None = None,
        **kwargs: Any,
    ) -> Address:
        """Construct ``actor_cls(*args, **kwargs)``, start it, and return its address.

        Returns once ``on_start`` has finished; raises ActorStartError if it raised, and
        TypeError if ``actor_cls`` does not take the arguments given. ``dispatcher`` runs
        this actor instead of the system's (``PinnedDispatcher()``: a thread of its own).
        """
        if not (isinstance(actor_cls, type) and issubclass(actor_cls, Actor)):
            raise TypeError(f"spawn needs an actorwire Actor subclass, got {actor_cls!r}")
        if mailbox is not None and not isinstance(mailbox, Mailbox):
            raise TypeError(f"mailbox must be a Mailbox, got {mailbox!r}")
        if name is None:
            name = f"{actor_cls.__name__}-{next(self._names)}"
        try:
            first = actor_cls(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"spawn({actor_cls.__name__}, ...): {exc}") from exc
        built = [first]

        def factory() -> Actor:
            if built:
                return built.pop()
            return actor_cls(*args, **kwargs)

        cell = self._new_cell(name, factory, mailbox, parent=None, dispatcher=dispatcher)
        with self._lock:
            self._top[cell] = None
        try:
            self._start_incarnation(cell)
        except BaseException:
            self._finalize(cell, SHUTDOWN)
            raise
        return cell.address

    def _new_cell(
        self,
        name: str,
        factory: Callable[[], Actor],
        mailbox: Mailbox | None,
        parent: _Cell | None,
        dispatcher: Dispatcher | None = None,
    ) -> _Cell:
        if not isinstance(name, str) or not name:
            raise ValueError(f"actor name must be a non-empty string, got {name!r}")
        if dispatcher is not None and not isinstance(dispatcher, Dispatcher):
            raise TypeError(f"dispatcher must be a Dispatcher, got {dispatcher!r}")
        with self._lock:
            if self._shut:
                raise RuntimeError(f"actor system {self.name!r} is shut down")
            existing = self._registry.get(name)
            if existing is not None:
                if parent is not None and existing.parent is parent and not existing.dead:
                    existing.factory = factory  # a restarted supervisor adopts its child
                    return existing
                raise ValueError(f"actor name {name!r} is already taken in system {self.name!r}")
            if dispatcher is None:
                dispatcher = self.dispatcher
            elif isinstance(dispatcher, PinnedDispatcher):
                # A spec: every actor (and every restart of a parent) gets a thread anew.
                dispatcher = PinnedDispatcher(dispatcher.throughput)
                dispatcher._attach(f"{self.name}-{name}")
                self._pinned.add(dispatcher)
            elif dispatcher is not self.dispatcher and dispatcher not in self._pools:
                dispatcher._attach(self.name)  # another pool: this system's from now on
                self._pools.append(dispatcher)
            cell = _Cell(self, name, factory, mailbox, parent, dispatcher)
            self._registry[name] = cell
        if parent is not None:
            parent.add_child(cell)
        return cell

    def _start_incarnation(self, cell: _Cell) -> Actor:
        """Build a new incarnation from the cell's factory and run its ``on_start``.

        On a pool the calling thread runs ``on_start`` itself (nothing else can run the
        actor before it is runnable); a pinned actor starts on its own thread while the
        caller waits. Either way this returns once ``on_start`` is done.
        """
        actor = cell.factory()
        if not isinstance(actor, Actor):
            raise TypeError(
                f"the factory for actor {cell.name!r} returned {actor!r}; "
                "expected a new, not yet started actorwire Actor"
            )
        if actor._aw_cell is not None:
            raise TypeError(
                f"the factory for actor {cell.name!r} returned an actor already "
                "started; it must build a new one on every call"
            )
        actor._aw_cell = cell
        actor._aw_batched = type(actor).on_batch is not Actor.on_batch
        actor._aw_limit = min(cell.limit, actor.batch_size)
        actor.system = self
        actor.address = cell.address
        with cell.lock:
            if cell.dead:
                raise ActorDeadError(f"actor {cell.name!r} is dead")
            cell.actor = actor
            cell.state = "running"
            cell.stop_by_parent = False
            cell.token.clear()  # closed until on_start is done
        cell.inbox.hold(None)
        if isinstance(cell.dispatcher, PinnedDispatcher):
            cell.dispatcher._execute(cell)  # its first turn runs on_start
            if not self._wait(lambda: actor._aw_started or actor._aw_finished, self.start_timeout):
                actor._aw_stop_now = True
                raise ActorStartError(
                    f"actor {cell.name!r} did not finish on_start within {self.start_timeout}s"
                )
        else:
            self._run_start(cell, actor)
        if actor._aw_start_error is not None:
            err = actor._aw_start_error
            raise ActorStartError(f"actor {cell.name!r} failed in on_start: {err!r}") from err
        return actor

    def _run_start(self, cell: _Cell, actor: Actor) -> None:
        """Run ``on_start`` as the actor (on whichever thread calls), then make it runnable."""
        previous = _set_current(cell)
        try:
            actor.on_start()
        except BaseException as exc:  # noqa: BLE001 - a failed start is a supervised failure
            actor._aw_start_error = exc
            actor._aw_end(exc)
            return
        finally:
            _set_current(previous)
        actor._aw_started = True
        actor._aw_running = True
        if actor._aw_cell is cell and cell.actor is actor:
            cell.runnable()
        self._incarnation_done()

    # -- waiting -------------------------------------------------------------------------

    def _incarnation_done(self) -> None:
        """An incarnation started or ended, or an address died: wake whoever waits."""
        if self._waiting:
            with self._done:
                self._done.notify_all()

    def _wait(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``predicate()`` (re-checked on every start, end and death)."""
        if predicate():
            return True
        with blocking(), self._done:
            self._waiting += 1
            try:
                return self._done.wait_for(predicate, timeout)
            finally:
                self._waiting -= 1

    # -- stopping ----------------------------------------------------------------------

    def _stop_now(self, cell: _Cell, actor: Actor, timeout: float) -> bool:
        """Gracefully stop ``actor`` after what it already has; True once it has ended."""
        if cell.try_claim():
            previous = _set_current(cell)
            try:
                actor._aw_end(NORMAL)
            finally:
                _set_current(previous)
            return True
        cell.inbox.put_system(Envelope(Stop(actor)))
        if current_cell() is cell:
            return True  # it ends after the current message: not waited for on its own turn
        return self._wait(lambda: actor._aw_finished, timeout)

    def stop(self, address: Address, timeout: float = 5.0) -> bool:
        """Stop an actor for good, after the messages already queued; True if in time.

        A supervised child stopped this way is not restarted. Called by the actor itself,
        it only queues the stop (returning True) instead of waiting on its own turn.
        """
        cell = address._cell
        if cell.system is not self:
            raise ValueError(f"{address!r} belongs to another actor system")
        with cell.lock:
            if cell.dead:
                return True
            cell.stop_final = True
            actor = cell.actor
            held = cell.state != "running" or actor is None
        if held:
            self._finalize(cell, NORMAL)
            return True
        assert actor is not None
        if current_cell() is cell:
            # An actor stopping itself: the stop runs after the current message; waiting
            # here, on the very turn that must handle it, would only burn the timeout.
            cell.inbox.put_system(Envelope(Stop(actor)))
            return True
        if not self._stop_now(cell, actor, timeout):
            self.log.warning("actor did not stop in time", actor=cell.name, timeout=timeout)
            return False
        return self._wait(lambda: cell.finalized, timeout)

    def _stop_incarnation(
        self, cell: _Cell, *, graceful: bool, timeout: float, by_parent: bool = True
    ) -> bool:
        """Stop the running incarnation (the cell stays, holding messages); True if in time."""
        with cell.lock:
            actor = cell.actor
            if actor is None or actor._aw_finished or cell.state != "running":
                return True
            if by_parent:
                cell.stop_by_parent = True
        if graceful:
            if self._stop_now(cell, actor, timeout):
                return True
        else:
            actor._aw_stop_now = True
            cell.inbox.put_system(Envelope(Wake()))
            if self._wait(lambda: actor._aw_finished, timeout):
                return True
        actor._aw_stop_now = True
        self.log.warning(
            "actor did not stop within its shutdown timeout; abandoned",
            actor=cell.name,
            timeout=timeout,
        )
        with cell.lock:
            if cell.actor is actor:
                cell.state = "held"
                cell.token.clear()
        cell.inbox.hold(self.hold_limit)
        return False

    def _finalize(self, cell: _Cell, reason: object) -> None:
        """The address dies: children first, leftovers to dead letters, watchers told."""
        with cell.lock:
            if cell.dead:
                return
            cell.state = "dead"
            cell.reason = reason
            actor = cell.actor
        if actor is not None and not actor._aw_finished:
            actor._aw_stop_now = True
            cell.inbox.put_system(Envelope(Wake()))
        children = cell.children
        if children:
            for child in reversed(list(children)):  # a copy: finalizing edits it
                self._stop_incarnation(child, graceful=True, timeout=5.0)
                self._finalize(child, SHUTDOWN)
        closed = cell.inbox.close()
        leftovers = _expand(cell.take_backlog()) + closed  # in the order they were told
        for env in leftovers:
            cell._reject(env, "actor stopped before handling it")
        with self._lock:
            if self._registry.get(cell.name) is cell:
                del self._registry[cell.name]
            self._top.pop(cell, None)
            retired = self._retired
            retired["received"] += cell.inbox.taken - cell.control
            retired["processed"] += cell.processed
            retired["failed"] += cell.failed
            retired["dropped"] += cell.inbox.dropped + cell.inbox.lost + cell.policy_drops
            retired["restarts"] += cell.restarts
            retired["actors"] += 1
            watchers = cell.watchers or []
            cell.watchers = None
            if cell.dispatcher in self._pinned:
                self._pinned.discard(cell.dispatcher)
                cell.dispatcher._release(cell)
                # Kept until its thread ends, so shutdown joins (or reports) a stuck one.
                self._released = [d for d in self._released if d.threads()]
                self._released.append(cell.dispatcher)
        parent = cell.parent
        if parent is not None:
            with parent.lock:
                if parent.children is not None:
                    parent.children.pop(cell, None)
        for watcher in watchers:
            if not watcher.dead:  # a dead watcher needs no news (nor a dead letter)
                watcher.inbox.put_system(Envelope(Terminated(cell.address, reason)))
        cell.finalized = True
        self._incarnation_done()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every actor in reverse start order, then timers, I/O and the dispatcher."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._shut:
                return
            top = list(self._top)
        for cell in reversed(top):
            remaining = max(deadline - time.monotonic(), 0.1)
            with cell.lock:
                actor = cell.actor
                running = cell.state == "running" and actor is not None
                cell.stop_final = True
            if running:
                assert actor is not None
                if not self._stop_now(cell, actor, remaining):
                    self.log.warning("actor did not stop in time", actor=cell.name)
            self._finalize(cell, SHUTDOWN)
        with self._lock:
            self._shut = True
            leftovers = list(self._registry.values())
        for cell in leftovers:
            self._finalize(cell, SHUTDOWN)
        with self._lock:
            pinned = [*self._pinned, *self._released]
        self.timers.shutdown(max(deadline - time.monotonic(), 0.1))
        self.io.shutdown(max(deadline - time.monotonic(), 0.1))
        for d in [*pinned, *self._pools]:
            d.shutdown(max(deadline - time.monotonic(), 0.1))
        self.dispatcher.shutdown(max(deadline - time.monotonic(), 0.1))
        alive = [t.name for t in self.threads() if t is not threading.current_thread()]
        if alive:
            self.log.warning("threads still running after shutdown", threads=alive)

    @property
    def is_shut_down(self) -> bool:
        return self._shut

    def threads(self) -> list[threading.Thread]:
        """The live threads this system runs (dispatcher workers, pinned actors, I/O,
        timers)."""
        with self._lock:
            pinned = [*self._pinned, *self._released]
        out = self.dispatcher.threads()
        for d in [*pinned, *self._pools]:
            out.extend(d.threads())
        for t in (self.io._thread, self.timers._thread):
            if t.is_alive():
                out.append(t)
        return out

    # -- lookup, watch, timers ----------------------------------------------------------

    def lookup(self, name: str) -> Address:
        """The address of the live actor called ``name``; LookupError if there is none."""
        cell = self._registry.get(name)
        if cell is None or cell.dead:
            known = ", ".join(sorted(self._registry)[:20]) or "none"
            raise LookupError(
                f"no live actor named {name!r} in system {self.name!r} (live: {known})"
            )
        return cell.address

    def current(self) -> Address | None:
        """The address of the actor whose handler is running on the calling thread, or
        None (not inside an actor of this system)."""
        cell = current_cell()
        if cell is None or cell.system is not self or cell.dead:
            return None
        return cell.address

    def actors(self) -> list[Address]:
        """Addresses of every live actor."""
        with self._lock:
            return [c.address for c in self._registry.values()]

    def watch(self, watcher: Address, watched: Address) -> None:
        """Deliver ``Terminated(watched, reason)`` to ``watcher`` when ``watched`` dies.

        A restart is not a death. Watching an address that is already dead delivers at once.
        """
        wcell, tcell = watcher._cell, watched._cell
        with tcell.lock:
            if not tcell.dead:
                if tcell.watchers is None:
                    tcell.watchers = []
                if wcell not in tcell.watchers:
                    tcell.watchers.append(wcell)
                return
        wcell.inbox.put_system(Envelope(Terminated(watched, tcell.reason)))

    def unwatch(self, watcher: Address, watched: Address) -> None:
        tcell = watched._cell
        with tcell.lock:
            if tcell.watchers and watcher._cell in tcell.watchers:
                tcell.watchers.remove(watcher._cell)

    def send_after(self, delay: float, address: Address, message: Any) -> Timer:
        """Tell ``message`` to ``address`` after ``delay`` seconds; ``.cancel()`` to cancel."""
        return self.timers.schedule(delay, address, message)

    def send_every(
        self, interval: float, address: Address, message: Any, *, initial_delay: float | None = None
    ) -> Timer:
        """Tell ``message`` every ``interval`` seconds (first after ``initial_delay``)."""
        first = interval if initial_delay is None else initial_delay
        return self.timers.schedule(first, address, message, interval=interval)

    # -- failures and metrics ---------------------------------------------------------

    def add_failure_listener(self, listener: FailureListener) -> None:
        """Call ``listener(address, exception)`` when a top-level actor fails."""
        self._failure_listeners.append(listener)

    def remove_failure_listener(self, listener: FailureListener) -> None:
        """Stop calling ``listener`` (no error if it was not added)."""
        with contextlib.suppress(ValueError):
            self._failure_listeners.remove(listener)

    def _report_failure(
        self, address: Address, reason: BaseException, *, in_start: bool = False
    ) -> None:
        if in_start:  # raised to whoever started it, who reports it
            self.log.debug(
                "top-level actor failed to start", actor=address.name, error=root_cause(reason)
            )
        else:
            self.log.error("top-level actor failed", actor=address.name, error=_describe(reason))
        for listener in list(self._failure_listeners):
            try:
                listener(address, reason)
            except Exception as exc:  # noqa: BLE001 - one bad listener must not hide others
                self.log.error("failure listener raised", error=repr(exc))

    def metrics(self) -> dict[str, Any]:
        """Per-actor counters, system totals and the dispatcher's figures (a snapshot;
        counters only grow)."""
        with self._lock:
            cells = list(self._registry.values())
            retired = dict(self._retired)
        actors: dict[str, dict[str, Any]] = {}
        totals = {k: v for k, v in retired.items() if k != "actors"}
        for cell in cells:
            queued = cell.inbox.qsize()
            depth = queued + cell.backlog_size()
            row: dict[str, Any] = {
                "received": cell.inbox.taken - cell.control + queued,
                "processed": cell.processed,
                "failed": cell.failed,
                "dropped": cell.inbox.dropped + cell.inbox.lost + cell.policy_drops,
                "lost": cell.inbox.lost,
                "mailbox_depth": depth,
                "restarts": cell.restarts,
                "state": cell.state,
            }
            actors[cell.name] = row
            for k in ("received", "processed", "failed", "dropped", "restarts"):
                totals[k] += row[k]
        totals["actors"] = len(cells)
        totals["stopped_actors"] = retired["actors"]
        totals["dead_letters"] = self.dead_letters.count
        return {
            "system": self.name,
            "actors": actors,
            "totals": totals,
            "dispatcher": self.dispatcher.metrics(),
        }
