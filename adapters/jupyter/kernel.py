"""start_kernel: launch a Jupyter kernel process, supervised, and a client that owns it.

The process (``process``) is the only child of a Supervisor: when it dies it is started
again with backoff, on fresh ports with a new connection file, and the client reconnects its
channels (RESTARTING, then ALIVE). A kernel that stops answering heartbeats is killed and
restarted the same way. Shutting the client down (or stopping its actor system) stops the
process, politely first, and removes its files.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ...actors import ActorStartError, ActorSystem, Backoff
from ...actors.twins import twin
from .client import KernelClient, StateListener
from .process import KernelProcess, KernelProcessExited
from .wiring import StdinHandler

__all__ = [
    "KernelProcess",
    "KernelProcessExited",
    "KernelSpec",
    "astart_kernel",
    "find_kernel_spec",
    "start_kernel",
]

DEFAULT_RESTART_BACKOFF = Backoff(min=0.2, max=10.0, factor=2.0, jitter=0.1)

_kernel_names = itertools.count(1)


@dataclass(frozen=True)
class KernelSpec:
    """How to launch a kernel: ``argv`` with ``{connection_file}`` in it, and its env."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    interrupt_mode: str = "signal"
    language: str = ""


def find_kernel_spec(kernel_name: str) -> KernelSpec:
    """``python3`` is built in (this interpreter's ipykernel); other names are looked up in
    the installed kernelspecs when jupyter_client is available."""
    if not isinstance(kernel_name, str) or not kernel_name:
        raise ValueError(f"kernel_name must be a non-empty string, got {kernel_name!r}")
    if kernel_name == "python3":
        if importlib.util.find_spec("ipykernel_launcher") is None:
            raise ModuleNotFoundError(
                "kernel 'python3' needs ipykernel in this interpreter: pip install ipykernel"
            )
        argv = (sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}")
        return KernelSpec("python3", argv, {}, "signal", "python")
    try:
        from jupyter_client.kernelspec import (  # noqa: PLC0415 - optional dependency
            KernelSpecManager,
            NoSuchKernel,
        )
    except ImportError:
        raise ValueError(
            f"unknown kernel {kernel_name!r}: only 'python3' is built in "
            "(install jupyter_client to use other installed kernelspecs)"
        ) from None
    manager = KernelSpecManager()
    try:
        spec = manager.get_kernel_spec(kernel_name)
    except NoSuchKernel:
        known = ", ".join(sorted({"python3", *manager.find_kernel_specs()}))
        raise ValueError(f"no kernel named {kernel_name!r} (installed: {known})") from None
    return KernelSpec(
        kernel_name,
        tuple(spec.argv),
        dict(spec.env or {}),
        spec.interrupt_mode or "signal",
        spec.language or "",
    )


def start_kernel(
    kernel_name: str = "python3",
    *,
    system: ActorSystem | None = None,
    name: str | None = None,
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    runtime_dir: str | os.PathLike[str] | None = None,
    ip: str = "127.0.0.1",
    on_stdin: StdinHandler | None = None,
    state_listener: StateListener | None = None,
    timeout: float = 30.0,
    heartbeat_interval: float = 1.0,
    heartbeat_deadline: float = 5.0,
    startup_timeout: float = 60.0,
    restart_backoff: Backoff | None = None,
    max_restarts: int = 5,
    restart_window: float = 60.0,
    stop_timeout: float = 5.0,
) -> KernelClient:
    """Launch a kernel and return a ready KernelClient that owns (and supervises) it.

    ``kernel_name="python3"`` runs ``sys.executable -m ipykernel_launcher -f <file>``;
    other names come from installed kernelspecs, or give ``argv`` (with
    ``{connection_file}``) yourself. The connection file (fresh ports on ``ip``, a random
    key, hmac-sha256) goes to ``runtime_dir`` (default: a private temporary directory).
    A dying kernel is restarted with ``restart_backoff``, up to ``max_restarts`` within
    ``restart_window`` seconds (then the client is FAILED). ``stop_timeout`` is how long a
    kernel asked to shut down gets before it is terminated. Other options as KernelClient.
    """
    spec = find_kernel_spec(kernel_name) if argv is None else _custom_spec(kernel_name, argv)
    if restart_backoff is not None and not isinstance(restart_backoff, Backoff):
        raise TypeError(f"restart_backoff must be a Backoff, got {restart_backoff!r}")
    key = secrets.token_hex(32).encode()
    client = KernelClient._unattached(
        key=key,
        signature_scheme="hmac-sha256",
        system=system,
        name=name or f"{spec.name}-{next(_kernel_names)}",
        username=None,
        on_stdin=on_stdin,
        state_listener=state_listener,
        timeout=timeout,
        heartbeat_interval=heartbeat_interval,
        heartbeat_deadline=heartbeat_deadline,
        startup_timeout=startup_timeout,
    )
    process = KernelProcess(
        spec,
        key=key,
        ip=ip,
        runtime_dir=runtime_dir,
        cwd=cwd,
        env=env,
        stop_timeout=stop_timeout,
    )
    client._attach_owner(process)
    try:
        try:
            process.supervise(
                client.system,
                client._lifecycle,
                client._prefix,
                max_restarts=max_restarts,
                within=restart_window,
                backoff=restart_backoff or DEFAULT_RESTART_BACKOFF,
            )
        except ActorStartError as exc:
            raise RuntimeError(
                f"could not start kernel {spec.name!r}: {exc.__cause__ or exc}"
            ) from exc
        client.wait_for_ready(startup_timeout)
    except BaseException:
        client.close()
        raise
    return client


_start_kernel_off_loop = twin(start_kernel)


async def astart_kernel(
    kernel_name: str = "python3",
    *,
    system: ActorSystem | None = None,
    name: str | None = None,
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    runtime_dir: str | os.PathLike[str] | None = None,
    ip: str = "127.0.0.1",
    on_stdin: StdinHandler | None = None,
    state_listener: StateListener | None = None,
    timeout: float = 30.0,
    heartbeat_interval: float = 1.0,
    heartbeat_deadline: float = 5.0,
    startup_timeout: float = 60.0,
    restart_backoff: Backoff | None = None,
    max_restarts: int = 5,
    restart_window: float = 60.0,
    stop_timeout: float = 5.0,
) -> KernelClient:
    """Awaitable ``start_kernel`` (same arguments): the launch and the wait for the kernel
    to answer run off the event loop."""
    return await _start_kernel_off_loop(
        kernel_name,
        system=system,
        name=name,
        argv=argv,
        env=env,
        cwd=cwd,
        runtime_dir=runtime_dir,
        ip=ip,
        on_stdin=on_stdin,
        state_listener=state_listener,
        timeout=timeout,
        heartbeat_interval=heartbeat_interval,
        heartbeat_deadline=heartbeat_deadline,
        startup_timeout=startup_timeout,
        restart_backoff=restart_backoff,
        max_restarts=max_restarts,
        restart_window=restart_window,
        stop_timeout=stop_timeout,
    )


def _custom_spec(kernel_name: str, argv: Sequence[str]) -> KernelSpec:
    args = tuple(argv)
    if not args or not all(isinstance(a, str) for a in args):
        raise ValueError(f"argv must be a non-empty list of strings, got {argv!r}")
    if not any("{connection_file}" in a for a in args):
        raise ValueError("argv must contain '{connection_file}' where the file's path goes")
    return KernelSpec(kernel_name, args, {}, "signal", "")
