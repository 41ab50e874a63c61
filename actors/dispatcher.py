"""Dispatchers: the threads that run actors.

An actor is not a thread. Its mailbox is a queue; when a message arrives at an idle actor,
the actor is *scheduled* on its dispatcher, whose worker takes it, runs up to
``throughput`` messages and lets it go (re-queued at the back when more are waiting), so no
actor starves the others and an idle actor costs no thread at all.

- :class:`PoolDispatcher` (the default): a few workers shared by every actor of a system.
  A worker held in one actor's handler past ``blocking_threshold`` (a slow callback, a
  ``time.sleep``, file or socket I/O) is replaced by a new worker so the rest keep running;
  a worker that waits on the runtime itself (an ``ask``, a stop) is replaced at once. Both
  are bounded by ``max_blocked``; past it an ``ask`` from a pooled actor fails at once with
  :class:`PoolExhausted` rather than risk a deadlock.
- :class:`PinnedDispatcher`: one thread of its own for one actor, for an actor that blocks
  for long by design (a blocking client library, a file tailer).

The scheduling handshake takes no lock: a sender appends to the mailbox and then looks for
the cell's token (a one-element list); a worker ending a turn puts the token back and then
looks at the mailbox again. Whichever of the two comes second sees the other's write, so a
message is never stranded; and only whoever pops the token (one atomic list operation)
queues a turn, so an actor is never run by two workers at once.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

import structlog

from .errors import ActorwireError

if TYPE_CHECKING:
    from .system import _Cell

__all__ = [
    "DEFAULT_BLOCKING_THRESHOLD",
    "DEFAULT_THROUGHPUT",
    "Dispatcher",
    "PinnedDispatcher",
    "PoolDispatcher",
    "PoolExhausted",
]

DEFAULT_THROUGHPUT = 512
"""Messages an actor handles per turn on a worker before it yields to the others."""
DEFAULT_BLOCKING_THRESHOLD = 0.05
"""Seconds a worker may spend in one actor's turn before it is replaced by a new worker."""
DEFAULT_MAX_BLOCKED = 64
"""Workers that may be blocked at once (each replaced by a new one); the bound on threads."""

_local = threading.local()
"""Per thread: ``cell`` (the actor running on it), ``worker`` (its pool worker) and
``reply`` (a turn's last answer, set after the turn's bookkeeping: on a busy CPU the asker
then runs at once instead of waiting for that bookkeeping)."""


def current_cell() -> _Cell | None:
    """The cell of the actor whose handler is running on this thread, or None."""
    cell: _Cell | None = getattr(_local, "cell", None)  # on_start, a pinned actor
    if cell is None:
        worker: _Worker | None = getattr(_local, "worker", None)
        if worker is not None:
            cell = worker.cell
    return cell


def _set_current(cell: _Cell | None) -> _Cell | None:
    previous: _Cell | None = getattr(_local, "cell", None)
    _local.cell = cell
    return previous


def may_block() -> bool:
    """False on threads that must never wait for a mailbox (the I/O loop, timers)."""
    return not getattr(_local, "never_block", False)


def in_pool() -> bool:
    """True on a pool worker (an actor's turn, or on_start run there)."""
    return getattr(_local, "worker", None) is not None


def mark_never_block() -> None:
    """Declare the calling thread one that must never wait for a mailbox: a full mailbox
    or a restarting actor's full hold gives it the overflow policy (counted drops)."""
    _local.never_block = True


@contextlib.contextmanager
def blocking(*, strict: bool = False) -> Iterator[None]:
    """Around a wait made by whatever runs on this thread: on a pool worker the pool adds a
    worker meanwhile, so the other actors keep running. ``strict``: raise PoolExhausted
    rather than wait when the pool may add no more."""
    worker: _Worker | None = getattr(_local, "worker", None)
    if worker is None:
        yield
        return
    with worker.pool._blocking(worker, strict=strict):
        yield


class PoolExhausted(ActorwireError, RuntimeError):
    """An actor on a pool blocked (an ``ask`` to another actor) while every worker the pool
    may add was already blocked: waiting could deadlock, so the call fails at once."""


class _Worker:
    """One worker thread's state, read by the pool's watchdog."""

    __slots__ = ("blocked", "cell", "pool", "since", "thread", "wake")

    def __init__(self, pool: PoolDispatcher) -> None:
        self.pool = pool
        self.wake = threading.Lock()  # held while the worker runs; released to wake it
        self.wake.acquire()
        self.thread: threading.Thread | None = None
        self.cell: _Cell | None = None
        self.since = 0.0  # monotonic start of the current turn (0: idle)
        self.blocked = False  # counted as blocked (and replaced)


class Dispatcher:
    """Runs scheduled actors. Subclasses: :class:`PoolDispatcher`, :class:`PinnedDispatcher`.

    A dispatcher instance belongs to one actor system (a PinnedDispatcher to one actor);
    pass a new one to each ``ActorSystem``/``spawn``. A subclass runs a submitted cell with
    ``cell.run_turn()`` on one of its threads (never two at once for one cell) and then
    answers the turn's deferred ask: ``_local.reply`` (a ``(reply, value)`` pair) if set.
    """

    throughput: int = DEFAULT_THROUGHPUT

    def _attach(self, system_name: str) -> None:
        """Called once by the system (or spawn) that will use this dispatcher."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _attach")

    def _execute(self, cell: _Cell) -> None:
        """Run ``cell``'s next turn on one of this dispatcher's threads."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _execute")

    def _release(self, cell: _Cell) -> None:
        """The cell is dead; a dispatcher that exists for it alone may stop."""

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the threads (after the actors have stopped)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement shutdown")

    def threads(self) -> list[threading.Thread]:
        """The live threads of this dispatcher."""
        return []

    def metrics(self) -> dict[str, int]:
        return {}


class PoolDispatcher(Dispatcher):
    """A shared pool of worker threads: the default for every actor of a system.

    ``workers`` is how many run actors at once (default: the CPU count, at least 2 and at
    most 8; the GIL lets one run Python at a time, so more buy only blocking tolerance).
    ``throughput`` is how many messages an actor handles per turn. A worker stuck in one
    turn longer than ``blocking_threshold`` seconds is replaced (``blocked_handoffs`` in
    metrics), up to ``max_blocked`` blocked workers at once.
    """

    def __init__(
        self,
        workers: int | None = None,
        throughput: int = DEFAULT_THROUGHPUT,
        *,
        blocking_threshold: float = DEFAULT_BLOCKING_THRESHOLD,
        max_blocked: int = DEFAULT_MAX_BLOCKED,
    ) -> None:
        if workers is None:
            workers = min(max(os.cpu_count() or 2, 2), 8)
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"PoolDispatcher workers must be an int >= 1, got {workers!r}")
        if not isinstance(throughput, int) or isinstance(throughput, bool) or throughput < 1:
            raise ValueError(f"PoolDispatcher throughput must be an int >= 1, got {throughput!r}")
        if not blocking_threshold > 0:
            raise ValueError(
                f"PoolDispatcher blocking_threshold must be > 0 seconds, got {blocking_threshold!r}"
            )
        if not isinstance(max_blocked, int) or isinstance(max_blocked, bool) or max_blocked < 1:
            raise ValueError(f"PoolDispatcher max_blocked must be an int >= 1, got {max_blocked!r}")
        self.workers = workers
        self.throughput = throughput
        self.blocking_threshold = float(blocking_threshold)
        self.max_blocked = max_blocked
        # The run queue and the stack of parked workers. The most recently parked worker
        # is woken first (its caches are warm, the others stay asleep): measured, this
        # halves the p99 of a lone ask against a FIFO queue that wakes workers in turn.
        self._runq: deque[_Cell | None] = deque()
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._pool: list[_Worker] = []
        self._blocked = 0
        self._surplus = False
        self._ids = itertools.count(1)
        self._name = ""
        self._running = False
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self.blocked_handoffs = 0
        self._log = structlog.get_logger("actorwire.dispatcher")

    def __repr__(self) -> str:
        return (
            f"PoolDispatcher(workers={self.workers}, throughput={self.throughput}, "
            f"threads={len(self._pool)})"
        )

    def _attach(self, system_name: str) -> None:
        with self._lock:
            if self._running or self._stop.is_set():
                raise RuntimeError(
                    f"{self!r} already serves an actor system; give each system its own"
                )
            self._running = True
            self._name = system_name
            self._log = self._log.bind(system=system_name)
            for _ in range(self.workers):
                self._add_worker()
        self._watchdog = threading.Thread(
            target=self._watch, name=f"{system_name}-watchdog", daemon=True
        )
        self._watchdog.start()

    def _add_worker(self) -> None:
        """Start one more worker thread (lock held)."""
        worker = _Worker(self)
        thread = threading.Thread(
            target=self._work,
            args=(worker,),
            name=f"{self._name}-worker-{next(self._ids)}",
            daemon=True,
        )
        worker.thread = thread
        self._pool.append(worker)
        self._count()
        thread.start()

    def _execute(self, cell: _Cell | None) -> None:
        # Append, then look for a parked worker; a worker parks, then looks at the queue
        # again. Whichever comes second sees the other, so no cell waits with workers idle.
        self._runq.append(cell)
        if self._idle:
            try:
                worker = self._idle.pop()
            except IndexError:
                return
            worker.wake.release()

    def _park(self, worker: _Worker) -> None:
        """Wait until woken, unless work arrived while parking."""
        idle = self._idle
        idle.append(worker)
        if self._runq:
            try:
                idle.remove(worker)
            except ValueError:
                worker.wake.acquire()  # a submitter took it off the stack: its wake-up
            return
        worker.wake.acquire()

    def _work(self, worker: _Worker) -> None:
        local = _local
        local.worker = worker
        local.reply = None
        popleft = self._runq.popleft
        park = self._park
        clock = time.monotonic
        while True:
            try:
                cell = popleft()
            except IndexError:
                park(worker)
                continue
            if cell is None:
                break
            worker.cell = cell  # what current_cell() and the watchdog read
            worker.since = clock()
            try:
                cell.run_turn()
            except BaseException as exc:  # noqa: BLE001 - a runtime bug must not kill the pool
                self._log.error("actor turn raised", actor=cell.name, error=repr(exc))
            worker.since = 0.0
            worker.cell = None
            if worker.blocked:
                self._unblock(worker)
            reply = local.reply
            if reply is not None:  # the turn's last ask, answered once the turn is done
                local.reply = None
                reply[0].set(reply[1])
            if self._surplus and self._retire(worker):
                return  # a replacement took this worker's place while it was blocked
        with self._lock:
            if worker in self._pool:
                self._pool.remove(worker)
            self._count()

    def _count(self) -> None:
        """Recompute whether the pool has more unblocked workers than it needs (lock held)."""
        self._surplus = len(self._pool) - self._blocked > self.workers

    def _unblock(self, worker: _Worker) -> None:
        with self._lock:
            if worker.blocked:
                worker.blocked = False
                self._blocked -= 1
                self._count()

    def _retire(self, worker: _Worker) -> bool:
        """Leave the pool if it has more unblocked workers than it needs."""
        with self._lock:
            if len(self._pool) - self._blocked > self.workers and worker in self._pool:
                self._pool.remove(worker)
                self._count()
                return True
        return False

    def _mark_blocked(self, worker: _Worker, *, waiting: bool = False) -> bool:
        """Count ``worker`` as blocked and add a replacement if the pool is short (lock held).
        False when the bound on blocked workers is reached.

        A worker stuck in a handler is replaced while the pool has fewer unblocked workers
        than ``workers``. One that waits on the runtime (an ask: usually microseconds) is
        replaced only when no other worker is free to serve what it waits for: none is
        unblocked, or none is parked and the pool is short."""
        if worker.blocked:
            return True
        if self._blocked >= self.max_blocked:
            return False
        worker.blocked = True
        self._blocked += 1
        self.blocked_handoffs += 1
        unblocked = len(self._pool) - self._blocked
        short = unblocked < self.workers
        if waiting:
            short = unblocked == 0 or (short and not self._idle)
        if self._running and short:
            self._add_worker()
        self._count()
        return True

    @contextlib.contextmanager
    def _blocking(self, worker: _Worker, *, strict: bool) -> Iterator[None]:
        if worker.blocked:  # already counted (the watchdog, or an outer wait)
            yield
            return
        with self._lock:
            ok = self._mark_blocked(worker, waiting=True)
        if not ok:
            if strict:
                cell = current_cell()
                raise PoolExhausted(
                    f"actor {cell.name if cell else '?'!r} would block on a pool whose "
                    f"{self.max_blocked} spare workers are all blocked already (asks "
                    f"nested too deep, or too many actors blocking at once); raise "
                    f"PoolDispatcher(max_blocked=...) or pin the blocking actor "
                    f"(dispatcher=PinnedDispatcher())"
                )
            yield
            return
        try:
            yield
        finally:
            self._unblock(worker)
            if worker.since:
                worker.since = time.monotonic()  # the wait is over: the turn goes on afresh

    def _watch(self) -> None:
        """Replace workers stuck in one turn for longer than the threshold."""
        threshold = self.blocking_threshold
        interval = threshold / 2
        clock = time.monotonic
        while not self._stop.wait(interval):
            now = clock()
            with self._lock:
                for worker in list(self._pool):
                    since = worker.since
                    if since and not worker.blocked and now - since > threshold:
                        cell = worker.cell
                        if not self._mark_blocked(worker):
                            continue
                        if worker.since != since:
                            # The turn ended meanwhile (the worker clears ``since`` before
                            # it looks at ``blocked``): take the mark back.
                            worker.blocked = False
                            self._blocked -= 1
                            self.blocked_handoffs -= 1
                            self._count()
                            continue
                        self._log.info(
                            "worker blocked in a handler; replaced",
                            actor=cell.name if cell is not None else None,
                            seconds=round(now - since, 3),
                        )

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._running = False
            pool = list(self._pool)
        self._stop.set()
        for _ in pool:
            self._execute(None)
        deadline = time.monotonic() + timeout
        me = threading.current_thread()
        for worker in pool:
            if worker.thread is not None and worker.thread is not me:
                worker.thread.join(max(deadline - time.monotonic(), 0.0))
        if self._watchdog is not None and self._watchdog is not me:
            self._watchdog.join(max(deadline - time.monotonic(), 0.0))

    def threads(self) -> list[threading.Thread]:
        with self._lock:
            out = [w.thread for w in self._pool if w.thread is not None]
        if self._watchdog is not None:
            out.append(self._watchdog)
        return [t for t in out if t.is_alive()]

    def metrics(self) -> dict[str, int]:
        with self._lock:
            return {
                "workers": len(self._pool),
                "blocked_workers": self._blocked,
                "blocked_handoffs": self.blocked_handoffs,
                "run_queue": len(self._runq),
            }


class PinnedDispatcher(Dispatcher):
    """A thread of its own for one actor: ``spawn(Cls, dispatcher=PinnedDispatcher())``.

    For an actor that blocks for long by design. The instance is a spec: each actor given
    it (a ChildSpec's child after its parent restarts too) gets a thread anew, which ends
    when the actor dies.
    """

    def __init__(self, throughput: int = DEFAULT_THROUGHPUT) -> None:
        if not isinstance(throughput, int) or isinstance(throughput, bool) or throughput < 1:
            raise ValueError(f"PinnedDispatcher throughput must be an int >= 1, got {throughput!r}")
        self.throughput = throughput
        self._runq: queue.SimpleQueue[_Cell | None] = queue.SimpleQueue()
        self._execute = self._runq.put  # type: ignore[method-assign, assignment]
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return "PinnedDispatcher()"

    def _attach(self, system_name: str) -> None:
        if self._thread is not None:
            raise RuntimeError("a PinnedDispatcher serves one actor; give each its own")
        self._thread = threading.Thread(target=self._work, name=system_name, daemon=True)
        self._thread.start()

    def _execute(self, cell: _Cell) -> None:
        self._runq.put(cell)

    def _work(self) -> None:
        _local.reply = None
        get = self._runq.get
        while True:
            cell = get()
            if cell is None:
                return
            _local.cell = cell
            try:
                cell.run_turn()
            except BaseException as exc:  # noqa: BLE001 - defensive
                structlog.get_logger("actorwire.dispatcher").error(
                    "actor turn raised", actor=cell.name, error=repr(exc)
                )
            _local.cell = None
            reply = _local.reply
            if reply is not None:  # the turn's last ask, answered once the turn is done
                _local.reply = None
                reply[0].set(reply[1])

    def _release(self, cell: _Cell) -> None:
        self._runq.put(None)

    def shutdown(self, timeout: float = 5.0) -> None:
        self._runq.put(None)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def threads(self) -> list[threading.Thread]:
        return [self._thread] if self._thread is not None and self._thread.is_alive() else []
