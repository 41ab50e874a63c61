"""The timer service: one thread per system delivering delayed and periodic messages."""

from __future__ import annotations

import heapq
import itertools
import threading
from typing import TYPE_CHECKING, Any

import structlog

from .clock import Clock, monotonic

if TYPE_CHECKING:
    from .address import Address

__all__ = ["Timer", "TimerService"]


class Timer:
    """A scheduled delivery; ``cancel()`` stops it (idempotent, safe from any thread)."""

    __slots__ = ("_cancelled", "address", "due", "interval", "message")

    def __init__(self, due: float, address: Address, message: Any, interval: float | None) -> None:
        self.due = due
        self.address = address
        self.message = message
        self.interval = interval
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def __repr__(self) -> str:
        kind = f"every {self.interval}s" if self.interval is not None else "once"
        return f"<Timer {type(self.message).__name__} -> {self.address.name} {kind}>"


class TimerService:
    """A heap of timers served by one thread; delivery never blocks on a full mailbox."""

    def __init__(self, system: str, clock: Clock = monotonic) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._running = True
        self._log = structlog.get_logger("actorwire.timers").bind(system=system)
        self._thread = threading.Thread(target=self._run, name=f"{system}-timers", daemon=True)
        self._thread.start()

    def schedule(
        self, delay: float, address: Address, message: Any, interval: float | None = None
    ) -> Timer:
        # The interval first: send_every passes it as the first delay too.
        if interval is not None and interval <= 0:
            raise ValueError(f"timer interval must be > 0 seconds, got {interval!r}")
        if delay < 0:
            raise ValueError(f"timer delay must be >= 0 seconds, got {delay!r}")
        timer = Timer(self._clock() + delay, address, message, interval)
        with self._cond:
            if not self._running:
                raise RuntimeError("the actor system is shut down; no timers can be scheduled")
            heapq.heappush(self._heap, (timer.due, next(self._seq), timer))
            self._cond.notify()
        return timer

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._running:
                    if self._heap:
                        wait = self._heap[0][0] - self._clock()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if not self._running:
                    return
                _, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            try:
                timer.address._deliver_nowait(timer.message)
            except Exception:  # noqa: BLE001 - the timer thread serves every actor
                self._log.exception("timer delivery failed", timer=repr(timer))
            if timer.interval is not None and not timer.address.is_alive():
                timer.cancel()  # its actor is dead: every further tick is a dead letter
            if timer.interval is not None and not timer.cancelled:
                # Fixed rate from the due time, so a late tick does not shift later ones.
                timer.due = max(timer.due + timer.interval, self._clock())
                with self._cond:
                    if self._running:
                        heapq.heappush(self._heap, (timer.due, next(self._seq), timer))

    def pending(self) -> int:
        with self._cond:
            return sum(1 for _, _, t in self._heap if not t.cancelled)

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._running = False
            self._heap.clear()
            self._cond.notify_all()
        self._thread.join(timeout)
