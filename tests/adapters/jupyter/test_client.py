"""KernelClient: reply matching and result assembly with plain dicts, a fake kernel whose
sockets the test drives (bad signatures, silence), and a real ipykernel."""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import zmq
from actorwire.actors import ActorSystem
from actorwire.adapters.jupyter import kernel as kernel_module
from actorwire.adapters.jupyter.client import KernelClient
from actorwire.adapters.jupyter.connection import ConnectionInfo
from actorwire.adapters.jupyter.kernel import astart_kernel, start_kernel
from actorwire.adapters.jupyter.replies import (
    ExecutionError,
    ExecutionResult,
    ReplyMatcher,
    msg_type,
)
from actorwire.adapters.jupyter.state import (
    KernelDeadError,
    KernelEvent,
    KernelState,
    next_state,
)
from jupyter_client.session import Session as ReferenceSession

from tests.support.waiting import wait_until

# -- plain dicts ---------------------------------------------------------------------------------


def reply(parent: str, kind: str = "execute_reply", **content: Any) -> dict[str, Any]:
    return {
        "header": {"msg_id": f"r-{parent}", "msg_type": kind},
        "parent_header": {"msg_id": parent},
        "metadata": {},
        "content": content,
    }


def iopub(parent: str, kind: str, **content: Any) -> dict[str, Any]:
    return {
        "header": {"msg_id": f"{kind}-{parent}-{len(content)}", "msg_type": kind},
        "parent_header": {"msg_id": parent},
        "metadata": {},
        "content": content,
    }


def status(parent: str, state: str) -> dict[str, Any]:
    return iopub(parent, "status", execution_state=state)


def test_execute_completes_on_reply_and_idle_in_either_order() -> None:
    m = ReplyMatcher()
    m.track("a", "execute_request", wait_idle=True)
    m.track("b", "execute_request", wait_idle=True)
    assert m.on_iopub(status("a", "busy")) is None
    assert m.on_iopub(iopub("a", "execute_result", data={"text/plain": "2"})) is None
    assert m.on_reply(reply("a", status="ok", execution_count=1)) is None  # idle not yet in
    done = m.on_iopub(status("a", "idle"))
    assert done is not None and done.msg_id == "a"
    # b: idle before the reply
    assert m.on_iopub(status("b", "busy")) is None
    assert m.on_iopub(status("b", "idle")) is None
    done = m.on_reply(reply("b", status="ok", execution_count=2))
    assert done is not None and [msg_type(x) for x in done.iopub] == ["status", "status"]
    assert len(m) == 0


def test_matcher_keeps_concurrent_requests_apart_and_counts_strays() -> None:
    m = ReplyMatcher()
    m.track("x", "complete_request")
    m.track("y", "inspect_request")
    assert m.on_iopub(status("x", "busy")) is None  # recorded, not needed
    assert m.on_iopub(status("unknown", "idle")) is None  # another client's request
    done = m.on_reply(reply("y", "inspect_reply", found=True))
    assert done is not None and done.msg_id == "y" and done.request_type == "inspect_request"
    assert m.on_reply(reply("y", "inspect_reply")) is None  # a second reply: stray
    assert m.on_reply(reply("nope")) is None
    assert m.unmatched == 2
    assert "x" in m and m.forget("x") and not m.forget("x")
    with pytest.raises(ValueError, match="already pending"):
        m.track("z", "x")
        m.track("z", "x")


def test_drain_hands_back_every_pending_request() -> None:
    m = ReplyMatcher()
    m.track("a", "execute_request", wait_idle=True)
    m.track("b", "kernel_info_request")
    assert sorted(e.msg_id for e in m.drain()) == ["a", "b"]
    assert len(m) == 0 and m.on_reply(reply("a")) is None


def test_execution_result_accessors() -> None:
    m = ReplyMatcher()
    m.track("e", "execute_request", wait_idle=True)
    for msg in [
        status("e", "busy"),
        iopub("e", "execute_input", code="print(1)"),
        iopub("e", "stream", name="stdout", text="a\n"),
        iopub("e", "display_data", data={"text/plain": "<figure>"}, metadata={}),
        iopub("e", "stream", name="stderr", text="warn\n"),
        iopub("e", "stream", name="stdout", text="b\n"),
        iopub("e", "error", ename="ValueError", evalue="bad", traceback=["tb1", "tb2"]),
    ]:
        assert m.on_iopub(msg) is None
    m.on_reply(reply("e", status="error", execution_count=7, ename="ValueError"))
    done = m.on_iopub(status("e", "idle"))
    assert done is not None
    result = ExecutionResult.from_completed(done)
    assert result.status == "error" and not result.ok and result.execution_count == 7
    assert result.stdout == "a\nb\n" and result.stderr == "warn\n"
    assert result.displays == [{"text/plain": "<figure>"}]
    assert result.result is None and result.data is None
    assert [msg_type(x) for x in result.outputs] == [
        "stream",
        "display_data",
        "stream",
        "stream",
        "error",
    ]
    assert result.msg_types[0] == "status" and result.msg_types[-1] == "status"
    error = result.error
    assert isinstance(error, ExecutionError)
    assert (error.ename, error.evalue, error.traceback) == ("ValueError", "bad", ["tb1", "tb2"])
    with pytest.raises(ExecutionError, match="ValueError: bad"):
        result.raise_for_error()
    assert "error=ValueError" in repr(result)


def test_execution_result_value_and_error_from_reply_only() -> None:
    ok = ExecutionResult(
        "m",
        reply("m", status="ok", execution_count=3),
        [iopub("m", "execute_result", data={"text/plain": "2", "text/html": "<b>2</b>"})],
    )
    assert ok.result == "2" and ok.data == {"text/plain": "2", "text/html": "<b>2</b>"}
    assert ok.error is None and ok.raise_for_error() is ok
    # silent executions publish no error on iopub: the reply still carries it
    failed = ExecutionResult(
        "n", reply("n", status="error", ename="KeyError", evalue="'k'", traceback=["t"]), []
    )
    assert failed.error is not None and failed.error.ename == "KeyError"
    aborted = ExecutionResult("o", reply("o", status="aborted"), [])
    assert aborted.status == "aborted" and aborted.error is None


def test_state_table() -> None:
    S, E = KernelState, KernelEvent
    assert next_state(S.STARTING, E.READY) is S.ALIVE
    assert next_state(S.ALIVE, E.LOST) is S.DEAD
    assert next_state(S.DEAD, E.LAUNCHED) is S.RESTARTING
    assert next_state(S.DEAD, E.RECOVERED) is S.RESTARTING
    assert next_state(S.RESTARTING, E.READY) is S.ALIVE
    assert next_state(S.ALIVE, E.GAVE_UP) is S.FAILED
    assert next_state(S.FAILED, E.CLOSE) is S.CLOSED
    # events that change nothing
    assert next_state(S.DEAD, E.LOST) is None
    assert next_state(S.CLOSED, E.LAUNCHED) is None
    assert next_state(S.CLOSED, E.CLOSE) is None
    assert next_state(S.FAILED, E.READY) is None


# -- a fake kernel: the test owns every socket --------------------------------------------------


class FakeKernel:
    """A kernel's five sockets on 127.0.0.1, served by a thread, signing with the reference
    jupyter_client Session. It answers kernel_info (status busy/idle on iopub around it,
    while ``publishing`` is set) while ``answering`` is set and echoes heartbeats while
    ``beating`` is set."""

    key = b"fake-kernel-signing-key"

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.session = ReferenceSession(key=self.key, signature_scheme="hmac-sha256")
        kinds = {
            "shell": zmq.ROUTER,
            "control": zmq.ROUTER,
            "stdin": zmq.ROUTER,
            "iopub": zmq.PUB,
            "hb": zmq.REP,
        }
        self.sockets = {name: self.ctx.socket(kind) for name, kind in kinds.items()}
        self.ports = {
            name: s.bind_to_random_port("tcp://127.0.0.1") for name, s in self.sockets.items()
        }
        self.answering = threading.Event()
        self.answering.set()
        self.beating = threading.Event()
        self.beating.set()
        self.publishing = threading.Event()
        self.publishing.set()
        self.bad_replies = False
        self.requests: list[str] = []
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-kernel", daemon=True)
        self._thread.start()

    def info(self) -> dict[str, Any]:
        return {
            **{f"{name}_port": port for name, port in self.ports.items()},
            "ip": "127.0.0.1",
            "transport": "tcp",
            "signature_scheme": "hmac-sha256",
            "key": self.key.decode(),
        }

    def on_thread(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the kernel's thread (zmq sockets are not thread-safe)."""
        self._jobs.put(job)

    def publish(self, frames: list[bytes]) -> None:
        self.on_thread(lambda: self.sockets["iopub"].send_multipart(frames))

    def _run(self) -> None:
        shell, hb = self.sockets["shell"], self.sockets["hb"]
        poller = zmq.Poller()
        poller.register(shell, zmq.POLLIN)
        polling_hb = False
        while not self._stop.is_set():
            if self.beating.is_set() != polling_hb:
                polling_hb = not polling_hb
                if polling_hb:
                    poller.register(hb, zmq.POLLIN)
                else:
                    poller.unregister(hb)
            events = dict(poller.poll(10))
            while not self._jobs.empty():
                self._jobs.get()()
            if hb in events and self.beating.is_set():
                hb.send(hb.recv())
            if shell in events and self.answering.is_set():
                idents, msg = self.session.recv(shell, mode=0)
                assert msg is not None
                self.requests.append(msg["header"]["msg_type"])
                self._answer(shell, idents, msg)

    def _answer(self, shell: zmq.Socket[Any], idents: list[bytes], msg: dict[str, Any]) -> None:
        iopub = self.sockets["iopub"]
        topic = b"kernel.fake.status"
        publishing = self.publishing.is_set()
        if publishing:
            busy = {"execution_state": "busy"}
            self.session.send(iopub, "status", busy, parent=msg, ident=topic)
        kind = msg["header"]["msg_type"].replace("_request", "_reply")
        signer = ReferenceSession(key=b"not-the-key") if self.bad_replies else self.session
        signer.send(shell, kind, {"status": "ok", "fake": True}, parent=msg, ident=idents)
        if publishing:
            idle = {"execution_state": "idle"}
            self.session.send(iopub, "status", idle, parent=msg, ident=topic)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for s in self.sockets.values():
            s.close(linger=0)
        self.ctx.term()


@pytest.fixture
def fake() -> Iterator[FakeKernel]:
    kernel = FakeKernel()
    try:
        yield kernel
    finally:
        kernel.close()


def events(log: io.StringIO, event: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]
    return [r for r in rows if r.get("event") == event]


class States:
    """A state listener that records every (state, message)."""

    def __init__(self) -> None:
        self.seen: list[tuple[KernelState, str]] = []
        self.lock = threading.Lock()

    def __call__(self, state: KernelState, message: str) -> None:
        with self.lock:
            self.seen.append((state, message))

    def states(self) -> list[KernelState]:
        with self.lock:
            return [s for s, _ in self.seen]


@pytest.fixture
def clients() -> Iterator[list[KernelClient]]:
    """Clients made by a test, closed after it."""
    made: list[KernelClient] = []
    yield made
    for client in made:
        client.close()


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``fn`` on a thread; the dict gets its ``result`` or ``error``."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_bad_signatures_and_malformed_messages_are_counted_and_logged(
    fake: FakeKernel, json_log: io.StringIO, clients: list[KernelClient]
) -> None:
    client = KernelClient(connection_info=fake.info(), heartbeat_interval=0.1)
    clients.append(client)
    client.wait_for_ready(10)
    seen: list[dict[str, Any]] = []
    client.on_iopub(seen.append)

    topic = b"kernel.fake.stream"
    good1 = fake.session.serialize(
        fake.session.msg("stream", {"name": "stdout", "text": "one"}), ident=topic
    )
    good2 = fake.session.serialize(
        fake.session.msg("stream", {"name": "stdout", "text": "two"}), ident=topic
    )
    forged = ReferenceSession(key=b"wrong-key").serialize(
        ReferenceSession().msg("stream", {"name": "stdout", "text": "forged"}), ident=topic
    )
    tampered = list(good1)
    tampered[-1] = b'{"name": "stdout", "text": "altered"}'
    for frames in (forged, [topic, b"no delimiter"], tampered, good1, good1, good2):
        fake.publish(frames)  # good1 twice: the second is a replay

    wait_until(lambda: any(m["content"].get("text") == "two" for m in seen), 5, what="two")
    texts = [m["content"]["text"] for m in seen if msg_type(m) == "stream"]
    assert texts == ["one", "two"]
    assert client.rejected == 4
    assert client.stats["rejected_by_channel"] == {"iopub": 4}
    rejected = events(json_log, "message rejected")
    assert len(rejected) == 4 and {r["channel"] for r in rejected} == {"iopub"}
    assert {r["peer"] for r in rejected} == {f"tcp://127.0.0.1:{fake.ports['iopub']}"}
    reasons = " ".join(r["reason"] for r in rejected)
    assert "SignatureError" in reasons and "ReplayError" in reasons

    # a badly signed reply on shell is rejected too; the caller times out, never hangs
    fake.bad_replies = True
    with pytest.raises(TimeoutError, match="kernel_info_request"):
        client.kernel_info(timeout=0.5)
    fake.bad_replies = False
    assert client.stats["rejected_by_channel"]["shell"] == 1
    # and the client keeps working
    assert client.kernel_info()["content"]["fake"] is True
    assert client.state is KernelState.ALIVE
    # the key never shows
    key = FakeKernel.key.decode()
    assert key not in json_log.getvalue()
    assert key not in repr(client) + repr(client.session) + repr(client.connection_info)


def test_requests_wait_for_a_starting_kernel(fake: FakeKernel, clients: list[KernelClient]) -> None:
    fake.answering.clear()
    client = KernelClient(connection_info=fake.info(), heartbeat_interval=0.1)
    clients.append(client)
    thread, out = in_thread(lambda: client.kernel_info(timeout=10))
    assert client.state is KernelState.STARTING
    fake.answering.set()
    asyncio.run(client.await_for_ready(10))
    assert client.state is KernelState.ALIVE
    thread.join(10)
    assert out["result"]["content"]["fake"] is True


def test_heartbeat_loss_fails_pending_calls_and_recovers(
    fake: FakeKernel, clients: list[KernelClient]
) -> None:
    states = States()
    client = KernelClient(
        connection_info=fake.info(),
        heartbeat_interval=0.05,
        heartbeat_deadline=0.5,
        state_listener=states,
    )
    clients.append(client)
    client.wait_for_ready(10)
    fake.answering.clear()  # the next request gets no reply
    sent = client.stats["sent"]["shell"]
    thread, out = in_thread(lambda: client.kernel_info(timeout=30))
    wait_until(lambda: client.stats["sent"]["shell"] > sent, 5, what="the request sent")
    fake.beating.clear()
    thread.join(10)
    assert isinstance(out.get("error"), KernelDeadError), out
    assert "heartbeat" in str(out["error"])
    assert client.state is KernelState.DEAD
    assert states.states()[-1] is KernelState.DEAD
    started = time.monotonic()
    with pytest.raises(KernelDeadError, match="DEAD"):
        client.execute("1+1", timeout=30)
    # At once, not at the timeout: a KernelDeadError long before the 30 s (a loaded CI
    # machine can take a second to get there).
    assert time.monotonic() - started < 15

    fake.answering.set()
    fake.beating.set()
    assert client.wait_for_state(KernelState.ALIVE, timeout=10)
    assert states.states()[-3:] == [KernelState.DEAD, KernelState.RESTARTING, KernelState.ALIVE]
    assert client.kernel_info()["content"]["status"] == "ok"


def test_the_heartbeat_deadline_holds_from_the_kernels_first_reply(
    fake: FakeKernel, clients: list[KernelClient]
) -> None:
    # The kernel answers kernel_info, but nothing reaches iopub (so it never becomes ALIVE)
    # and it never answers a heartbeat. Its first reply starts the heartbeat deadline: it is
    # DEAD heartbeat_deadline later, not at the startup timeout, and the call held for it
    # fails then.
    fake.beating.clear()
    fake.publishing.clear()
    states = States()
    deadline = 0.5
    bound = 5 * deadline  # the deadline, the first reply's round trip and a loaded machine
    started = time.monotonic()
    client = KernelClient(
        connection_info=fake.info(),
        heartbeat_interval=0.05,
        heartbeat_deadline=deadline,
        startup_timeout=30.0,
        state_listener=states,
    )
    clients.append(client)
    thread, out = in_thread(lambda: client.kernel_info(timeout=30))  # held: not ready
    thread.join(bound)
    took = time.monotonic() - started
    assert isinstance(out.get("error"), KernelDeadError), (out, client.history())
    assert took < bound
    assert "no heartbeat answer for 0.5s (heartbeat deadline)" in str(out["error"])
    assert states.states() == [KernelState.DEAD]
    assert "kernel_info_request" in fake.requests


def test_constructor_arguments_are_checked(tmp_path: Any) -> None:
    with pytest.raises(TypeError, match="exactly one"):
        KernelClient()
    with pytest.raises(TypeError, match="exactly one"):
        KernelClient(connection_file="x.json", connection_info={})
    with pytest.raises(FileNotFoundError, match="cannot read connection file"):
        KernelClient(connection_file=tmp_path / "missing.json")
    with pytest.raises(ValueError, match="missing shell_port"):
        KernelClient(connection_info={"key": "k"})
    info = {f"{c}_port": 1000 + i for i, c in enumerate(("shell", "iopub", "stdin", "control"))}
    with pytest.raises(ValueError, match="hb_port"):
        KernelClient(connection_info=info)
    info["hb_port"] = 1004
    with pytest.raises(ValueError, match="timeout must be"):
        KernelClient(connection_info=info, timeout=0)
    with pytest.raises(ValueError, match="deadline must be > interval"):
        KernelClient(connection_info=info, heartbeat_interval=1.0, heartbeat_deadline=0.5)
    with pytest.raises(TypeError, match="on_stdin must be callable"):
        KernelClient(connection_info=info, on_stdin="yes")  # type: ignore[arg-type]


def test_shared_system_is_left_running(fake: FakeKernel) -> None:
    with ActorSystem("jupyter-shared") as system:
        client = KernelClient(connection_info=fake.info(), system=system, heartbeat_interval=0.1)
        client.wait_for_ready(10)
        client.close()
        assert not system.is_shut_down
        assert [a for a in system.actors() if a.name.startswith("jupyter.")] == []
        with pytest.raises(KernelDeadError, match="closed"):
            client.kernel_info()


# -- a real ipykernel ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kernel() -> Iterator[KernelClient]:
    client = start_kernel(name="shared", startup_timeout=30)
    try:
        yield client
    finally:
        client.shutdown()


def test_one_plus_one(kernel: KernelClient) -> None:
    result = kernel.execute("1+1")
    assert result.result == "2"
    assert result.status == "ok" and isinstance(result.execution_count, int)
    assert result.msg_types == ["status", "execute_input", "execute_result", "status"]
    assert [m["content"].get("execution_state") for m in result.iopub[::3]] == ["busy", "idle"]


def test_printed_output_and_display_data(kernel: KernelClient) -> None:
    code = "print('hello'); import sys; print('oops', file=sys.stderr); display('shown'); 6*7"
    result = kernel.execute(code)
    assert result.stdout == "hello\n" and result.stderr == "oops\n"
    assert result.displays == [{"text/plain": "'shown'"}]
    assert result.result == "42"
    assert [msg_type(m) for m in result.outputs][-1] == "execute_result"


def test_exception_with_traceback(kernel: KernelClient) -> None:
    result = kernel.execute("def f():\n    return 1/0\nf()")
    assert result.status == "error"
    error = result.error
    assert error is not None and error.ename == "ZeroDivisionError"
    assert error.evalue == "division by zero"
    assert any("f()" in line for line in error.traceback)
    with pytest.raises(ExecutionError, match="ZeroDivisionError"):
        result.raise_for_error()


def test_input_reaches_on_stdin(kernel: KernelClient) -> None:
    asked: list[tuple[str, bool]] = []

    def answer(prompt: str, password: bool) -> str:
        asked.append((prompt, password))
        return "secret" if password else "Ada"

    kernel.on_stdin = answer
    try:
        result = kernel.execute(
            "import getpass\nname = input('name? ')\npw = getpass.getpass('pw: ')\n"
            "print(name, len(pw))"
        )
    finally:
        kernel.on_stdin = None
    assert result.stdout.endswith("Ada 6\n")
    assert asked == [("name? ", False), ("pw: ", True)]


def test_connection_file_client_without_stdin_handler_answers_empty(
    kernel: KernelClient, json_log: io.StringIO, clients: list[KernelClient]
) -> None:
    assert kernel.kernel is not None and kernel.kernel.connection_file is not None
    other = KernelClient(connection_file=kernel.kernel.connection_file)
    clients.append(other)
    assert other.connection_file == str(kernel.kernel.connection_file)
    other.wait_for_ready(10)
    result = other.execute("answer = input('? '); print(repr(answer))")
    assert result.stdout.endswith("''\n")
    assert other.stats["stdin_unanswered"] == 1
    logged = [
        json.loads(line)
        for line in json_log.getvalue().splitlines()
        if "no on_stdin handler" in line
    ]
    assert len(logged) == 1 and logged[0]["level"] == "warning" and logged[0]["prompt"] == "? "
    other.close()  # closing a connected client leaves the kernel running
    assert kernel.execute("answer").result == "''"


def test_connection_info_client_and_three_concurrent_executes(
    kernel: KernelClient, clients: list[KernelClient]
) -> None:
    assert kernel.connection_info is not None
    other = KernelClient(connection_info=kernel.connection_info.to_dict())
    clients.append(other)
    threads = []
    for i in range(3):
        client = kernel if i % 2 == 0 else other
        code = f"import time; time.sleep(0.05); print('run {i}'); {i} * 11"
        threads.append(in_thread(lambda c=client, code=code: c.execute(code, timeout=30)))
    for thread, _ in threads:
        thread.join(30)
    for i, (_, out) in enumerate(threads):
        result = out["result"]
        assert result.stdout == f"run {i}\n" and result.result == str(i * 11)
    counts = [out["result"].execution_count for _, out in threads]
    assert len(set(counts)) == 3


def test_kernel_info_complete_inspect_is_complete(kernel: KernelClient) -> None:
    info = kernel.kernel_info()
    assert msg_type(info) == "kernel_info_reply"
    assert info["content"]["language_info"]["name"] == "python"
    kernel.execute("zebra_count = 3", store_history=False)
    matches = kernel.complete("zebra_c")["content"]["matches"]
    assert "zebra_count" in matches
    assert kernel.complete("print(zebra_c", 13)["content"]["cursor_end"] == 13
    found = kernel.inspect("len", detail_level=0)["content"]
    assert found["found"] and "text/plain" in found["data"]
    assert kernel.is_complete("for i in range(3):")["content"]["status"] == "incomplete"
    assert kernel.is_complete("x = 1")["content"]["status"] == "complete"
    with pytest.raises(ValueError, match="cursor_pos"):
        kernel.complete("abc", 9)
    with pytest.raises(TypeError, match="code must be a str"):
        kernel.execute(b"1+1")  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["signal", "control message", "awaited control message"])
def test_interrupt_a_running_sleep(
    kernel: KernelClient, clients: list[KernelClient], how: str
) -> None:
    client = kernel
    if how != "signal":  # a client that does not own the process asks the kernel
        assert kernel.connection_info is not None
        client = KernelClient(connection_info=kernel.connection_info)
        clients.append(client)
        assert client.kernel is None
    running = threading.Event()

    def watch(msg: dict[str, Any]) -> None:
        # Printed by the code itself: the interrupt lands inside the user's code.
        if msg_type(msg) == "stream" and "sleeping" in msg["content"]["text"]:
            running.set()

    client.on_iopub(watch)
    started = time.monotonic()
    code = "import time; print('sleeping', flush=True); time.sleep(30)"
    thread, out = in_thread(lambda: client.execute(code))
    assert running.wait(10)
    if how == "awaited control message":
        asyncio.run(client.ainterrupt())
    else:
        client.interrupt()
    thread.join(10)
    client.on_iopub(watch, remove=True)
    result = out["result"]
    assert result.status == "error" and result.error.ename == "KeyboardInterrupt"
    assert time.monotonic() - started < 10
    assert client.execute("1+1").result == "2"


def test_execute_timeout_leaves_the_kernel_usable(kernel: KernelClient) -> None:
    with pytest.raises(TimeoutError, match="execute_request"):
        kernel.execute("import time; time.sleep(0.5)", timeout=0.05)
    assert kernel.execute("'after'").result == "'after'"


def test_awaitable_twins(kernel: KernelClient) -> None:
    async def main() -> list[Any]:
        results = await asyncio.gather(*(kernel.aexecute(f"{i} + 100") for i in range(3)))
        info = await kernel.akernel_info()
        completion = await kernel.acomplete("imp")
        inspection = await kernel.ainspect("len")
        complete = await kernel.ais_complete("x = (")
        with pytest.raises(TimeoutError):
            await kernel.aexecute("import time; time.sleep(0.5)", timeout=0.05)
        return [results, info, completion, inspection, complete]

    results, info, completion, inspection, complete = asyncio.run(main())
    assert [r.result for r in results] == ["100", "101", "102"]
    assert info["content"]["status"] == "ok"
    assert "import" in completion["content"]["matches"]
    assert inspection["content"]["found"]
    assert complete["content"]["status"] == "incomplete"


TWINS = {
    "akernel_info": "kernel_info",
    "aexecute": "execute",
    "acomplete": "complete",
    "ainspect": "inspect",
    "ais_complete": "is_complete",
    "ainterrupt": "interrupt",
    "ashutdown": "shutdown",
    "aclose": "close",
    "await_for_ready": "wait_for_ready",
}


def test_every_awaitable_twin_has_its_blocking_calls_signature() -> None:
    names = set(dir(KernelClient))
    found = {n for n in names if n.startswith("a") and n[1:] in names and not n.startswith("__")}
    assert found == set(TWINS)
    for awaitable, blocking in TWINS.items():
        twin, call = getattr(KernelClient, awaitable), getattr(KernelClient, blocking)
        assert inspect.iscoroutinefunction(twin), awaitable
        assert inspect.signature(twin) == inspect.signature(call), awaitable
    assert inspect.iscoroutinefunction(astart_kernel)
    assert inspect.signature(astart_kernel) == inspect.signature(start_kernel)


def test_astart_kernel_hands_every_argument_to_start_kernel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}

    async def off_loop(kernel_name: str, **options: Any) -> Any:
        seen.update(kernel_name=kernel_name, **options)
        return "the client"

    monkeypatch.setattr(kernel_module, "_start_kernel_off_loop", off_loop)
    values = {name: object() for name in inspect.signature(start_kernel).parameters}
    assert asyncio.run(astart_kernel(**values)) == "the client"
    assert seen == values


def test_iopub_feed_sees_every_message_in_order(kernel: KernelClient) -> None:
    seen: list[dict[str, Any]] = []
    kernel.on_iopub(seen.append)
    try:
        result = kernel.execute("print('fed')")
        wait_until(
            lambda: any(
                msg_type(m) == "status"
                and m["parent_header"].get("msg_id") == result.msg_id
                and m["content"]["execution_state"] == "idle"
                for m in seen
            ),
            5,
        )
    finally:
        kernel.on_iopub(seen.append, remove=True)
    mine = [msg_type(m) for m in seen if m["parent_header"].get("msg_id") == result.msg_id]
    assert mine == result.msg_types == ["status", "execute_input", "stream", "status"]


def test_repr_and_stats_hide_the_key(kernel: KernelClient) -> None:
    info = kernel.connection_info
    assert isinstance(info, ConnectionInfo)
    key = info.key.decode()
    text = repr(kernel) + repr(kernel.session) + repr(info) + repr(kernel.kernel)
    text += json.dumps(kernel.stats) + str(kernel.history())
    assert key not in text
    assert kernel.stats["rejected"] == 0
    assert kernel.stats["received"]["iopub"] > 0


FORGE_ON_IOPUB = r"""
import json
hdr = {"msg_id": "forged-1", "msg_type": "stream", "username": "x", "session": "s",
       "date": "2026-01-01T00:00:00Z", "version": "5.3"}
get_ipython().kernel.iopub_socket.send_multipart([
    b"kernel.forged.stream", b"<IDS|MSG>", b"0" * 64, json.dumps(hdr).encode(),
    b"{}", b"{}", json.dumps({"name": "stdout", "text": "forged"}).encode(),
])
"""


def test_a_forged_message_from_the_real_kernel_is_rejected_and_counted(
    kernel: KernelClient,
) -> None:
    # The kernel's own iopub socket carries a message with a wrong signature: the client
    # drops it (never delivers "forged"), counts it on the iopub channel, and goes on.
    seen: list[str] = []
    watch = kernel.on_iopub(lambda msg: seen.append(msg["header"]["msg_id"]))
    try:
        before = kernel.stats["rejected_by_channel"].get("iopub", 0)
        result = kernel.execute(FORGE_ON_IOPUB)
        assert result.status == "ok"
        wait_until(lambda: kernel.stats["rejected_by_channel"].get("iopub", 0) == before + 1)
        assert "forged-1" not in seen
        assert kernel.execute("40 + 2").result == "42"
    finally:
        kernel.on_iopub(watch, remove=True)
