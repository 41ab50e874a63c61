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
from .ioloop import IOLoop
from .mailbox import Mailbox, build_inbox
from .messages import NORMAL, SHUTDOWN, ExpectedFailure, Stop, Terminated, Wake, is_failure
from .timers import Timer, TimerService

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

__all__ = ["ActorStartError", "ActorSystem", "FailureListener"]

A = TypeVar("A", bound=Actor)
FailureListener = Callable[[Address, BaseException], None]

DEFAULT_HOLD_LIMIT = 10_000
"""Messages held for an unbounded actor while it restarts; beyond that, dead letters."""


class ActorStartError(RuntimeError):
    """An actor's ``on_start`` raised; the cause is chained."""


class _Internal:
    """Marker base for runtime messages that are not user data (never dead-lettered)."""

    __slots__ = ()


_RUNTIME_MESSAGES: tuple[type, ...] = (Stop, Wake, _Internal, pykka_messages._ActorStop)


class _Cell:
    """Everything that outlives one incarnation: the name, the inbox, counters, links."""

    def __init__(
        self,
        system: ActorSystem,
        name: str,
        factory: Callable[[], Actor],
        mailbox: Mailbox | None,
        parent: _Cell | None,
    ) -> None:
        self.system = system
        self.name = name
        self.factory = factory
        self.mailbox = mailbox
        self.parent = parent
        self.inbox = build_inbox(mailbox, self._reject, self._drop)
        self.address = Address(self)
        self.log: FilteringBoundLogger = structlog.get_logger("actorwire.actor").bind(
            system=system.name, actor=name
        )
        self.actor: Actor | None = None
        self.state = "new"  # new -> running -> held (restarting) -> running ... -> dead
        self.lock = threading.RLock()
        self.backlog: list[Envelope[Any]] = []
        self.taken = 0
        self.control = 0  # runtime messages taken (stop, wake): not counted as received
        self.processed = 0
        self.failed = 0
        self.restarts = 0
        self.policy_drops = 0
        self.watchers: list[_Cell] = []
        self.children: list[_Cell] = []
        self.thread_ident: int | None = None
        self.stop_by_parent = False
        self.stop_final = False
        self.reason: object = None
        self.terminated = threading.Event()

    @property
    def dead(self) -> bool:
        return self.state == "dead"

    def take_backlog(self) -> list[Envelope[Any]]:
        backlog = self.backlog
        if backlog:
            self.backlog = []
        return backlog

    def _reject(self, envelope: Envelope[Any], why: str) -> None:
        message = envelope.message
        if envelope.reply_to is not None:
            err = ActorDeadError(f"actor {self.name!r} cannot take the message: {why}")
            envelope.reply_to.set_exception((ActorDeadError, err, None))
        if isinstance(message, _RUNTIME_MESSAGES):
            return
        self.system.dead_letters.record(self.name, message, why)

    def _drop(self, envelope: Envelope[Any], why: str) -> None:
        # Overflow drops are counted by the inbox; log at debug to keep hot paths quiet.
        self.log.debug("message dropped", message_type=type(envelope.message).__name__, reason=why)

    def count_drop(self, message: Any, why: str) -> None:
        self.policy_drops += 1
        self.log.warning("message dropped", message_type=type(message).__name__, reason=why)

    def incarnation_ended(self, actor: Actor, reason: object) -> None:
        """Called on the dying incarnation's thread: hold for the parent, or finalize."""
        system = self.system
        with self.lock:
            if self.actor is not actor or self.state == "dead":
                return
            self.thread_ident = None
            if isinstance(reason, ExpectedFailure):
                self.log.warning("actor failed", error=repr(reason))
            elif is_failure(reason):
                assert isinstance(reason, BaseException)
                self.log.error(
                    "actor failed",
                    error=repr(reason),
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
            system._report_failure(self.address, reason)
        system._finalize(self, reason)


class ActorSystem:
    """Owns a registry, one I/O loop thread, a timer service, metrics and dead letters.

    Use it as a context manager, or call ``shutdown()``. Two systems share nothing.
    """

    def __init__(
        self,
        name: str = "actorwire",
        *,
        on_failure: FailureListener | None = None,
        hold_limit: int = DEFAULT_HOLD_LIMIT,
        start_timeout: float = 30.0,
        clock: Clock = monotonic,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"ActorSystem name must be a non-empty string, got {name!r}")
        if hold_limit < 1:
            raise ValueError(f"hold_limit must be >= 1, got {hold_limit!r}")
        self.name = name
        self.hold_limit = hold_limit
        self.start_timeout = start_timeout
        self.clock = clock
        self.log: FilteringBoundLogger = structlog.get_logger("actorwire.system").bind(system=name)
        self._lock = threading.RLock()
        self._registry: dict[str, _Cell] = {}
        self._top: list[_Cell] = []
        self._threads: list[threading.Thread] = []
        self._names = itertools.count(1)
        self._failure_listeners: list[FailureListener] = []
        if on_failure is not None:
            self._failure_listeners.append(on_failure)
        self._shut = False
        self._retired = {
            "received": 0,
            "processed": 0,
            "failed": 0,
            "dropped": 0,
            "restarts": 0,
            "actors": 0,
        }
        self.dead_letters = DeadLetters(name)
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
        **kwargs: Any,
    ) -> Address:
        """Construct ``actor_cls(*args, **kwargs)``, start it, and return its address.

        Returns once ``on_start`` has finished; raises ActorStartError if it raised.
        """
        if not (isinstance(actor_cls, type) and issubclass(actor_cls, Actor)):
            raise TypeError(f"spawn needs an actorwire Actor subclass, got {actor_cls!r}")
        if mailbox is not None and not isinstance(mailbox, Mailbox):
            raise TypeError(f"mailbox must be a Mailbox, got {mailbox!r}")
        if name is None:
            name = f"{actor_cls.__name__}-{next(self._names)}"

        def factory() -> Actor:
            return actor_cls(*args, **kwargs)

        cell = self._new_cell(name, factory, mailbox, parent=None)
        with self._lock:
            self._top.append(cell)
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
    ) -> _Cell:
        if not isinstance(name, str) or not name:
            raise ValueError(f"actor name must be a non-empty string, got {name!r}")
        with self._lock:
            if self._shut:
                raise RuntimeError(f"actor system {self.name!r} is shut down")
            existing = self._registry.get(name)
            if existing is not None:
                if parent is not None and existing.parent is parent and not existing.dead:
                    existing.factory = factory  # a restarted supervisor adopts its child
                    return existing
                raise ValueError(f"actor name {name!r} is already taken in system {self.name!r}")
            cell = _Cell(self, name, factory, mailbox, parent)
            self._registry[name] = cell
            if parent is not None:
                parent.children.append(cell)
            return cell

    def _start_incarnation(self, cell: _Cell) -> Actor:
        """Build a new incarnation from the cell's factory and run it until on_start is done."""
        actor = cell.factory()
        if not isinstance(actor, Actor):
            raise TypeError(
                f"the factory for actor {cell.name!r} returned {actor!r}; "
                "expected a new, not yet started actorwire Actor"
            )
        if getattr(actor, "_aw_cell", None) is not None:
            raise TypeError(
                f"the factory for actor {cell.name!r} returned an actor already "
                "started; it must build a new one on every call"
            )
        actor._aw_cell = cell
        actor.actor_inbox = cell.inbox
        actor._actor_ref.actor_inbox = cell.inbox
        actor.system = self
        actor.address = cell.address
        actor.log = cell.log
        actor._aw_stop_now = False
        actor._aw_started = threading.Event()
        actor._aw_done = threading.Event()
        actor._aw_start_error = None
        with cell.lock:
            if cell.dead:
                raise ActorDeadError(f"actor {cell.name!r} is dead")
            cell.actor = actor
            cell.state = "running"
            cell.stop_by_parent = False
            cell.inbox.hold(None)
        actor._start_actor_loop()
        if actor._aw_thread is not None:
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(actor._aw_thread)
        if not actor._aw_started.wait(self.start_timeout):
            actor._aw_stop_now = True
            raise ActorStartError(
                f"actor {cell.name!r} did not finish on_start within {self.start_timeout}s"
            )
        if actor._aw_start_error is not None:
            err = actor._aw_start_error
            raise ActorStartError(f"actor {cell.name!r} failed in on_start: {err!r}") from err
        return actor

    # -- stopping ----------------------------------------------------------------------

    def stop(self, address: Address, timeout: float = 5.0) -> bool:
        """Stop an actor for good, after the messages already queued; True if in time.

        A supervised child stopped this way is not restarted. Called by the actor itself,
        it only queues the stop (returning True) instead of waiting on its own thread.
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
        cell.inbox.put_system(Envelope(Stop(actor)))
        if cell.thread_ident == threading.get_ident():
            # An actor stopping itself: the stop runs after the current message; waiting
            # here, on the very thread that must handle it, would only burn the timeout.
            return True
        if not actor._aw_done.wait(timeout):
            self.log.warning("actor did not stop in time", actor=cell.name, timeout=timeout)
            return False
        return cell.terminated.wait(timeout)

    def _stop_incarnation(
        self, cell: _Cell, *, graceful: bool, timeout: float, by_parent: bool = True
    ) -> bool:
        """Stop the running incarnation (the cell stays, holding messages); True if in time."""
        with cell.lock:
            actor = cell.actor
            if actor is None or actor._aw_done.is_set() or cell.state != "running":
                return True
            if by_parent:
                cell.stop_by_parent = True
        if graceful:
            cell.inbox.put_system(Envelope(Stop(actor)))
        else:
            actor._aw_stop_now = True
            cell.inbox.put_system(Envelope(Wake()))
        if actor._aw_done.wait(timeout):
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
        if actor is not None and not actor._aw_done.is_set():
            actor._aw_stop_now = True
            cell.inbox.put_system(Envelope(Wake()))
        for child in reversed(list(cell.children)):  # a copy: finalizing edits the list
            self._stop_incarnation(child, graceful=True, timeout=5.0)
            self._finalize(child, SHUTDOWN)
        leftovers = cell.take_backlog() + cell.inbox.close()
        for env in leftovers:
            cell._reject(env, "actor stopped before handling it")
        with self._lock:
            if self._registry.get(cell.name) is cell:
                del self._registry[cell.name]
            if cell in self._top:
                self._top.remove(cell)
            retired = self._retired
            retired["received"] += cell.taken - cell.control
            retired["processed"] += cell.processed
            retired["failed"] += cell.failed
            retired["dropped"] += cell.inbox.dropped + cell.policy_drops
            retired["restarts"] += cell.restarts
            retired["actors"] += 1
            watchers = list(cell.watchers)
            cell.watchers.clear()
        if cell.parent is not None:
            with cell.parent.lock:
                if cell in cell.parent.children:
                    cell.parent.children.remove(cell)
        for watcher in watchers:
            if not watcher.dead:  # a dead watcher needs no news (nor a dead letter)
                watcher.inbox.put_system(Envelope(Terminated(cell.address, reason)))
        cell.terminated.set()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every actor in reverse start order, then timers and I/O; join all threads."""
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
                cell.inbox.put_system(Envelope(Stop(actor)))
                if not actor._aw_done.wait(remaining):
                    self.log.warning("actor did not stop in time", actor=cell.name)
            self._finalize(cell, SHUTDOWN)
        with self._lock:
            self._shut = True
            leftovers = list(self._registry.values())
        for cell in leftovers:
            self._finalize(cell, SHUTDOWN)
        self.timers.shutdown(max(deadline - time.monotonic(), 0.1))
        self.io.shutdown(max(deadline - time.monotonic(), 0.1))
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(max(deadline - time.monotonic(), 0.0))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            self.log.warning("threads still running after shutdown", threads=alive)

    @property
    def is_shut_down(self) -> bool:
        return self._shut

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
        """The address of the actor whose thread is calling, or None (not an actor's)."""
        ident = threading.get_ident()
        with self._lock:
            for cell in self._registry.values():
                if cell.thread_ident == ident and not cell.dead:
                    return cell.address
        return None

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
                if wcell not in tcell.watchers:
                    tcell.watchers.append(wcell)
                return
        wcell.inbox.put_system(Envelope(Terminated(watched, tcell.reason)))

    def unwatch(self, watcher: Address, watched: Address) -> None:
        tcell = watched._cell
        with tcell.lock:
            if watcher._cell in tcell.watchers:
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

    def _report_failure(self, address: Address, reason: BaseException) -> None:
        self.log.error("top-level actor failed", actor=address.name, error=repr(reason))
        for listener in list(self._failure_listeners):
            try:
                listener(address, reason)
            except Exception as exc:  # noqa: BLE001 - one bad listener must not hide others
                self.log.error("failure listener raised", error=repr(exc))

    def metrics(self) -> dict[str, Any]:
        """Per-actor counters and system totals (a snapshot; counters only grow)."""
        with self._lock:
            cells = list(self._registry.values())
            retired = dict(self._retired)
        actors: dict[str, dict[str, Any]] = {}
        totals = {k: v for k, v in retired.items() if k != "actors"}
        for cell in cells:
            queued = cell.inbox.qsize()
            depth = queued + len(cell.backlog)
            row: dict[str, Any] = {
                "received": cell.taken - cell.control + queued,
                "processed": cell.processed,
                "failed": cell.failed,
                "dropped": cell.inbox.dropped + cell.policy_drops,
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
        return {"system": self.name, "actors": actors, "totals": totals}
