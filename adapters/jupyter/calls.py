"""The client's calls in flight: held while the kernel starts, matched to their replies,
failed together when it dies.

Owned by the client's lifecycle actor, which decides when a call is sent, held or failed;
``ReplyMatcher`` (in ``replies``) does the matching. The callers wait on the concurrent
futures completed here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ...actors import Address
from ...actors.twins import await_future
from .replies import Completed, ExecutionResult, ReplyMatcher, msg_type
from .state import KernelDeadError

__all__ = ["HOLD_LIMIT", "Call", "Forget", "Pending", "PendingCalls", "submit"]

T = TypeVar("T")

HOLD_LIMIT = 10_000
"""Requests held while the kernel starts or restarts; beyond that they fail at once."""


@dataclass(frozen=True, slots=True)
class Call:
    """A request to send on ``channel``; ``future`` gets its reply (an ExecutionResult for
    an execute, which also waits for iopub idle when ``wait_idle``)."""

    channel: str
    msg: dict[str, Any]
    future: concurrent.futures.Future[Any]
    wait_idle: bool

    @property
    def msg_id(self) -> str:
        return str(self.msg["header"]["msg_id"])

    def fail(self, why: str) -> None:
        fail(self.future, KernelDeadError(f"{msg_type(self.msg)} {self.msg_id}: {why}"))


@dataclass(frozen=True, slots=True)
class Forget:
    """The caller of ``msg_id`` gave up waiting (timed out or cancelled)."""

    msg_id: str


@dataclass(frozen=True, slots=True)
class Pending(Generic[T]):
    """A caller's side of a call: its answer, awaited blocking (``wait``) or on the
    caller's loop (``wait_async``, no thread). A caller that gives up (timeout,
    cancellation) tells the lifecycle actor to forget the call."""

    msg_id: str
    future: concurrent.futures.Future[T]
    what: str
    timeout: float | None
    kernel: str
    lifecycle: Address

    def wait(self) -> T:
        try:
            return self.future.result(self.timeout)
        except concurrent.futures.TimeoutError:
            raise self._timed_out() from None

    async def wait_async(self) -> T:
        try:
            return await await_future(self.future, self.timeout)
        except TimeoutError:
            raise self._timed_out() from None
        except asyncio.CancelledError:
            self.lifecycle.tell(Forget(self.msg_id))
            raise

    def _timed_out(self) -> TimeoutError:
        self.lifecycle.tell(Forget(self.msg_id))
        return TimeoutError(
            f"no reply to {self.what} {self.msg_id} from kernel {self.kernel!r} "
            f"within {self.timeout}s"
        )


def submit(
    lifecycle: Address,
    kernel: str,
    channel: str,
    msg: dict[str, Any],
    future: concurrent.futures.Future[T],
    timeout: float | None,
    *,
    wait_idle: bool = False,
) -> Pending[T]:
    """Hand ``msg`` to the lifecycle actor, to send on ``channel`` (or hold, or fail);
    ``future`` gets the answer. Returns what the caller waits on."""
    future.set_running_or_notify_cancel()  # only the lifecycle actor completes it
    call = Call(channel, msg, future, wait_idle)
    lifecycle.tell(call)
    return Pending(call.msg_id, future, msg_type(msg), timeout, kernel, lifecycle)


class PendingCalls:
    """Calls sent and waiting for their replies, calls held until the kernel is ready, and
    the readiness probes (kernel_info requests whose replies answer no caller)."""

    __slots__ = ("_futures", "_held", "_matcher", "_probes", "hold_limit")

    def __init__(self, hold_limit: int = HOLD_LIMIT) -> None:
        self._matcher = ReplyMatcher()
        self._futures: dict[str, concurrent.futures.Future[Any]] = {}
        self._held: list[Call] = []
        self._probes: set[str] = set()
        self.hold_limit = hold_limit

    # -- in ---------------------------------------------------------------------------------

    def sent(self, call: Call) -> None:
        """``call`` went to the kernel: wait for its reply."""
        msg_id = call.msg_id
        self._matcher.track(msg_id, msg_type(call.msg), wait_idle=call.wait_idle)
        self._futures[msg_id] = call.future

    def hold(self, call: Call) -> bool:
        """Keep ``call`` until the kernel is ready; False when ``hold_limit`` calls wait."""
        if len(self._held) >= self.hold_limit:
            return False
        self._held.append(call)
        return True

    def held(self) -> int:
        """How many calls wait for the kernel to be ready."""
        return len(self._held)

    def release(self) -> list[Call]:
        """Every held call, in order, to send now."""
        held, self._held = self._held, []
        return held

    def probe(self, msg_id: str) -> None:
        """A readiness probe (kernel_info_request ``msg_id``) went to the kernel."""
        self._matcher.track(msg_id, "kernel_info_request")
        self._probes.add(msg_id)

    def end_probes(self) -> None:
        """The kernel is ready: stop waiting for the probes still out."""
        for msg_id in self._probes:
            self._matcher.forget(msg_id)
        self._probes.clear()

    # -- out ------------------------------------------------------------------------------

    def on_replies(self, msgs: list[dict[str, Any]]) -> list[Completed]:
        """Shell or control replies: the requests they complete."""
        on_reply = self._matcher.on_reply
        return [done for msg in msgs if (done := on_reply(msg)) is not None]

    def on_iopub(self, msgs: list[dict[str, Any]]) -> list[Completed]:
        """iopub messages, recorded for their requests: the requests they complete."""
        on_iopub = self._matcher.on_iopub
        return [done for msg in msgs if (done := on_iopub(msg)) is not None]

    def settle(self, done: Completed) -> bool:
        """Give ``done``'s caller its answer; True if it was a probe instead (no caller)."""
        if done.msg_id in self._probes:
            self._probes.discard(done.msg_id)
            return True
        fut = self._futures.pop(done.msg_id, None)
        if fut is None:
            return False
        if done.request_type == "execute_request":
            succeed(fut, ExecutionResult.from_completed(done))
        else:
            succeed(fut, done.reply)
        return False

    def forget(self, msg_id: str) -> None:
        """The caller of ``msg_id`` gave up (timed out or cancelled)."""
        self._matcher.forget(msg_id)
        self._futures.pop(msg_id, None)
        self._held = [c for c in self._held if c.msg_id != msg_id]

    def fail_all(self, why: str) -> None:
        """Fail every call, sent or held, with KernelDeadError(``why``); drop the probes."""
        self._probes.clear()
        for entry in self._matcher.drain():
            fut = self._futures.pop(entry.msg_id, None)
            if fut is not None:
                fail(fut, KernelDeadError(f"{entry.request_type} {entry.msg_id}: {why}"))
        for call in self.release():
            call.fail(why)
        self._futures.clear()

    def __len__(self) -> int:
        """Calls sent and not yet answered (probes included)."""
        return len(self._matcher)


def succeed(fut: concurrent.futures.Future[Any], value: Any) -> None:
    """Complete ``fut`` unless it is already done."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        fut.set_result(value)


def fail(fut: concurrent.futures.Future[Any], exc: BaseException) -> None:
    """Fail ``fut`` unless it is already done."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        fut.set_exception(exc)
