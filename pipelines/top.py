"""``actorwire top URL``: the live view of any running ``actorwire run``, read from its
``/metrics`` (and ``/healthz`` and ``/latest`` when it serves them).

The Prometheus text is parsed here (only what :class:`~.metrics.MetricsServer` emits:
``name{label="value",...} number`` lines and ``#`` comments) back into a
:class:`~.metrics.Snapshot`, which feeds the same :class:`~.liveview.LiveModel` as the
view ``actorwire run`` draws itself. No dependency beyond rich: HTTP is urllib's.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from .liveview import LiveModel, render
from .metrics import DISPATCHER_GAUGES, STAGE_COUNTERS, Health, Snapshot

__all__ = [
    "MetricsFormatError",
    "Sample",
    "Scrape",
    "base_url",
    "parse_prometheus",
    "run_top",
    "scrape",
    "snapshot_from_samples",
]

TIMEOUT = 5.0
"""Seconds one HTTP request may take."""


class MetricsFormatError(ValueError):
    """A line of Prometheus text that is not ``name{labels} value``."""


@dataclass(frozen=True)
class Sample:
    """One line of Prometheus text: ``name{labels} value``."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    value: float = 0.0


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _parse_labels(text: str, start: int, where: str) -> tuple[dict[str, str], int]:
    """The labels from ``text[start]`` (just after ``{``) to the closing ``}``; returns them
    and the index after ``}``."""
    labels: dict[str, str] = {}
    i = start
    while True:
        while i < len(text) and text[i] in " ,":
            i += 1
        if i < len(text) and text[i] == "}":
            return labels, i + 1
        eq = text.find("=", i)
        if eq < 0 or eq + 1 >= len(text) or text[eq + 1] != '"':
            raise MetricsFormatError(f'{where}: expected label="value" at column {i + 1}')
        name = text[i:eq].strip()
        i = eq + 2
        value: list[str] = []
        while True:
            if i >= len(text):
                raise MetricsFormatError(f"{where}: unterminated value of label {name!r}")
            char = text[i]
            if char == "\\" and i + 1 < len(text):
                value.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
                i += 2
            elif char == '"':
                i += 1
                break
            else:
                value.append(char)
                i += 1
        labels[name] = "".join(value)


def _parse_value(text: str, where: str) -> float:
    words = text.split(maxsplit=1)
    word = words[0] if words else ""
    special = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
    if word in special:
        return special[word]
    try:
        return float(word)
    except ValueError:
        raise MetricsFormatError(f"{where}: expected a number, got {word!r}") from None


def parse_prometheus(text: str) -> list[Sample]:
    """The samples of Prometheus text format 0.0.4 (comments and blank lines skipped; a
    timestamp after the value is ignored); MetricsFormatError names the bad line."""
    samples = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"line {number}"
        brace = line.find("{")
        space = line.find(" ")
        if brace >= 0 and (space < 0 or brace < space):
            name = line[:brace]
            labels, end = _parse_labels(line, brace + 1, where)
            rest = line[end:]
        else:
            if space < 0:
                raise MetricsFormatError(f"{where}: expected 'name value', got {line!r}")
            name, labels, rest = line[:space], {}, line[space:]
        if not name:
            raise MetricsFormatError(f"{where}: a sample with no metric name: {line!r}")
        samples.append(Sample(name, labels, _parse_value(rest, where)))
    return samples


def snapshot_from_samples(samples: Iterable[Sample]) -> tuple[Snapshot, bool | None]:
    """The Snapshot that MetricsServer's families describe, and ``actorwire_pipeline_healthy``
    (None when absent). Only the first pipeline named is read."""
    pipeline: str | None = None
    stages: dict[str, dict[str, int]] = {}
    links: dict[str, str] = {}
    dispatcher: dict[str, int] = {}
    healthy: bool | None = None
    uptime: float | None = None
    counters = {f"actorwire_stage_{name}_total": name for name in STAGE_COUNTERS}
    pool = {f"actorwire_dispatcher_{name}": name for name in DISPATCHER_GAUGES}
    pool["actorwire_dispatcher_blocked_handoffs_total"] = "blocked_handoffs"
    for sample in samples:
        if not sample.name.startswith("actorwire_"):
            continue
        name = sample.labels.get("pipeline")
        if name is None:
            continue
        if pipeline is None:
            pipeline = name
        elif name != pipeline:
            continue
        value = sample.value if math.isfinite(sample.value) else 0.0
        stage = sample.labels.get("stage")
        if sample.name in counters and stage is not None:
            stages.setdefault(stage, {})[counters[sample.name]] = int(value)
        elif sample.name == "actorwire_stage_mailbox_depth" and stage is not None:
            stages.setdefault(stage, {})["mailbox_depth"] = int(value)
        elif sample.name == "actorwire_stage_stat" and stage is not None:
            stat = sample.labels.get("stat")
            if stat:
                stages.setdefault(stage, {})[stat] = int(value)
        elif sample.name == "actorwire_link_state":
            link, state = sample.labels.get("link"), sample.labels.get("state")
            # One sample per candidate state: 1.0 marks the link's own.
            if link is not None and state is not None and (value == 1.0 or link not in links):
                links[link] = state if value == 1.0 else "?"
        elif sample.name in pool:
            dispatcher[pool[sample.name]] = int(value)
        elif sample.name == "actorwire_pipeline_healthy":
            healthy = value == 1.0
        elif sample.name == "actorwire_pipeline_uptime_seconds":
            uptime = value
    snapshot = Snapshot(
        pipeline or "?", stages=stages, links=links, dispatcher=dispatcher, uptime=uptime
    )
    return snapshot, healthy


def base_url(url: str) -> str:
    """``http://host:port`` from what the user typed (a trailing ``/metrics`` or ``/`` is
    dropped; ``host:port`` alone gets ``http://``)."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    text = text.rstrip("/")
    for suffix in ("/metrics", "/healthz", "/latest"):
        text = text.removesuffix(suffix)
    return text.rstrip("/")


def _get(url: str, timeout: float) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return int(reply.status), reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass(frozen=True)
class Scrape:
    """One read of a running pipeline: its snapshot and its health."""

    snapshot: Snapshot
    health: Health


def scrape(base: str, timeout: float = TIMEOUT) -> Scrape:
    """Read ``base``'s ``/metrics``, then ``/healthz`` and ``/latest`` when served.

    Raises OSError (urllib's URLError included) when ``/metrics`` cannot be read, ValueError
    when it does not answer Prometheus text."""
    status, body = _get(base + "/metrics", timeout)
    if status != 200:
        raise ValueError(f"{base}/metrics answered HTTP {status}, expected 200")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{base}/metrics did not answer text (not UTF-8)") from None
    try:
        samples = parse_prometheus(text)
    except MetricsFormatError as exc:
        raise ValueError(f"{base}/metrics is not Prometheus text: {exc}") from None
    snapshot, healthy = snapshot_from_samples(samples)
    if not snapshot.stages and not snapshot.links:
        raise ValueError(f"{base}/metrics has no actorwire pipeline metrics")
    status_body: dict[str, Any] = {}
    try:
        status, body = _get(base + "/healthz", timeout)
        if status in (200, 503):
            status_body = json.loads(body)
            healthy = status == 200
    except (OSError, ValueError):
        pass  # health then comes from actorwire_pipeline_healthy
    latest: list[dict[str, Any]] = []
    try:
        status, body = _get(base + "/latest", timeout)
        if status == 200:
            rows = json.loads(body).get("latest", [])
            latest = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
    except (OSError, ValueError, AttributeError):
        pass  # an older server: no bars
    phase = status_body.get("phase")
    snapshot = Snapshot(
        snapshot.pipeline,
        stages=snapshot.stages,
        links=snapshot.links,
        phase=phase if isinstance(phase, str) else "running",
        dispatcher=snapshot.dispatcher,
        latest=latest,
        uptime=snapshot.uptime,
    )
    body_out = dict(status_body) if status_body else {"status": "?"}
    return Scrape(snapshot, Health(bool(healthy), body_out) if healthy is not None else _unknown())


def _unknown() -> Health:
    return Health(False, {"status": "unknown", "reason": "health not reported"})


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return str(exc.reason)
    return str(exc) or exc.__class__.__name__


def _problem(base: str, exc: BaseException) -> str:
    """One line: what could not be read, and why."""
    if isinstance(exc, ValueError):  # the answer was wrong; its text names the URL
        return f"actorwire top: {exc}"
    return f"actorwire top: cannot read {base}/metrics: {_reason(exc)}"


def run_top(
    url: str,
    interval: float = 0.5,
    once: bool = False,
    stream: TextIO | None = None,
    width: int | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run ``actorwire top``: 0 when stopped (Ctrl-C or ``stop``) or after one frame with
    ``once``; 1 with one line on stderr when the URL cannot be read at the start."""
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        print(f"actorwire top: --interval must be > 0 seconds, got {interval}", file=sys.stderr)
        return 2
    try:
        import rich  # noqa: F401, PLC0415 - only when drawing
    except ImportError:
        print("actorwire top needs rich: pip install 'actorwire[console]'", file=sys.stderr)
        return 1
    try:
        return _top(base_url(url), float(interval), once, stream, width, stop, clock)
    except KeyboardInterrupt:  # Ctrl-C: the way to leave
        return 0


def _top(
    base: str,
    interval: float,
    once: bool,
    stream: TextIO | None,
    width: int | None,
    stop: threading.Event | None,
    clock: Callable[[], float],
) -> int:
    from rich.console import Console  # noqa: PLC0415
    from rich.live import Live  # noqa: PLC0415

    stop = stop if stop is not None else threading.Event()
    model = LiveModel()
    try:
        first = scrape(base)
    except (OSError, ValueError) as exc:
        print(_problem(base, exc), file=sys.stderr)
        return 1
    model.feed(first.snapshot, clock(), first.health)

    def poll() -> None:
        try:
            got = scrape(base)
        except (OSError, ValueError) as exc:
            model.mark_unreachable(_problem(base, exc).removeprefix("actorwire top: "))
            return
        model.feed(got.snapshot, clock(), got.health)

    console = Console(file=stream if stream is not None else sys.stdout, width=width)
    if once:
        # A second read one interval later, so that rates and lags have something to go by.
        stop.wait(interval)
        poll()
        console.print(render(model))
        return 0
    with Live(render(model), console=console, auto_refresh=False) as live:
        while not stop.wait(interval):
            poll()
            live.update(render(model), refresh=True)
    return 0
