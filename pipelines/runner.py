"""The supervisor process: ``actorwire run FILE``.

Checks the definition (exit 2 when it has problems), sets up logging, starts the embedded
servers and then the pipeline under its supervision tree, serves ``/metrics`` and
``/healthz`` when asked, and runs until SIGINT/SIGTERM, ``--duration``, or every source is
done. It then drains: the sources stop, every record already accepted goes through, open
windows and batches are flushed, the sinks flush and close, the servers stop; exit 0.
A second signal while draining exits at once (status 130). A fatal error (a supervisor
that gave up, a stage that cannot start) exits 1 with the reason on stderr. The run ends
with a summary on stderr: per stage, records failed, dead-lettered (never handled) and
dropped; "clean" only when there are none and the drain finished. A run that lost an
accepted record to a dead letter exits 3.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from ..actors.log import configure_logging, redact_text
from .definition import DefinitionError, parse_definition
from .loader import build_pipeline
from .metrics import MetricsServer, Snapshot
from .pipeline import Pipeline
from .sinks import ViewSink

__all__ = ["RunOptions", "run_file"]

log = structlog.get_logger("actorwire.run")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOST = 3
"""The run ended, but records a stage had accepted were lost to dead letters."""
EXIT_FORCED = 130

SUMMARY_COUNTERS = ("failed", "dead_lettered", "dropped")
"""What the end-of-run summary reports per stage: records its code failed on, records it
never handled (lost), records its mailbox's overflow policy dropped."""


@dataclass(frozen=True)
class RunOptions:
    """``actorwire run`` options; None means "as the definition says" (or the default)."""

    duration: float | None = None
    metrics_port: int | None = None
    log_format: str | None = None
    log_level: str | None = None
    drain_timeout: float = 30.0


class _Signals:
    """First SIGINT/SIGTERM: stop and drain. Second: exit at once."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.count = 0
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        name = signal.Signals(signum).name
        if self.count == 1:
            print(f"actorwire run: {name}: draining (again to exit at once)", file=sys.stderr)
            self.stop.set()
            return
        print(f"actorwire run: {name} again: exiting without draining", file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(EXIT_FORCED)


_ACTOR = re.compile(r"actor '([^']+)' (?:failed in on_start|did not finish on_start)")


def failure_lines(exc: BaseException, pipeline: str) -> list[str]:
    """A start failure as one line per cause: the stage that failed (from the chain of
    start errors) and each line of the innermost cause's message; the wrappers that only
    repeat it are left out (the traceback is logged at debug level)."""
    stage = None
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        found = _ACTOR.search(str(current).split("\n", 1)[0])
        if found:
            stage = found.group(1)
        current = current.__cause__
    root = chain[-1]
    text = str(root).strip() or type(root).__name__
    if isinstance(root, OSError | TimeoutError | ConnectionError) or not str(root).strip():
        text = f"{type(root).__name__}: {text}" if str(root).strip() else text
    where = ""
    if stage is not None:
        name = stage.removeprefix(f"{pipeline}.")
        where = f"stage {name!r}: "
    return [f"{where}{line.strip()}" for line in text.splitlines() if line.strip()]


def _fail(message: str, code: int) -> int:
    print(redact_text(message), file=sys.stderr, flush=True)
    return code


def run_file(path: str | Path, options: RunOptions | None = None) -> int:
    """Run a definition file as ``actorwire run`` does; returns the exit status."""
    options = options or RunOptions()
    try:
        definition = parse_definition(Path(path))
    except DefinitionError as exc:
        return _fail(str(exc), EXIT_USAGE)
    try:
        configure_logging(
            options.log_format or definition.logging.format,  # type: ignore[arg-type]
            options.log_level or definition.logging.level,
            stream=sys.stderr,
        )
    except ValueError as exc:
        return _fail(f"actorwire run: {exc}", EXIT_USAGE)
    for warning in definition.warnings:
        log.warning("definition warning", problem=str(warning))
    try:
        pipeline = build_pipeline(definition)
    except DefinitionError as exc:
        return _fail(str(exc), EXIT_USAGE)

    signals = _Signals()
    signals.install()
    metrics: MetricsServer | None = None
    phase = ["starting"]  # what /healthz reports besides links and failures
    started = time.monotonic()
    try:
        port = options.metrics_port
        if port is None:
            port = definition.metrics.port
        if port is not None:
            try:
                metrics = MetricsServer(
                    lambda: _snapshot(pipeline, phase[0], started),
                    host=definition.metrics.host,
                    port=port,
                )
            except OSError as exc:
                return _fail(f"actorwire run: cannot serve metrics on port {port}: {exc}", 1)
            print(f"metrics on {metrics.url}/metrics and {metrics.url}/healthz", file=sys.stderr)
        try:
            pipeline.start()
        except Exception as exc:
            log.debug("pipeline failed to start", exc_info=True)
            lines = "\n".join(f"  {line}" for line in failure_lines(exc, definition.name))
            return _fail(f"actorwire run: the pipeline could not start:\n{lines}", EXIT_FAILED)
        phase[0] = "running"
        log.info("pipeline running", pipeline=definition.name, file=str(path))
        view = _live_view(pipeline, phase, started)
        try:
            reason = _wait(pipeline, signals.stop, options.duration)
        finally:
            if view is not None:
                view.stop()
        phase[0] = "stopping"
        log.info("stopping", reason=reason)
        drained = pipeline.stop(drain=True, timeout=options.drain_timeout)
        stages = pipeline.stats()
        summary = summarize(stages)
        clean = drained and not any(sum(row.values()) for row in summary.values())
        log.info("pipeline stopped", reason=reason, clean=clean, drained=drained, stages=stages)
        _print_summary(summary, clean)
        if pipeline.failure is not None:
            return _fail(f"actorwire run: pipeline failed: {pipeline.failure}", EXIT_FAILED)
        if not drained:
            log.warning(
                "the pipeline did not drain within the timeout", timeout=options.drain_timeout
            )
        lost = sum(row["dead_lettered"] for row in summary.values())
        if lost:
            return _fail(
                f"actorwire run: {lost} accepted record(s) were lost to dead letters "
                f"(see the summary above)",
                EXIT_LOST,
            )
        return EXIT_OK
    finally:
        if metrics is not None:
            metrics.stop()
        pipeline.stop(drain=False, timeout=5.0)  # idempotent; covers early returns
        signals.restore()


def summarize(stages: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Per stage, the records that did not go through: failed, dead-lettered, dropped."""
    return {name: {k: int(row.get(k, 0)) for k in SUMMARY_COUNTERS} for name, row in stages.items()}


def _print_summary(summary: dict[str, dict[str, int]], clean: bool) -> None:
    """One line per stage that lost anything, then the verdict, on stderr."""
    for name, row in summary.items():
        if any(row.values()):
            counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in row.items())
            print(f"stage {name}: {counts}", file=sys.stderr)
    if clean:
        print("run summary: clean (every record went through)", file=sys.stderr)
    else:
        totals = {k: sum(r[k] for r in summary.values()) for k in SUMMARY_COUNTERS}
        counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in totals.items())
        print(f"run summary: not clean ({counts})", file=sys.stderr)


def _wait(pipeline: Pipeline, stop: threading.Event, duration: float | None) -> str:
    """Block until a signal, the duration, every source done, or a failure; say which."""
    deadline = None if duration is None else time.monotonic() + duration
    while True:
        if stop.is_set():
            return "signal"
        if pipeline.failure is not None:
            return "failure"
        if pipeline.done:
            return "sources done"
        if deadline is not None and time.monotonic() >= deadline:
            return "duration"
        timeout = 0.1 if deadline is None else max(min(0.1, deadline - time.monotonic()), 0)
        stop.wait(timeout)


def _snapshot(pipeline: Pipeline, phase: str, started: float | None = None) -> Snapshot:
    return Snapshot(
        pipeline.name,
        stages=pipeline.stats(),
        links=pipeline.links(),
        failure=pipeline.failure,
        phase=phase,
        dispatcher=pipeline.dispatcher_stats(),
        latest=_latest(pipeline),
        uptime=None if started is None else time.monotonic() - started,
    )


def _latest(pipeline: Pipeline) -> list[Any]:
    """The rows of the pipeline's ``view`` sinks (the live view's latest bars)."""
    rows: list[Any] = []
    for component in pipeline.components_running():
        if isinstance(component, ViewSink):
            rows += component.rows()
    return rows


def _live_view(pipeline: Pipeline, phase: list[str], started: float) -> Any:
    """The live view, drawn on a terminal when the definition has a ``view`` sink (None
    otherwise, and when stdout is not a terminal: sinks may write to it)."""
    if not any(isinstance(c, ViewSink) for c in pipeline.components_running()):
        return None
    if not sys.stdout.isatty():
        return None
    from .liveview import LiveView  # noqa: PLC0415 - rich, only on a terminal

    view = LiveView(lambda: _snapshot(pipeline, phase[0], started))
    return view if view.start() else None
