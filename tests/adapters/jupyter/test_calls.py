"""The calls in flight, sans-I/O: held, sent, answered, forgotten and failed with plain dicts."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, cast

import pytest
from actorwire.actors import Address
from actorwire.adapters.jupyter.calls import Call, Forget, Pending, PendingCalls
from actorwire.adapters.jupyter.replies import ExecutionResult
from actorwire.adapters.jupyter.state import KernelDeadError


def request(msg_id: str, kind: str = "kernel_info_request") -> dict[str, Any]:
    return {"header": {"msg_id": msg_id, "msg_type": kind}, "parent_header": {}, "content": {}}


def answer(parent: str, kind: str, **content: Any) -> dict[str, Any]:
    return {
        "header": {"msg_id": f"r-{parent}-{kind}", "msg_type": kind},
        "parent_header": {"msg_id": parent},
        "content": content,
    }


def call(msg_id: str, kind: str = "kernel_info_request", wait_idle: bool = False) -> Call:
    fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
    fut.set_running_or_notify_cancel()
    return Call("shell", request(msg_id, kind), fut, wait_idle)


def test_held_calls_come_back_in_order_up_to_the_limit() -> None:
    calls = PendingCalls(hold_limit=2)
    a, b, c = call("a"), call("b"), call("c")
    assert calls.hold(a) and calls.hold(b)
    assert not calls.hold(c)  # the limit: the caller fails it at once
    assert calls.held() == 2
    assert calls.release() == [a, b]
    assert calls.held() == 0 and calls.release() == []


def test_replies_answer_their_callers_and_probes_answer_none() -> None:
    calls = PendingCalls()
    info, run = call("i"), call("x", "execute_request", wait_idle=True)
    calls.sent(info)
    calls.sent(run)
    calls.probe("p")
    assert len(calls) == 3
    (done,) = calls.on_replies([answer("p", "kernel_info_reply")])
    assert calls.settle(done) is True  # a probe: nobody waits for it
    (done,) = calls.on_replies([answer("i", "kernel_info_reply", status="ok")])
    assert calls.settle(done) is False
    assert info.future.result(0)["content"] == {"status": "ok"}
    # an execute completes on its reply and its iopub idle, in either order
    assert calls.on_iopub([answer("x", "status", execution_state="busy")]) == []
    assert calls.on_replies([answer("x", "execute_reply", status="ok")]) == []
    (done,) = calls.on_iopub([answer("x", "status", execution_state="idle")])
    calls.settle(done)
    result = run.future.result(0)
    assert isinstance(result, ExecutionResult) and result.ok
    assert len(calls) == 0


def test_a_forgotten_call_is_answered_by_nothing() -> None:
    calls = PendingCalls()
    sent, held = call("s"), call("h")
    calls.sent(sent)
    calls.hold(held)
    calls.forget("s")
    calls.forget("h")
    assert calls.on_replies([answer("s", "kernel_info_reply")]) == []
    assert calls.release() == []
    assert not sent.future.done() and not held.future.done()


def test_fail_all_fails_every_call_sent_or_held_and_drops_the_probes() -> None:
    calls = PendingCalls()
    sent, held = call("s", "complete_request"), call("h", "execute_request")
    calls.sent(sent)
    calls.hold(held)
    calls.probe("p")
    calls.fail_all("the kernel died: no heartbeat answer")
    with pytest.raises(KernelDeadError, match="complete_request s: the kernel died"):
        sent.future.result(0)
    with pytest.raises(KernelDeadError, match="execute_request h: the kernel died"):
        held.future.result(0)
    assert len(calls) == 0 and calls.held() == 0
    assert calls.on_replies([answer("p", "kernel_info_reply")]) == []


class Told:
    """Stands in for the lifecycle actor's address: records what it is told."""

    def __init__(self) -> None:
        self.told: list[Any] = []

    def tell(self, message: Any) -> None:
        self.told.append(message)


def test_a_caller_that_gives_up_has_the_call_forgotten() -> None:
    lifecycle = Told()
    fut: concurrent.futures.Future[int] = concurrent.futures.Future()
    fut.set_running_or_notify_cancel()
    pending = Pending("m1", fut, "inspect_request", 0.01, "k", cast(Address, lifecycle))
    with pytest.raises(TimeoutError, match="no reply to inspect_request m1 from kernel 'k'"):
        pending.wait()
    with pytest.raises(TimeoutError, match="inspect_request m1"):
        asyncio.run(pending.wait_async())

    async def cancelled() -> None:
        task = asyncio.ensure_future(
            Pending("m2", fut, "x", None, "k", cast(Address, lifecycle)).wait_async()
        )
        await asyncio.sleep(0)  # let the task start waiting: not a wait for a condition
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert lifecycle.told == [Forget("m1"), Forget("m1"), Forget("m2")]
    fut.set_result(7)  # still completable: the caller's cancellation did not cancel it
    assert Pending("m3", fut, "x", 1.0, "k", cast(Address, lifecycle)).wait() == 7
