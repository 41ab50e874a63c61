"""The state cell every facade shows its users: state, reason, bounded history, listeners,
and a blocking ``wait_for``.

A link, a session or a kernel client keeps its state in one of these: the state machine
(an actor's) sets it, any thread reads it. Listener exceptions are logged and never reach
the setter; the history keeps the latest ``history_size`` changes, so a long-lived client
holds a bounded amount of memory however often it reconnects.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import structlog

from .callbacks import plain_callback

__all__ = ["StateCell"]

S = TypeVar("S")
Listener = Callable[[S, str], Any]


class StateCell(Generic[S]):
    """Holds ``state`` and ``reason``; ``set`` records a change and tells the listeners."""

    def __init__(
        self,
        initial: S,
        reason: str = "",
        *,
        history_size: int = 1000,
        name: str = "state",
    ) -> None:
        if isinstance(history_size, bool) or not isinstance(history_size, int):
            raise TypeError(f"history_size must be an int, got {history_size!r}")
        if history_size < 1:
            raise ValueError(f"history_size must be >= 1, got {history_size!r}")
        self._cond = threading.Condition()
        self._state = initial
        self._waited = initial  # the state waiters see: set after the listeners ran
        self._reason = reason
        self._history: deque[tuple[S, str]] = deque(maxlen=history_size)
        self._listeners: list[Listener[S]] = []
        self._log = structlog.get_logger("actorwire.state").bind(cell=name)

    @property
    def state(self) -> S:
        return self._state

    @property
    def reason(self) -> str:
        return self._reason

    def history(self) -> list[tuple[S, str]]:
        """The latest changes, oldest first: ``[(state, reason), ...]``."""
        with self._cond:
            return list(self._history)

    def add_listener(self, listener: Listener[S]) -> None:
        """Call ``listener(state, reason)`` on every change (on the setter's thread)."""
        plain_callback(listener, "a state listener")
        with self._cond:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener[S]) -> None:
        with self._cond:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def set(self, state: S, reason: str = "", *, force: bool = False) -> bool:
        """Move to ``state``; False (and nobody told) when it is already there, unless
        ``force`` (a repeated state with a new reason worth reporting)."""
        with self._cond:
            if state == self._state and not force:
                return False
            self._state = state
            self._reason = reason
            self._history.append((state, reason))
            # Set before the listeners run (one of them may wait for this very state), but
            # waiters are woken only once they have run (below).
            self._waited = state
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(state, reason)
            except Exception as exc:  # noqa: BLE001 - a user callback must not break the owner
                self._log.error("state listener raised", error=repr(exc))
        # Waiters wake once the listeners have run: whoever waited for a state acts after
        # the listeners saw it (their output, say, comes first).
        with self._cond:
            self._cond.notify_all()
        return True

    def wait_for(self, target: S | Callable[[S], bool], timeout: float | None = None) -> bool:
        """Block until the state is ``target`` (or ``target(state)`` is true) and its
        listeners have been told; False on timeout."""
        if callable(target):
            check: Callable[[], bool] = lambda: bool(target(self._waited))  # noqa: E731
        else:
            check = lambda: self._waited == target  # noqa: E731
        with self._cond:
            return self._cond.wait_for(check, timeout)

    def __repr__(self) -> str:
        return f"StateCell({self._state!r}, {self._reason!r})"
