"""The timer service: one thread per system delivering delayed and periodic messages.

On a :class:`~actorwire.actors.clock.ManualClock` no thread waits for time to pass: the
clock's ``advance()`` delivers every timer that came due, in due order, before it returns.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from typing import TYPE_CHECKING, Any

import structlog

from .clock import Clock, ManualClock, monotonic

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
    """A heap of timers served by one thread; delivery never blocks on a full mailbox.

    With a ManualClock the clock drives it instead: ``advance()`` fires what is due, a timer
    scheduled with no delay fires at once, and a periodic timer fires once for every
    interval that elapsed (fixed rate, as time would have passed). Its thread then only
    waits for shutdown, so no real-time wait can fire a timer early or late.
    """

    def __init__(self, system: str, clock: Clock = monotonic) -> None:
        self._clock = clock
        self._manual = clock if isinstance(clock, ManualClock) else None
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._firing = threading.RLock()  # manual clock: one firing pass at a time, in order
        self._running = True
        self._log = structlog.get_logger("actorwire.timers").bind(system=system)
        target = self._run if self._manual is None else self._wait_for_shutdown
        self._thread = threading.Thread(target=target, name=f"{system}-timers", daemon=True)
        self._thread.start()
        if self._manual is not None:
            self._manual._attach(self)

    def schedule(
        self, delay: float, address: Address, message: Any, interval: float | None = None
    ) -> Timer:
        # The interval first: send_every passes it as the first delay too.
        if interval is not None and interval <= 0:
            raise ValueError(f"timer interval must be > 0 seconds, got {interval!r}")
        if delay < 0:
            raise ValueError(f"timer delay must be >= 0 seconds, got {delay!r}")
        now = self._clock()
        timer = Timer(now + delay, address, message, interval)
        with self._cond:
            if not self._running:
                raise RuntimeError("the actor system is shut down; no timers can be scheduled")
            heapq.heappush(self._heap, (timer.due, next(self._seq), timer))
            self._cond.notify()
        if self._manual is not None and delay == 0:
            self._clock_advanced(now)  # due now: a manual clock need not move for it
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
            # Fixed rate from the due time, so a late tick does not shift later ones; but a
            # tick that is very late is not repeated for every interval missed.
            self._fire(timer, self._clock())

    def _wait_for_shutdown(self) -> None:
        with self._cond:
            while self._running:
                self._cond.wait()

    def _clock_advanced(self, now: float) -> None:
        """Deliver every timer due at ``now``, in due order (the ManualClock calls this)."""
        with self._firing:
            while True:
                with self._cond:
                    if not self._running or not self._heap or self._heap[0][0] > now:
                        return
                    _, _, timer = heapq.heappop(self._heap)
                # Every interval that elapsed fires: the next due time is never clamped.
                self._fire(timer, float("-inf"))

    def _fire(self, timer: Timer, earliest_next: float) -> None:
        if timer.cancelled:
            return
        try:
            timer.address._deliver_nowait(timer.message)
        except Exception:  # noqa: BLE001 - the timer thread serves every actor
            self._log.exception("timer delivery failed", timer=repr(timer))
        if timer.interval is not None and not timer.address.is_alive():
            timer.cancel()  # its actor is dead: every further tick is a dead letter
        if timer.interval is not None and not timer.cancelled:
            timer.due = max(timer.due + timer.interval, earliest_next)
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
        if self._manual is not None:
            self._manual._detach(self)
        self._thread.join(timeout)
