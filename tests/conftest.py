"""Suite-wide settings and fixtures.

Hypothesis runs without per-example deadlines: a per-example deadline measures wall time,
which swings on a loaded 2-core machine; pytest-timeout already bounds every test. Every
test must leave no thread and no child process of its own behind (``no_leaks``).
"""

import io
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import actorwire.actors.log as aw_log
import pytest
import structlog
from actorwire.actors import configure_logging
from hypothesis import settings

settings.register_profile("actorwire", deadline=None)
settings.load_profile("actorwire")


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every log event as JSON in a buffer (for actors and clients made after it); the
    logging set-up is restored afterwards."""
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    configure_logging(format="json", level="debug", stream=out)
    try:
        yield out
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        structlog.reset_defaults()
        aw_log._install_default_redaction()


THREAD_GRACE = 3.0
"""Seconds a test's threads and child processes get to finish before the guard fails it."""

LIBRARY_THREADS = ("(_poll_wrapper)", "ThreadPoolExecutor", "asyncio_")
"""Threads libraries keep for the process (gRPC's poller, executor workers idling until
reused), matched in the thread's name: not a test's to stop."""
LIBRARY_THREAD_CLASSES = ("GarbageCollectorThread",)
"""pyzmq's garbage collector for zero-copy sends, one per process."""


def _children() -> set[int]:
    """PIDs of this process's live (not zombie) children."""
    out: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != "Z":
                out.add(int(pid))
    return out


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves a thread it started (actors, timers, I/O, helpers) or a child
    process (a server, a kernel) running."""
    threads_before = set(threading.enumerate())
    children_before = _children()
    yield
    deadline = time.monotonic() + THREAD_GRACE
    leaked: list[threading.Thread] = []
    while True:
        leaked = [
            t
            for t in threading.enumerate()
            if t not in threads_before
            and t.is_alive()
            and not any(lib in t.name for lib in LIBRARY_THREADS)
            and type(t).__name__ not in LIBRARY_THREAD_CLASSES
        ]
        if not leaked or time.monotonic() >= deadline:
            break
        leaked[0].join(max(min(deadline - time.monotonic(), 0.1), 0.0))
    children = _children() - children_before
    while children and time.monotonic() < deadline:
        time.sleep(0.05)  # polling interval while children exit, re-checked each time
        children = _children() - children_before
    problems = []
    if leaked:
        problems.append("threads: " + ", ".join(f"{t.name} (daemon={t.daemon})" for t in leaked))
    if children:
        problems.append(f"child processes: {sorted(children)}")
    if problems:
        pytest.fail("test left running: " + "; ".join(problems))
