"""The actor base class: a pykka ThreadingActor whose loop drains its mailbox in batches.

The loop is actorwire's own (pykka's handles one envelope per wake-up and stops every actor
in the process on a BaseException). Failures end the incarnation and go to the system,
which hands them to the supervisor; nothing an actor raises stops another actor.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import pykka
from pykka import ActorDeadError
from pykka import messages as pykka_messages

from .messages import NORMAL, SHUTDOWN, Stop, Wake, is_failure

if TYPE_CHECKING:
    from pykka._envelope import Envelope
    from structlog.typing import FilteringBoundLogger

    from .address import Address
    from .system import ActorSystem, _Cell

__all__ = ["Actor"]

_PYKKA_CONTROL = (
    pykka_messages.ProxyCall,
    pykka_messages.ProxyGetAttr,
    pykka_messages.ProxySetAttr,
)
# Message classes the loop handles itself instead of passing to on_receive.
_CONTROL: frozenset[type] = frozenset({Stop, Wake, pykka_messages._ActorStop, *_PYKKA_CONTROL})


class _Unattached:
    """Inbox placeholder until the system attaches the address's real inbox."""

    def put(self, _envelope: Any, /) -> NoReturn:
        raise RuntimeError("this actor was not started: use system.spawn(ActorClass, ...)")

    def get(self) -> NoReturn:
        raise RuntimeError("this actor was not started: use system.spawn(ActorClass, ...)")

    def empty(self) -> bool:
        return True


_UNATTACHED = _Unattached()


class Actor(pykka.ThreadingActor):
    """Subclass this and implement ``on_receive(message)`` (and optionally ``on_batch``).

    The system sets ``self.system``, ``self.address`` and ``self.log`` before ``on_start``
    runs; they are not available in ``__init__``. A message told to the actor that raises
    is a failure: the actor stops (``on_failure`` runs) and its supervisor decides what
    happens next. An exception while answering an ``ask`` goes back to the asker instead.
    """

    use_daemon_thread = True
    batch_size: ClassVar[int] = 512
    """Most messages taken from the mailbox per wake-up."""

    system: ActorSystem
    address: Address
    log: FilteringBoundLogger
    _aw_cell: _Cell
    _aw_stop_now: bool
    _aw_started: threading.Event
    _aw_done: threading.Event
    _aw_start_error: BaseException | None
    _aw_thread: threading.Thread | None = None

    @staticmethod
    def _create_actor_inbox() -> Any:
        return _UNATTACHED

    @classmethod
    def start(cls, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(
            f"{cls.__name__}.start() is pykka's; start actorwire actors with "
            f"system.spawn({cls.__name__}, ...)"
        )

    def on_receive(self, message: Any) -> Any:
        """Handle one message; the return value answers an ``ask``."""
        self.log.warning("unhandled message", message_type=type(message).__name__)

    def on_batch(self, messages: list[Any]) -> None:
        """Handle a drained run of told messages; override to process them together.

        The default calls ``on_receive`` for each. If an override raises, the whole batch
        counts as failed and the messages after it stay queued for the next incarnation.
        """
        for message in messages:
            self.on_receive(message)

    # -- the loop ----------------------------------------------------------------------

    def _start_actor_loop(self) -> None:
        thread = threading.Thread(
            target=self._actor_loop, name=f"{self._aw_cell.name}", daemon=True
        )
        self._aw_thread = thread
        thread.start()

    def _actor_loop(self) -> None:
        cell = self._aw_cell
        cell.thread_ident = threading.get_ident()
        try:
            self.on_start()
        except BaseException as exc:  # noqa: BLE001 - a failed start is a supervised failure
            self._aw_start_error = exc
            self._aw_end(exc)
            return
        self._aw_started.set()
        reason: object
        try:
            reason = self._aw_run(cell)
        except BaseException as exc:  # noqa: BLE001 - defensive: a runtime bug ends only us
            reason = exc
        self._aw_end(reason)

    def _aw_run(self, cell: _Cell) -> object:
        inbox = cell.inbox
        limit = self.batch_size
        batched = type(self).on_batch is not Actor.on_batch
        on_receive = self.on_receive
        control = _CONTROL
        while True:
            if self._aw_stop_now:
                return SHUTDOWN
            envs = cell.take_backlog()
            if not envs:
                envs = inbox.drain(limit)
                cell.taken += len(envs)
            n = len(envs)
            i = 0
            run_len = 1
            try:
                while i < n:
                    env = envs[i]
                    message = env.message
                    if env.reply_to is None and message.__class__ not in control:
                        if batched:
                            j = i + 1
                            while (
                                j < n
                                and envs[j].reply_to is None
                                and envs[j].message.__class__ not in control
                            ):
                                j += 1
                            run = [e.message for e in envs[i:j]]
                            run_len = len(run)
                            i = j
                            self.on_batch(run)
                            cell.processed += run_len
                        else:
                            run_len = 1
                            i += 1
                            on_receive(message)
                            cell.processed += 1
                    else:
                        i += 1
                        run_len = 1
                        outcome = self._aw_special(env, cell)
                        if outcome is not None:
                            cell.backlog = envs[i:]
                            return outcome
                    if self._aw_stop_now:
                        cell.backlog = envs[i:]
                        return SHUTDOWN
            except BaseException as exc:  # noqa: BLE001 - one actor's failure is its own
                cell.failed += run_len
                cell.backlog = envs[i:]
                return exc

    def _aw_special(self, env: Envelope[Any], cell: _Cell) -> object | None:
        """An ask or a control message; returns a stop reason to end the loop, else None."""
        message = env.message
        reply = env.reply_to
        cls = message.__class__
        if cls in _CONTROL:
            cell.control += 1
        if cls is Stop:
            if message.target is not None and message.target is not self:
                return None  # meant for an earlier incarnation
            if reply is not None:
                reply.set(None)
            return NORMAL
        if cls is Wake:
            return None
        if cls is pykka_messages._ActorStop:
            if reply is not None:
                reply.set(None)
            return NORMAL
        if reply is None:
            # A pykka proxy message told without a reply: run it like a tell.
            self._handle_receive(message)
            cell.processed += 1
            return None
        # Counters are updated before the reply is set, so an asker that reads metrics
        # right after its answer sees its own message counted.
        try:
            if cls in _PYKKA_CONTROL:
                result = self._handle_receive(message)
            else:
                result = self.on_receive(message)
        except Exception:  # noqa: BLE001 - an ask's error belongs to the asker
            cell.processed += 1
            reply.set_exception(sys.exc_info())
            return None
        except BaseException as exc:  # noqa: BLE001 - fails this actor only
            cell.failed += 1
            # Re-raising SystemExit/KeyboardInterrupt in the asker would stop the asking
            # thread or actor too; to the asker this actor simply died on its message.
            dead = ActorDeadError(
                f"actor {cell.name!r} failed with {exc!r} while handling {type(message).__name__}"
            )
            dead.__cause__ = exc
            reply.set_exception((ActorDeadError, dead, None))
            return exc
        cell.processed += 1
        reply.set(result)
        return None

    def _aw_end(self, reason: object) -> None:
        if is_failure(reason):
            assert isinstance(reason, BaseException)
            try:
                self.on_failure(type(reason), reason, reason.__traceback__)
            except BaseException as exc:  # noqa: BLE001
                self.log.error("on_failure raised", error=repr(exc))
        else:
            try:
                self.on_stop()
            except BaseException as exc:  # noqa: BLE001 - a failing on_stop is a failure
                self.log.error("on_stop raised", error=repr(exc))
                reason = exc
        self.actor_stopped.set()
        try:
            self._aw_cell.incarnation_ended(self, reason)
        finally:
            self._aw_started.set()
            self._aw_done.set()

    def __repr__(self) -> str:
        cell = getattr(self, "_aw_cell", None)
        name = cell.name if cell is not None else "unstarted"
        return f"<{type(self).__name__} {name!r}>"
