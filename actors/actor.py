"""The actor base class: a pykka Actor whose mailbox a dispatcher runs.

An actor owns no thread. The system starts it (never ``Actor.start()``, and it is never
entered in pykka's process-global registry); its dispatcher runs a *turn* whenever messages
wait: up to ``throughput`` of them, in order, one at a time (or runs of tells together
through ``on_batch``), then the actor yields its worker. Failures end the incarnation and
go to the system, which hands them to the supervisor; nothing an actor raises stops another
actor (pykka's loop would stop every actor in the process on a BaseException).
"""

from __future__ import annotations

import sys
import threading
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import pykka
import structlog
from pykka import ActorDeadError
from pykka import messages as pykka_messages

from .dispatcher import _local
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
_UNSTARTED_LOG = structlog.get_logger("actorwire.actor")


class Actor(pykka.Actor):
    """Subclass this and implement ``on_receive(message)`` (and optionally ``on_batch``).

    The system sets ``self.system``, ``self.address`` and ``self.log`` before ``on_start``
    runs; they are not available in ``__init__``. A message told to the actor that raises
    is a failure: the actor stops (``on_failure`` runs) and its supervisor decides what
    happens next. An exception while answering an ``ask`` goes back to the asker instead.

    The actor runs on its system's dispatcher (a shared pool of workers by default); pass
    ``dispatcher=PinnedDispatcher()`` to ``spawn`` for an actor that blocks for long.
    """

    batch_size: ClassVar[int] = 512
    """Most messages handled per turn (the dispatcher's ``throughput`` bounds it too)."""

    system: ActorSystem
    address: Address
    _aw_cell: _Cell | None = None
    _aw_stop_now: bool = False
    _aw_started: bool = False
    _aw_finished: bool = False
    _aw_start_error: BaseException | None = None
    _aw_batched: bool = False
    _aw_running: bool = False  # started and not yet ended: turns may run
    _aw_limit: int = 512

    def __init__(self) -> None:
        # pykka's __init__ makes a uuid, an Event and an ActorRef per actor: made lazily
        # here (see the properties below), so an idle actor stays a few hundred bytes.
        pass

    @property
    def log(self) -> FilteringBoundLogger:
        """structlog logger bound to the system and this actor's name."""
        log = self.__dict__.get("_aw_log")
        if log is None:
            cell = self._aw_cell
            log = cell.log if cell is not None else _UNSTARTED_LOG
            self.__dict__["_aw_log"] = log
        return log

    @log.setter
    def log(self, value: FilteringBoundLogger) -> None:
        self.__dict__["_aw_log"] = value

    # -- pykka's attributes, lazily ----------------------------------------------------

    @property
    def actor_urn(self) -> str:  # type: ignore[override]
        urn = self.__dict__.get("_aw_urn")
        if urn is None:
            urn = self.__dict__.setdefault("_aw_urn", uuid.uuid4().urn)
        return urn  # type: ignore[no-any-return]

    @property
    def actor_inbox(self) -> Any:  # type: ignore[override]
        cell = self._aw_cell
        return cell.inbox if cell is not None else _UNATTACHED

    @property
    def actor_stopped(self) -> threading.Event:  # type: ignore[override]
        event = self.__dict__.get("_aw_stopped_event")
        if event is None:
            event = self.__dict__.setdefault("_aw_stopped_event", threading.Event())
            if self._aw_finished:
                event.set()
        return event  # type: ignore[no-any-return]

    @property
    def _actor_ref(self) -> pykka.ActorRef[Any]:  # type: ignore[override]
        ref = self.__dict__.get("_aw_ref")
        if ref is None:
            ref = self.__dict__.setdefault("_aw_ref", pykka.ActorRef(self))
        return ref  # type: ignore[no-any-return]

    @staticmethod
    def _create_actor_inbox() -> Any:
        return _UNATTACHED

    @staticmethod
    def _create_future() -> Any:
        from .address import Reply  # noqa: PLC0415 - cycle

        return Reply()

    def _start_actor_loop(self) -> None:
        raise TypeError("actorwire actors are started by system.spawn, not by pykka")

    @classmethod
    def start(cls, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(
            f"{cls.__name__}.start() is pykka's; start actorwire actors with "
            f"system.spawn({cls.__name__}, ...)"
        )

    # -- hooks -------------------------------------------------------------------------

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

    # -- one turn ----------------------------------------------------------------------

    def _aw_turn(self, cell: _Cell, limit: int) -> object | None:
        """Handle up to ``limit`` waiting messages; a stop reason ends the incarnation.

        An item is an envelope or a list of told messages (one ``tell_many``). What is left
        when the turn ends early (a failure, a stop) stays in the cell's backlog for the
        next turn or incarnation.
        """
        if self._aw_stop_now:
            return SHUTDOWN
        items = cell.take_backlog() if cell.backlog else cell.inbox.drain(limit)
        n = len(items)
        batched = self._aw_batched
        on_receive = self.on_receive
        control = _CONTROL
        i = 0
        run_len = 1
        try:
            while i < n:
                item = items[i]
                if item.__class__ is not list and (
                    item.reply_to is not None or item.message.__class__ in control
                ):
                    i += 1
                    run_len = 1
                    outcome = self._aw_special(item, cell, last=i == n)
                    if outcome is not None:
                        cell.leave(self, items[i:])
                        return outcome
                elif batched:
                    # A run of tells (envelopes and tell_many lists) goes to on_batch whole.
                    run: list[Any] = []
                    j = i
                    while j < n:
                        nxt = items[j]
                        if nxt.__class__ is list:
                            run.extend(nxt)
                        elif nxt.reply_to is None and nxt.message.__class__ not in control:
                            run.append(nxt.message)
                        else:
                            break
                        j += 1
                    run_len = len(run)
                    i = j
                    self.on_batch(run)
                    cell.processed += run_len
                elif item.__class__ is list:
                    run_len = 1
                    for k, message in enumerate(item):
                        try:
                            on_receive(message)
                        except BaseException:
                            cell.processed += k
                            rest = item[k + 1 :]
                            if rest:
                                items[i] = rest
                            else:
                                i += 1
                            raise
                        if self._aw_stop_now:  # a kill lands between messages, as for tells
                            cell.processed += k + 1
                            rest = item[k + 1 :]
                            cell.leave(self, [rest, *items[i + 1 :]] if rest else items[i + 1 :])
                            return SHUTDOWN
                    cell.processed += len(item)
                    i += 1
                else:
                    run_len = 1
                    i += 1
                    on_receive(item.message)
                    cell.processed += 1
                if self._aw_stop_now:
                    cell.leave(self, items[i:])
                    return SHUTDOWN
        except BaseException as exc:  # noqa: BLE001 - one actor's failure is its own
            cell.failed += run_len
            cell.leave(self, items[i:])
            return exc
        return None

    def _aw_special(self, env: Envelope[Any], cell: _Cell, *, last: bool = False) -> object | None:
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
        if last:
            # The turn's last answer is set by the dispatcher thread once the turn's
            # bookkeeping is done (turns run on dispatcher threads only).
            _local.reply = (reply, result)
        else:
            reply.set(result)
        return None

    def _aw_end(self, reason: object) -> None:
        cell = self._aw_cell
        assert cell is not None
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
        self._aw_running = False
        self._aw_finished = True
        event = self.__dict__.get("_aw_stopped_event")
        if event is not None:
            event.set()
        try:
            cell.incarnation_ended(self, reason)
        finally:
            cell.system._incarnation_done()

    def __repr__(self) -> str:
        cell = self._aw_cell
        name = cell.name if cell is not None else "unstarted"
        return f"<{type(self).__name__} {name!r}>"
