"""OTP-style supervision: child specs, restart strategies, intensity, backoff, escalation.

Children start in spec order and stop in reverse. A child's address (named by its spec
id) survives its restarts; messages told while it restarts are held for the new
incarnation. Past the restart intensity the supervisor stops its children and fails,
so its own parent (or the system's failure listener) decides what happens next.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .actor import Actor
from .backoff import Backoff
from .clock import Clock, monotonic
from .dispatcher import Dispatcher
from .errors import ActorwireError
from .mailbox import Mailbox
from .messages import SHUTDOWN, is_failure
from .system import ActorStartError, _Internal

if TYPE_CHECKING:
    from .address import Address
    from .system import _Cell

__all__ = [
    "ChildSpec",
    "Restart",
    "Strategy",
    "Supervisor",
    "SupervisorEscalation",
    "WhichChildren",
]

DEFAULT_BACKOFF = Backoff(min=0.01, max=5.0, factor=2.0, jitter=0.1)


class Restart(enum.Enum):
    """When a child is restarted."""

    PERMANENT = "permanent"
    """Always, whatever the reason it stopped."""
    TRANSIENT = "transient"
    """Only after a failure (an exception), not after a normal stop."""
    TEMPORARY = "temporary"
    """Never; the child is removed when it stops."""


class Strategy(enum.Enum):
    """Which children restart when one fails."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


@dataclass(frozen=True)
class ChildSpec:
    """One supervised child: ``factory()`` returns a new, not yet started Actor."""

    id: str
    factory: Callable[[], Actor]
    restart: Restart = Restart.PERMANENT
    shutdown_timeout: float = 5.0
    mailbox: Mailbox | None = field(default=None)
    dispatcher: Dispatcher | None = field(default=None)
    """Runs the child instead of the system's dispatcher (``PinnedDispatcher()``: a thread
    of its own for each incarnation's address)."""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"ChildSpec id must be a non-empty string, got {self.id!r}")
        if not callable(self.factory):
            raise TypeError(
                f"ChildSpec {self.id!r}: factory must be a zero-argument callable returning "
                f"a new Actor, got {self.factory!r}"
            )
        if isinstance(self.factory, type) and not issubclass(self.factory, Actor):
            raise TypeError(
                f"ChildSpec {self.id!r}: factory {self.factory!r} does not build an Actor"
            )
        if not isinstance(self.restart, Restart):
            raise ValueError(
                f"ChildSpec {self.id!r}: restart must be a Restart, got {self.restart!r}"
            )
        if not self.shutdown_timeout > 0:
            raise ValueError(
                f"ChildSpec {self.id!r}: shutdown_timeout must be > 0, got "
                f"{self.shutdown_timeout!r}"
            )
        if self.mailbox is not None and not isinstance(self.mailbox, Mailbox):
            raise TypeError(f"ChildSpec {self.id!r}: mailbox must be a Mailbox")
        if self.dispatcher is not None and not isinstance(self.dispatcher, Dispatcher):
            raise TypeError(
                f"ChildSpec {self.id!r}: dispatcher must be a Dispatcher, got {self.dispatcher!r}"
            )


class SupervisorEscalation(ActorwireError, RuntimeError):
    """A supervisor gave up: more than ``max_restarts`` within ``within`` seconds."""


@dataclass(frozen=True, slots=True)
class ChildExited(_Internal):
    """Runtime message to a supervisor: one of its children's incarnations ended."""

    cell: _Cell
    incarnation: Actor | None
    reason: object


@dataclass(frozen=True, slots=True)
class _RestartDue(_Internal):
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WhichChildren:
    """Ask a supervisor for ``[(id, address, state, restarts)]`` of its children."""


class Supervisor(Actor):
    """Starts, watches and restarts its children by their ChildSpecs."""

    def __init__(
        self,
        children: Iterable[ChildSpec] = (),
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        within: float = 5.0,
        backoff: Backoff | None = None,
        clock: Clock = monotonic,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        specs = list(children)
        for spec in specs:
            if not isinstance(spec, ChildSpec):
                raise TypeError(f"Supervisor children must be ChildSpec, got {spec!r}")
        ids = [s.id for s in specs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"Supervisor children have duplicate ids: {dupes}")
        if not isinstance(strategy, Strategy):
            raise ValueError(f"strategy must be a Strategy, got {strategy!r}")
        if not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"max_restarts must be an int >= 0, got {max_restarts!r}")
        if not within > 0:
            raise ValueError(f"within must be > 0 seconds, got {within!r}")
        if backoff is not None and not isinstance(backoff, Backoff):
            raise TypeError(f"backoff must be a Backoff, got {backoff!r}")
        self._specs = specs
        self._strategy = strategy
        self._max_restarts = max_restarts
        self._within = within
        self._backoff = backoff or DEFAULT_BACKOFF
        self._clock = clock
        self._rng = rng or random.Random()
        self._restart_log: deque[float] = deque()
        self._child_log: dict[str, deque[float]] = {}
        self._cells: dict[str, _Cell] = {}

    # -- lifecycle ---------------------------------------------------------------------

    def on_start(self) -> None:
        started: list[_Cell] = []
        for spec in self._specs:
            cell = self.system._new_cell(
                spec.id, spec.factory, spec.mailbox, self._aw_cell, spec.dispatcher
            )
            self._cells[spec.id] = cell
            try:
                self.system._start_incarnation(cell)
            except BaseException as exc:
                for done in reversed(started):
                    self._stop_child(done, graceful=True)
                raise ActorStartError(
                    f"supervisor {self.address.name!r}: child {spec.id!r} failed to start: {exc}"
                ) from exc
            started.append(cell)

    def on_stop(self) -> None:
        self._stop_all(graceful=True)

    def on_failure(self, *_exc_info: Any) -> None:
        self._stop_all(graceful=False)

    def _stop_all(self, *, graceful: bool) -> None:
        for spec in reversed(self._specs):
            cell = self._cells.get(spec.id)
            if cell is not None:
                self._stop_child(cell, graceful=graceful)

    def _stop_child(self, cell: _Cell, *, graceful: bool) -> None:
        spec = self._spec(cell.name)
        timeout = spec.shutdown_timeout if spec is not None else 5.0
        self.system._stop_incarnation(cell, graceful=graceful, timeout=timeout)

    def _spec(self, child_id: str) -> ChildSpec | None:
        for spec in self._specs:
            if spec.id == child_id:
                return spec
        return None

    # -- messages ----------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ChildExited):
            return self._child_exited(message)
        if isinstance(message, _RestartDue):
            return self._restart_due(message)
        if isinstance(message, WhichChildren):
            return [
                (
                    s.id,
                    self._cells[s.id].address,
                    self._cells[s.id].state,
                    self._cells[s.id].restarts,
                )
                for s in self._specs
                if s.id in self._cells
            ]
        return super().on_receive(message)

    def _child_exited(self, msg: ChildExited) -> None:
        cell = msg.cell
        spec = self._spec(cell.name)
        if spec is None or self._cells.get(cell.name) is not cell:
            return
        if msg.incarnation is not cell.actor or cell.dead:
            return  # stale: an incarnation already replaced or a cell already gone
        failed = is_failure(msg.reason)
        if (
            cell.stop_final
            or spec.restart is Restart.TEMPORARY
            or (spec.restart is Restart.TRANSIENT and not failed)
        ):
            self._remove(cell, spec, msg.reason)
            return
        now = self._clock()
        self._trim(self._restart_log, now)
        self._restart_log.append(now)
        if len(self._restart_log) > self._max_restarts:
            self._escalate(cell, msg.reason)
        child_log = self._child_log.setdefault(spec.id, deque())
        self._trim(child_log, now)
        child_log.append(now)
        affected = self._affected(spec.id)
        for other in reversed(affected):
            if other is not cell:
                self._stop_child(other, graceful=False)
        # OTP: a temporary sibling stopped for one_for_all/rest_for_one is removed, not
        # restarted.
        for other in [c for c in affected if c is not cell]:
            other_spec = self._spec(other.name)
            if other_spec is not None and other_spec.restart is Restart.TEMPORARY:
                self._remove(other, other_spec, SHUTDOWN)
                affected.remove(other)
        delay = self._backoff.delay(len(child_log) - 1, self._rng)
        self.log.info(
            "restarting",
            child=spec.id,
            reason=repr(msg.reason),
            strategy=self._strategy.name,
            affected=[c.name for c in affected],
            delay=round(delay, 4),
        )
        self.system.send_after(delay, self.address, _RestartDue(tuple(c.name for c in affected)))

    def _remove(self, cell: _Cell, spec: ChildSpec, reason: object) -> None:
        """The child is gone for good: its address dies and its spec is dropped."""
        self.system._finalize(cell, reason)
        self._specs.remove(spec)
        del self._cells[spec.id]

    def _trim(self, log: deque[float], now: float) -> None:
        while log and now - log[0] > self._within:
            log.popleft()

    def _affected(self, child_id: str) -> list[_Cell]:
        order = [self._cells[s.id] for s in self._specs if s.id in self._cells]
        if self._strategy is Strategy.ONE_FOR_ONE:
            return [self._cells[child_id]]
        if self._strategy is Strategy.ONE_FOR_ALL:
            return order
        index = next(i for i, c in enumerate(order) if c.name == child_id)
        return order[index:]

    def _restart_due(self, msg: _RestartDue) -> None:
        for spec in list(self._specs):
            cell = self._cells.get(spec.id)
            if spec.id not in msg.ids or cell is None or cell.state != "held":
                continue
            cell.restarts += 1
            try:
                self.system._start_incarnation(cell)
            except ActorStartError as exc:  # its ChildExited drives the next step
                self.log.warning("restart failed", child=spec.id, error=repr(exc))
            except Exception as exc:  # noqa: BLE001
                # The factory raised or built no Actor: no incarnation ran, so no
                # ChildExited comes. Count it as the child's failure here, or the child
                # would stay held (its messages waiting) forever. That schedules the
                # restart of the whole affected set again, so stop this round here.
                self.log.warning("restart failed", child=spec.id, error=repr(exc))
                self._child_exited(ChildExited(cell, cell.actor, exc))
                return

    def _escalate(self, cell: _Cell, reason: object) -> None:
        self._stop_all(graceful=False)
        raise SupervisorEscalation(
            f"supervisor {self.address.name!r} gave up: more than {self._max_restarts} "
            f"restarts within {self._within}s (last: child {cell.name!r} stopped with "
            f"{reason!r})"
        ) from (reason if isinstance(reason, BaseException) else None)

    def children(self) -> list[Address]:
        """Addresses of the children, in start order (for use inside the actor)."""
        return [self._cells[s.id].address for s in self._specs if s.id in self._cells]
