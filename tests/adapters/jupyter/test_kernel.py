"""start_kernel: connection files, the supervised kernel process, restarts and clean stops."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from actorwire.actors import ActorSystem, Backoff
from actorwire.adapters.jupyter.client import KernelClient
from actorwire.adapters.jupyter.connection import (
    ConnectionInfo,
    free_ports,
    new_connection_info,
    write_connection_file,
)
from actorwire.adapters.jupyter.kernel import KernelProcess, find_kernel_spec, start_kernel
from actorwire.adapters.jupyter.replies import msg_type
from actorwire.adapters.jupyter.state import KernelDeadError, KernelState

from tests.support.waiting import wait_until

FAST = {
    "heartbeat_interval": 0.1,
    "heartbeat_deadline": 1.5,
    "restart_backoff": Backoff(min=0.05, max=0.5, factor=2.0, jitter=0.1),
    "startup_timeout": 30.0,
}


class States:
    def __init__(self) -> None:
        self.seen: list[tuple[KernelState, str]] = []
        self.times: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, state: KernelState, message: str) -> None:
        with self.lock:
            self.seen.append((state, message))
            self.times.append(time.monotonic())

    def states(self) -> list[KernelState]:
        with self.lock:
            return [s for s, _ in self.seen]

    def message(self, state: KernelState) -> str:
        with self.lock:
            return [m for s, m in self.seen if s is state][-1]

    def time(self, state: KernelState) -> float:
        """When the client first told of ``state`` (time.monotonic)."""
        with self.lock:
            return next(t for (s, _), t in zip(self.seen, self.times, strict=True) if s is state)


def gone(pid: int) -> bool:
    """True once ``pid`` is no process of ours (reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def started() -> Iterator[list[KernelClient]]:
    """Kernels started by a test; shut down after it whatever happened."""
    made: list[KernelClient] = []
    yield made
    for client in made:
        client.close()


# -- connection info ------------------------------------------------------------------------------


def test_connection_file_round_trip_and_key_hidden(tmp_path: Path) -> None:
    info = new_connection_info(kernel_name="python3")
    assert info.key and info.transport == "tcp" and info.signature_scheme == "hmac-sha256"
    ports = [info.port(c) for c in ("shell", "iopub", "stdin", "control", "hb")]
    assert len(set(ports)) == 5
    path = write_connection_file(info, tmp_path / "kernel.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["key"] == info.key.decode()
    again = ConnectionInfo.from_file(path)
    assert again == info
    assert again.url("shell") == f"tcp://127.0.0.1:{info.shell_port}"
    assert info.key.decode() not in repr(info)
    ipc = ConnectionInfo.from_dict({**info.to_dict(), "transport": "ipc", "ip": "/tmp/k"})
    assert ipc.url("hb") == f"ipc:///tmp/k-{info.hb_port}"


def test_connection_info_errors_name_the_bad_value_but_never_the_key(tmp_path: Path) -> None:
    good = new_connection_info().to_dict()
    with pytest.raises(ValueError, match="shell_port must be a port number"):
        ConnectionInfo.from_dict({**good, "shell_port": 0})
    with pytest.raises(ValueError, match="transport must be one of"):
        ConnectionInfo.from_dict({**good, "transport": "udp"})
    with pytest.raises(ValueError, match="unknown hash function"):
        ConnectionInfo.from_dict({**good, "signature_scheme": "hmac-nope"})
    with pytest.raises(TypeError, match="value hidden") as err:
        ConnectionInfo.from_dict({**good, "key": 12345})
    assert "12345" not in str(err.value)
    with pytest.raises(ValueError, match="unknown channel"):
        new_connection_info().url("nope")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="does not hold a JSON object"):
        ConnectionInfo.from_file(bad)
    assert len(set(free_ports(3))) == 3


def test_kernel_spec_lookup() -> None:
    spec = find_kernel_spec("python3")
    assert spec.argv[0] == sys.executable and "{connection_file}" in spec.argv
    assert spec.interrupt_mode == "signal"
    with pytest.raises(ValueError, match="no kernel named 'no-such-kernel'"):
        find_kernel_spec("no-such-kernel")
    with pytest.raises(ValueError, match="non-empty"):
        find_kernel_spec("")
    with pytest.raises(ValueError, match="connection_file"):
        start_kernel(argv=[sys.executable, "-m", "ipykernel_launcher"])


# -- the supervised process -----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_killed_and_hung_kernels_are_detected_and_restarted(started: list[KernelClient]) -> None:
    states = States()
    kernel = start_kernel(name="victim", state_listener=states, **FAST)
    started.append(kernel)
    process = kernel.kernel
    assert isinstance(process, KernelProcess)
    kernel.execute("x = 41")
    first_pid, first_file = process.pid, process.connection_file
    assert first_pid is not None and first_file is not None and first_file.exists()

    # SIGKILL while a call is pending: it fails at once with a clear error
    running = threading.Event()
    kernel.on_iopub(lambda m: running.set() if msg_type(m) == "execute_input" else None)
    outcome: dict[str, Any] = {}

    def pending() -> None:
        try:
            kernel.execute("import time; time.sleep(30)")
        except KernelDeadError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=pending)
    thread.start()
    assert running.wait(10)
    os.kill(first_pid, signal.SIGKILL)
    thread.join(10)
    assert "exited with signal SIGKILL" in str(outcome["error"])
    assert kernel.wait_for_state(KernelState.ALIVE, timeout=20), kernel.history()
    assert states.states()[-3:] == [KernelState.DEAD, KernelState.RESTARTING, KernelState.ALIVE]
    second_pid = process.pid
    assert second_pid != first_pid and process.launches == 2
    assert process.connection_file != first_file and not first_file.exists()
    assert gone(first_pid)
    result = kernel.execute("'x' in dir()")  # a new kernel: fresh state
    assert result.result == "False"

    # a hung kernel (SIGSTOP) still has its process: only the heartbeat notices
    assert second_pid is not None
    os.kill(second_pid, signal.SIGSTOP)
    assert kernel.wait_for_state(KernelState.DEAD, timeout=10)
    assert "heartbeat" in states.message(KernelState.DEAD)
    assert kernel.wait_for_state(KernelState.ALIVE, timeout=20), kernel.history()
    assert process.launches == 3 and process.pid != second_pid
    wait_until(lambda: gone(second_pid), 10, what="the hung kernel killed")
    assert kernel.execute("2 * 21").result == "42"

    # shutdown: the process goes, and every file with it
    last_pid, runtime_dir = process.pid, process.runtime_dir
    assert last_pid is not None
    kernel.shutdown()
    assert kernel.state is KernelState.CLOSED
    assert gone(last_pid) and not process.is_alive()
    assert not runtime_dir.exists()
    with pytest.raises(KernelDeadError, match="closed"):
        kernel.execute("1")


@pytest.mark.timeout(60)
def test_shutdown_with_restart_then_shutdown(tmp_path: Path, started: list[KernelClient]) -> None:
    states = States()
    kernel = start_kernel(runtime_dir=tmp_path, state_listener=states, **FAST)
    started.append(kernel)
    process = kernel.kernel
    assert isinstance(process, KernelProcess)
    kernel.execute("y = 1")
    old_pid, old_file = process.pid, kernel.connection_file
    assert old_file is not None and Path(old_file).parent == tmp_path
    kernel.shutdown(restart=True)
    assert kernel.state is KernelState.ALIVE
    assert process.pid != old_pid and kernel.connection_file != old_file
    assert not Path(old_file).exists()
    assert KernelState.DEAD not in states.states()  # a requested restart is no death
    assert kernel.execute("'y' in dir()").result == "False"
    assert old_pid is not None and gone(old_pid)

    pid = process.pid
    assert pid is not None
    kernel.shutdown()
    assert gone(pid)
    assert list(tmp_path.iterdir()) == []  # our files removed, the given directory kept
    assert states.states()[-1] is KernelState.CLOSED
    kernel.shutdown()  # idempotent


@pytest.mark.timeout(30)
def test_stopping_the_system_stops_the_kernel() -> None:
    with ActorSystem("jupyter-owner") as system:
        kernel = start_kernel(system=system, startup_timeout=30)
        process = kernel.kernel
        assert isinstance(process, KernelProcess)
        pid, path = process.pid, process.connection_file
        assert pid is not None and path is not None and path.exists()
        assert kernel.execute("1+1").result == "2"
    assert gone(pid)
    assert not path.exists() and not process.runtime_dir.exists()
    assert kernel.state is KernelState.CLOSED


@pytest.mark.timeout(30)
def test_a_kernel_that_keeps_dying_ends_failed() -> None:
    states = States()
    argv = [sys.executable, "-c", "import sys; sys.exit(3)", "{connection_file}"]
    with pytest.raises(KernelDeadError, match="gave up") as err:
        start_kernel(
            "broken",
            argv=argv,
            state_listener=states,
            max_restarts=2,
            restart_backoff=Backoff(min=0.01, max=0.05),
            startup_timeout=20,
        )
    assert "FAILED" in str(err.value)
    assert KernelState.FAILED in states.states()
    assert "exited with code 3" in states.message(KernelState.DEAD)
    assert states.states()[-1] is KernelState.CLOSED


@pytest.mark.timeout(60)
def test_a_kernel_frozen_right_after_start_is_dead_after_the_heartbeat_deadline() -> None:
    # The heartbeat deadline holds from the first moment the kernel answers anything, even
    # before its first heartbeat answer: a kernel frozen as soon as start_kernel() returns
    # is DEAD heartbeat_deadline later (not after the startup allowance, startup_timeout),
    # and the call waiting on it fails with KernelDeadError then.
    deadline = 1.5
    bound = 2 * deadline  # the deadline, and as much again for ticks on a loaded machine
    states = States()
    opts = {**FAST, "heartbeat_deadline": deadline, "startup_timeout": 45.0}
    kernel = start_kernel(state_listener=states, **opts)
    process = kernel.kernel
    assert isinstance(process, KernelProcess) and process.pid is not None
    pid = process.pid
    try:
        os.kill(pid, signal.SIGSTOP)
        frozen = time.monotonic()
        sent = kernel.stats["sent"].get("shell", 0)
        outcome: dict[str, Any] = {}

        def pending() -> None:
            try:
                outcome["result"] = kernel.execute("1 + 1")
            except KernelDeadError as exc:
                outcome["error"] = exc
                outcome["at"] = time.monotonic()

        thread = threading.Thread(target=pending)
        thread.start()
        wait_until(lambda: kernel.stats["sent"].get("shell", 0) > sent, bound, what="sent")
        assert KernelState.DEAD not in states.states()  # the call went to the frozen kernel
        wait_until(lambda: KernelState.DEAD in states.states(), bound, what="DEAD")
        dead_after = states.time(KernelState.DEAD) - frozen
        thread.join(bound)
        assert not thread.is_alive()
        assert isinstance(outcome.get("error"), KernelDeadError), outcome
        assert dead_after < bound and outcome["at"] - frozen < bound
        assert f"no heartbeat answer for {deadline:g}s" in states.message(KernelState.DEAD)
        assert "heartbeat deadline" in str(outcome["error"])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        kernel.close()
    wait_until(lambda: gone(pid), 10, what="the frozen kernel process reaped")


def test_input_in_the_first_code_run_after_start_is_answered() -> None:
    # The kernel drops an input_request for a stdin socket whose handshake is not done:
    # start_kernel returns only once it is, so input() at once is answered, not hung.
    kernel = start_kernel(on_stdin=lambda prompt, password: "Ada", **FAST)
    try:
        assert kernel._wiring.stdin_connected.is_set()
        result = kernel.execute("print(input('name? '))", timeout=20)
        assert result.stdout.strip() == "Ada"
    finally:
        kernel.close()
