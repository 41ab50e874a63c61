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

The scheduling handshake is lock-free on the hot path: a sender appends to the mailbox and
then reads the cell's ``scheduled`` flag; a worker finishing a run clears the flag and then
looks at the mailbox again. Whichever of the two comes second sees the other's write, so a
message is never stranded, and the flag's False -> True edge is taken under a lock, so an
actor is never run by two workers at once.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import structlog

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
"""Per thread: ``cell`` (the actor running on it) and ``worker`` (its pool worker)."""


def current_cell() -> _Cell | None:
    """The cell of the actor whose handler is running on this thread, or None."""
    return getattr(_local, "cell", None)


def _set_current(cell: _Cell | None) -> _Cell | None:
    previous: _Cell | None = getattr(_local, "cell", None)
    _local.cell = cell
    return previous


def may_block() -> bool:
    """False on threads that must never wait for a mailbox (the I/O loop, timers)."""
    return not getattr(_local, "never_block", False)


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


class PoolExhausted(RuntimeError):
    """An actor on a pool blocked (an ``ask`` to another actor) while every worker the pool
    may add was already blocked: waiting could deadlock, so the call fails at once."""


class _Worker:
    """One worker thread's state, read by the pool's watchdog."""

    __slots__ = ("blocked", "cell", "pool", "since", "thread")

    def __init__(self, pool: PoolDispatcher) -> None:
        self.pool = pool
        self.thread: threading.Thread | None = None
        self.cell: _Cell | None = None
        self.since = 0.0  # monotonic start of the current turn (0: idle)
        self.blocked = False  # counted as blocked (and replaced)


class Dispatcher:
    """Runs scheduled actors. Subclasses: :class:`PoolDispatcher`, :class:`PinnedDispatcher`.

    A dispatcher instance belongs to one actor system (a PinnedDispatcher to one actor);
    pass a new one to each ``ActorSystem``/``spawn``.
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
        self._runq: queue.SimpleQueue[_Cell | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pool: list[_Worker] = []
        self._blocked = 0
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
        thread.start()

    def _execute(self, cell: _Cell) -> None:
        self._runq.put(cell)

    def _work(self, worker: _Worker) -> None:
        local = _local
        local.worker = worker
        get = self._runq.get
        clock = time.monotonic
        pool = self._pool
        target = self.workers
        while True:
            cell = get()
            if cell is None:
                break
            worker.cell = cell
            worker.since = clock()
            local.cell = cell
            try:
                cell.run_turn()
            except BaseException as exc:  # noqa: BLE001 - a runtime bug must not kill the pool
                self._log.error("actor turn raised", actor=cell.name, error=repr(exc))
            local.cell = None
            worker.since = 0.0
            worker.cell = None
            if worker.blocked:
                self._unblock(worker)
            if len(pool) - self._blocked > target and self._retire(worker):
                return  # a replacement took this worker's place while it was blocked
        with self._lock:
            if worker in pool:
                pool.remove(worker)

    def _unblock(self, worker: _Worker) -> None:
        with self._lock:
            if worker.blocked:
                worker.blocked = False
                self._blocked -= 1

    def _retire(self, worker: _Worker) -> bool:
        """Leave the pool if it has more unblocked workers than it needs."""
        with self._lock:
            if len(self._pool) - self._blocked > self.workers and worker in self._pool:
                self._pool.remove(worker)
                return True
        return False

    def _mark_blocked(self, worker: _Worker) -> bool:
        """Count ``worker`` as blocked and add a replacement if the pool is short (lock held).
        False when the bound on blocked workers is reached."""
        if worker.blocked:
            return True
        if self._blocked >= self.max_blocked:
            return False
        worker.blocked = True
        self._blocked += 1
        self.blocked_handoffs += 1
        if self._running and len(self._pool) - self._blocked < self.workers:
            self._add_worker()
        return True

    @contextlib.contextmanager
    def _blocking(self, worker: _Worker, *, strict: bool) -> Iterator[None]:
        if worker.blocked:  # already counted (the watchdog, or an outer wait)
            yield
            return
        with self._lock:
            ok = self._mark_blocked(worker)
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
                        if self._mark_blocked(worker):
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
            self._runq.put(None)
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
                "run_queue": self._runq.qsize(),
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

    def _release(self, cell: _Cell) -> None:
        self._runq.put(None)

    def shutdown(self, timeout: float = 5.0) -> None:
        self._runq.put(None)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def threads(self) -> list[threading.Thread]:
        return [self._thread] if self._thread is not None and self._thread.is_alive() else []
