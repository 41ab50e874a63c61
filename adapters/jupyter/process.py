"""The OS process of a kernel a client owns: launched, watched, signalled, restarted and
reaped by a supervised actor, and its files (connection file, stderr) removed.

The process is the only child of a Supervisor: when it exits unasked, the process actor
fails and is restarted with backoff, launching a new process on fresh ports; the client's
lifecycle actor is told of each launch and exit. An exit hook and ipykernel's parent poller
(``JPY_PARENT_PID``) cover an interpreter that exits without stopping it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from ...actors import (
    Actor,
    ActorSystem,
    Address,
    Backoff,
    ChildSpec,
    ExpectedFailure,
    Restart,
    Supervisor,
)
from ...actors.errors import ActorwireError
from .connection import ConnectionInfo, new_connection_info, write_connection_file
from .lifecycle import KernelExited, KernelLaunched

if TYPE_CHECKING:
    from .kernel import KernelSpec

__all__ = ["KernelProcess", "KernelProcessExited"]

log = structlog.get_logger("actorwire.jupyter.kernel")

TERMINATE_WAIT = 2.0
"""Seconds between SIGTERM and SIGKILL when a kernel will not exit."""
STDERR_TAIL = 2000
"""Bytes of a dead kernel's stderr kept for the log."""

_LIVE: weakref.WeakSet[KernelProcess] = weakref.WeakSet()


class KernelProcessExited(ExpectedFailure, ActorwireError, RuntimeError):
    """The kernel process exited without being asked to: its supervisor restarts it."""


# -- messages to the process actor ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Exited:
    launch: int
    code: int


@dataclass(frozen=True, slots=True)
class _Kill:
    launch: int
    reason: str


@dataclass(frozen=True, slots=True)
class _RestartNow:
    pass


class KernelProcess:
    """The OS process of a kernel that a client owns, and its files.

    Shared by the supervised process actor's incarnations (they launch and reap it) and
    the client (signals, restart and stop requests). ``pid``, ``connection_file``,
    ``launches`` and ``is_alive()`` describe the current process.
    """

    def __init__(
        self,
        spec: KernelSpec,
        *,
        key: bytes,
        ip: str,
        runtime_dir: str | os.PathLike[str] | None,
        cwd: str | os.PathLike[str] | None,
        env: Mapping[str, str] | None,
        stop_timeout: float,
    ) -> None:
        self.spec = spec
        self._key = key
        self.ip = ip
        self.cwd = None if cwd is None else os.fspath(cwd)
        self.extra_env = dict(env or {})
        self.stop_timeout = stop_timeout
        self._own_dir = runtime_dir is None
        self.runtime_dir = Path(
            tempfile.mkdtemp(prefix="actorwire-kernel-") if runtime_dir is None else runtime_dir
        )
        self._lock = threading.RLock()
        self._popen: subprocess.Popen[bytes] | None = None
        self._waiter: threading.Thread | None = None
        self._info: ConnectionInfo | None = None
        self._file: Path | None = None
        self._stderr: Path | None = None
        self._launch = 0
        self._expecting = False
        self._supervisor: Address | None = None
        self._actor: Address | None = None
        self._log = log.bind(kernel=spec.name)
        _LIVE.add(self)

    def __repr__(self) -> str:
        return (
            f"<KernelProcess {self.spec.name!r} pid={self.pid} launch={self._launch} "
            f"{'alive' if self.is_alive() else 'not running'}>"
        )

    # -- what the client reads ----------------------------------------------------------

    @property
    def pid(self) -> int | None:
        popen = self._popen
        return None if popen is None else popen.pid

    @property
    def connection_file(self) -> Path | None:
        return self._file

    @property
    def connection_info(self) -> ConnectionInfo | None:
        return self._info

    @property
    def launches(self) -> int:
        """Processes started so far (1 + restarts)."""
        return self._launch

    @property
    def interrupt_mode(self) -> str:
        return self.spec.interrupt_mode

    @property
    def supervisor(self) -> Address | None:
        return self._supervisor

    def is_alive(self) -> bool:
        popen = self._popen
        return popen is not None and popen.poll() is None

    # -- the client's requests (any thread) ---------------------------------------------------

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the kernel's process group (the kernel and its children)."""
        popen = self._popen
        if popen is None or popen.poll() is not None:
            raise ProcessLookupError(f"kernel {self.spec.name!r} has no running process")
        try:
            if hasattr(os, "killpg") and os.getpgid(popen.pid) == popen.pid:
                os.killpg(popen.pid, signum)
            else:
                os.kill(popen.pid, signum)
        except ProcessLookupError:
            pass  # it exited meanwhile; the supervisor hears of that

    def expect_exit(self) -> None:
        """The next exit is requested (shutdown or restart): not a failure."""
        self._expecting = True

    def kill(self, launch: int, reason: str) -> None:
        """Kill the process of ``launch`` (the kernel stopped answering); it is restarted."""
        actor = self._actor
        if actor is not None and actor.is_alive():
            actor.tell(_Kill(launch, reason))

    def restart(self, timeout: float) -> None:
        """Stop the current process and start a new one on fresh ports."""
        actor = self._actor
        if actor is None:
            raise RuntimeError("the kernel process is not supervised")
        actor.ask(_RestartNow(), timeout=timeout + self.stop_timeout + TERMINATE_WAIT)

    def stop(self, timeout: float) -> None:
        """Stop the supervisor and with it the process; remove every file. Idempotent."""
        supervisor = self._supervisor
        if supervisor is not None and supervisor.is_alive():
            supervisor.stop(timeout=timeout + self.stop_timeout + TERMINATE_WAIT + 1.0)
        self.reap(0.0)
        self.remove_runtime_dir()
        _LIVE.discard(self)

    # -- supervision -----------------------------------------------------------------------

    def supervise(
        self,
        system: ActorSystem,
        lifecycle: Address,
        name: str,
        *,
        max_restarts: int,
        within: float,
        backoff: Backoff,
    ) -> None:
        """Start the supervisor and the first process; the client is told of each launch."""

        def factory() -> Actor:
            return _ProcessActor(self, lifecycle)

        spec = ChildSpec(
            f"{name}.process",
            factory,
            Restart.PERMANENT,
            shutdown_timeout=self.stop_timeout + TERMINATE_WAIT + 2.0,
        )
        self._supervisor = system.spawn(
            Supervisor,
            [spec],
            max_restarts=max_restarts,
            within=within,
            backoff=backoff,
            name=f"{name}.kernel",
        )
        self._actor = system.lookup(f"{name}.process")
        system.watch(lifecycle, self._supervisor)

    # -- the process actor's work (its thread) ----------------------------------------------------

    def launch(self, actor: Address) -> tuple[ConnectionInfo, int]:
        """Write a new connection file (fresh ports) and start the kernel process."""
        with self._lock:
            self._launch += 1
            launch = self._launch
            tag = f"kernel-{uuid.uuid4().hex[:12]}"
            info = new_connection_info(self.ip, self.spec.name, key=self._key)
            self.runtime_dir.mkdir(parents=True, exist_ok=True)
            path = write_connection_file(info, self.runtime_dir / f"{tag}.json")
            stderr_path = self.runtime_dir / f"{tag}.stderr"
            argv = [a.replace("{connection_file}", str(path)) for a in self.spec.argv]
            env = {**os.environ, **self.spec.env, **self.extra_env}
            env["JPY_PARENT_PID"] = str(os.getpid())  # ipykernel exits if we die
            with open(stderr_path, "wb") as err:
                try:
                    popen = subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                        cwd=self.cwd,
                        env=env,
                        start_new_session=True,  # a terminal's Ctrl-C is not the kernel's
                    )
                except OSError:
                    path.unlink(missing_ok=True)
                    stderr_path.unlink(missing_ok=True)
                    raise
            self._popen = popen
            self._info = info
            self._file = path
            self._stderr = stderr_path
            self._expecting = False
            waiter = threading.Thread(
                target=self._wait,
                args=(popen, launch, actor),
                name=f"{self.spec.name}-kernel-{popen.pid}",
                daemon=True,
            )
            self._waiter = waiter
            waiter.start()
        self._log.info(
            "kernel process started", pid=popen.pid, launch=launch, shell_port=info.shell_port
        )
        return info, launch

    def _wait(self, popen: subprocess.Popen[bytes], launch: int, actor: Address) -> None:
        code = popen.wait()
        if not self._expecting and actor.is_alive():
            actor.tell(_Exited(launch, code))

    @property
    def current_launch(self) -> int:
        return self._launch

    @property
    def expecting_exit(self) -> bool:
        return self._expecting

    def kill_now(self) -> None:
        popen = self._popen
        if popen is not None and popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                popen.kill()

    def stderr_tail(self) -> str:
        path = self._stderr
        if path is None:
            return ""
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(size - STDERR_TAIL, 0))
                return f.read().decode(errors="replace").strip()
        except OSError:
            return ""

    def reap(self, grace: float) -> int | None:
        """End the current process: wait ``grace`` seconds (it was asked to exit), then
        SIGTERM, then SIGKILL; remove its files. Returns its exit code."""
        with self._lock:
            popen, waiter = self._popen, self._waiter
            self._expecting = True
            code: int | None = None
            if popen is not None and popen.returncode is None:
                code = _stop_process(popen, grace)
                self._log.info("kernel process stopped", pid=popen.pid, code=code)
            elif popen is not None:
                code = popen.returncode
            if waiter is not None and waiter is not threading.current_thread():
                waiter.join(TERMINATE_WAIT)
            for path in (self._file, self._stderr):
                if path is not None:
                    path.unlink(missing_ok=True)
            self._file = self._stderr = None
            return code

    def remove_runtime_dir(self) -> None:
        """Remove the private runtime directory (never one the caller gave)."""
        if self._own_dir:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def _at_exit(self) -> None:
        popen = self._popen
        if popen is not None and popen.poll() is None:
            with contextlib.suppress(OSError):
                popen.kill()
                popen.wait(TERMINATE_WAIT)
        for path in (self._file, self._stderr):
            if path is not None:
                path.unlink(missing_ok=True)
        self.remove_runtime_dir()


def _stop_process(popen: subprocess.Popen[bytes], grace: float) -> int | None:
    if grace > 0:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return popen.wait(grace)
    for send in (popen.terminate, popen.kill):
        if popen.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            send()
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(TERMINATE_WAIT)
    return popen.poll()


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"code {code}"


class _ProcessActor(Actor):
    """Launches the kernel process on start; fails when it exits unasked (the supervisor
    restarts it with backoff); kills it when the client reports it unresponsive."""

    def __init__(self, process: KernelProcess, lifecycle: Address) -> None:
        super().__init__()
        self.process = process
        self.lifecycle = lifecycle

    def on_start(self) -> None:
        self._launch()

    def _launch(self) -> None:
        info, launch = self.process.launch(self.address)
        self.lifecycle.tell(KernelLaunched(info, launch))

    def on_receive(self, message: Any) -> Any:
        process = self.process
        if isinstance(message, _Exited):
            if message.launch != process.current_launch or process.expecting_exit:
                return None
            reason = f"kernel process exited with {_describe_exit(message.code)}"
            self.log.warning(
                "kernel process exited", code=message.code, stderr_tail=process.stderr_tail()
            )
            self.lifecycle.tell(KernelExited(message.launch, reason))
            raise KernelProcessExited(reason)
        if isinstance(message, _Kill):
            if message.launch == process.current_launch:
                self.log.warning("killing an unresponsive kernel", reason=message.reason)
                process.kill_now()
            return None
        if isinstance(message, _RestartNow):
            process.reap(process.stop_timeout)
            self._launch()
            return None
        return super().on_receive(message)

    def on_stop(self) -> None:
        # A stop is final (a restart goes through on_failure). A kernel asked to shut down
        # gets stop_timeout to exit; otherwise it is terminated.
        process = self.process
        process.reap(process.stop_timeout if process.expecting_exit else 0.0)
        process.remove_runtime_dir()

    def on_failure(self, *_exc: Any) -> None:
        self.process.reap(0.0)


def _kill_all_at_exit() -> None:
    for process in list(_LIVE):
        with contextlib.suppress(Exception):
            process._at_exit()


atexit.register(_kill_all_at_exit)
