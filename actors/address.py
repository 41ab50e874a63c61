"""Addresses: stable handles to actors that survive restarts."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pykka import ActorDeadError
from pykka._envelope import Envelope

from .dispatcher import _local, current_cell
from .mailbox import MailboxFull
from .messages import Control

if TYPE_CHECKING:
    from .system import ActorSystem, _Cell

__all__ = ["DEFAULT_ASK_TIMEOUT", "Address"]

DEFAULT_ASK_TIMEOUT = 5.0
"""Seconds an ``ask`` waits by default: a reply never hangs forever."""

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class Reply:
    """A one-shot reply slot for ``ask``: a lock released once the answer is set.

    Cheaper than pykka's Condition-based future on the round trip; it offers the
    ``set``/``set_exception``/``get`` calls the actor loop and pykka use.
    """

    __slots__ = ("_done", "_exc", "_hook", "_value")

    def __init__(self) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self._value: Any = None
        self._exc: ExcInfo | None = None
        self._hook: Callable[[float | None], Any] | None = None

    def set_get_hook(self, func: Callable[[float | None], Any]) -> None:
        """``get`` returns ``func(timeout)`` instead (pykka's ``ActorRef.stop`` uses it)."""
        self._hook = func

    def set(self, value: Any = None) -> None:
        self._value = value
        self._release()

    def set_exception(self, exc_info: Any = None) -> None:
        if exc_info is None:
            exc_info = sys.exc_info()
        self._exc = exc_info
        self._release()

    def _release(self) -> None:
        try:  # noqa: SIM105 - cheaper than contextlib.suppress on the ask path
            self._done.release()
        except RuntimeError:
            pass  # already answered (e.g. a reply raced a dead-letter rejection)

    def get(self, timeout: float | None = None) -> Any:
        if self._hook is not None:
            return self._hook(timeout)
        if not self._done.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            raise TimeoutError
        self._done.release()
        if self._exc is not None:
            _, value, tb = self._exc
            raise value.with_traceback(tb)
        return self._value


class Address:
    """The stable handle to an actor: ``tell``, ``ask``, ``name``, ``is_alive()``.

    An address outlives the incarnations behind it: while a supervised actor restarts,
    messages told to it are held (bounded) and delivered to the new incarnation. What
    cannot be delivered goes to the system's dead letters, counted and logged.
    """

    __slots__ = ("__weakref__", "_cell")

    def __init__(self, cell: _Cell) -> None:
        self._cell = cell

    @property
    def name(self) -> str:
        return self._cell.name

    @property
    def system(self) -> ActorSystem:
        return self._cell.system

    def depth(self) -> int:
        """How many messages wait in the mailbox (a snapshot: flow control, metrics)."""
        return self._cell.inbox.qsize()

    def tell(self, message: Any) -> None:
        """Send without waiting for an answer (blocks only on a full BACKPRESSURE mailbox)."""
        self._cell.inbox.put(Envelope(message))

    def tell_many(self, messages: list[Any]) -> int:
        """Tell each message in order, cheaper than a loop of ``tell``. Returns how many a
        bounded mailbox refused (counted as dropped) rather than raising MailboxFull."""
        return self._cell.inbox.put_many(messages)

    def ask(self, message: Any, timeout: float | None = DEFAULT_ASK_TIMEOUT) -> Any:
        """Send and wait for the actor's answer (the return value of its ``on_receive``).

        Raises TimeoutError after ``timeout`` seconds, ActorDeadError if the actor is dead,
        MailboxFull if a bounded mailbox refuses it, or whatever the actor raised. Asked
        from an actor on a pool, the pool adds a worker while this one waits (so asks never
        deadlock the pool); PoolExhausted when it may add no more.
        """
        cell = self._cell
        if current_cell() is cell:
            raise RuntimeError(f"actor {cell.name!r} asked itself: that would deadlock")
        reply = Reply()
        worker = getattr(_local, "worker", None)
        try:
            if worker is None:
                cell.inbox.put(Envelope(message, reply_to=reply))  # type: ignore[arg-type]
                return reply.get(timeout)
            with worker.pool._blocking(worker, strict=True):
                cell.inbox.put(Envelope(message, reply_to=reply))  # type: ignore[arg-type]
                return reply.get(timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no reply from actor {cell.name!r} to {type(message).__name__} within {timeout}s"
            ) from None

    def is_alive(self) -> bool:
        """True until the actor has stopped for good (a restarting actor is alive)."""
        return not self._cell.dead

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop gracefully after the messages already queued; True if it stopped in time."""
        return self._cell.system.stop(self, timeout=timeout)

    def tell_control(self, message: Control) -> None:
        """Queue a Control message (a wake-up, a marker) after what is waiting, from any
        thread, the I/O loop included: it never blocks and is never dropped by the
        mailbox's overflow policy. Sent to a dead actor, it goes to dead letters."""
        if not isinstance(message, Control):
            raise TypeError(f"tell_control takes a Control message, got {message!r}")
        self._deliver_nowait(message)

    def _deliver_nowait(self, message: Any) -> None:
        """Tell that never blocks: a full mailbox drops the message (counted, logged), except
        a Control message, which is queued outside the mailbox's bound."""
        cell = self._cell
        if isinstance(message, Control):
            cell.inbox.put_system(Envelope(message))
            return
        try:
            cell.inbox.put(Envelope(message), timeout=0)
        except MailboxFull as exc:
            cell.count_drop(message, str(exc))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Address) and other._cell is self._cell

    def __hash__(self) -> int:
        return id(self._cell)

    def __repr__(self) -> str:
        return f"Address({self._cell.name!r})"


__all__ += ["ActorDeadError", "MailboxFull", "Reply"]
