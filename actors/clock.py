"""Clocks: every time-based policy takes one, so tests can drive time by hand."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol

Clock = Callable[[], float]
"""A zero-argument callable returning monotonic seconds (``time.monotonic`` by default)."""

monotonic: Clock = time.monotonic


class _Driven(Protocol):
    """What a ManualClock drives when it moves: a TimerService fires what is due."""

    def _clock_advanced(self, now: float) -> None: ...


class ManualClock:
    """A clock that only moves when told to: ``clock()`` reads it, ``advance(dt)`` moves it.

    Every ``TimerService`` on this clock (the timers of an ``ActorSystem(clock=...)``) is
    driven by it: ``advance`` delivers every timer that has come due before it returns, so a
    test needs no real waits.
    """

    __slots__ = ("_advancing", "_driven", "_lock", "_now")

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        # One advance at a time, so that timers fire in due order even when two threads
        # move the clock; reentrant for a delivery that moves it again.
        self._advancing = threading.RLock()
        self._driven: weakref.WeakSet[_Driven] = weakref.WeakSet()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (>= 0), deliver every timer now due, and
        return the new time."""
        if seconds < 0:
            raise ValueError(f"ManualClock.advance: seconds must be >= 0, got {seconds!r}")
        with self._advancing:
            with self._lock:
                self._now += seconds
                now = self._now
                driven = list(self._driven)
            for service in driven:
                service._clock_advanced(now)
        return now

    def _attach(self, service: _Driven) -> None:
        with self._lock:
            self._driven.add(service)

    def _detach(self, service: _Driven) -> None:
        with self._lock:
            self._driven.discard(service)

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"
