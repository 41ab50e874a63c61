"""Prometheus ``/metrics`` and ``/healthz`` for a running pipeline.

Nothing is counted per record here: the stages keep their own counters, and a custom
collector reads them when Prometheus scrapes (prometheus-client renders the text format).
``/healthz`` answers 200 when every link is CONNECTED and no supervisor has failed, else
503 with a JSON body giving the reason. ``/latest`` gives, as JSON, the latest records the
snapshot carries (the bars a live view shows): records stay out of ``/metrics``, which is
numbers only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

__all__ = ["Health", "MetricsServer", "Snapshot", "health", "latest_body"]

log = structlog.get_logger("actorwire.metrics")

STAGE_COUNTERS = ("received", "processed", "dropped", "failed", "dead_lettered", "restarts")
DISPATCHER_GAUGES = ("workers", "blocked_workers", "run_queue")
LINK_STATES = ("CONNECTING", "CONNECTED", "RECOVERING", "RECONNECTING", "FAILED", "CLOSED")
STAGE_GAUGES = ("mailbox_depth",)
"""Per-stage figures with a family of their own; every other number in a stage's stats
(``emitted``, the component's ``source_reconnects``, ``op_late``, ...) goes to
``actorwire_stage_stat{stat=...}``."""


@dataclass(frozen=True)
class Snapshot:
    """What a scrape reads: per-stage counters, link states, and a failure if any."""

    pipeline: str
    stages: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)  # link name -> LinkState name
    failure: str | None = None  # why the pipeline failed (a supervisor gave up), if it did
    phase: str = "running"  # "starting", "running" or "stopping": healthy only running
    dispatcher: Mapping[str, int] = field(default_factory=dict)  # the system's pool figures
    latest: Sequence[Mapping[str, Any]] = ()  # the latest records to show (``/latest``)
    uptime: float | None = None  # seconds since the pipeline started, when known


@dataclass(frozen=True)
class Health:
    ok: bool
    body: dict[str, Any]


def health(snapshot: Snapshot) -> Health:
    """200-worthy when every link is CONNECTED and nothing has failed."""
    down = {name: state for name, state in snapshot.links.items() if state != "CONNECTED"}
    reasons = []
    if snapshot.failure:
        reasons.append(f"pipeline failed: {snapshot.failure}")
    elif snapshot.phase != "running":
        reasons.append(f"pipeline is {snapshot.phase}")
    reasons.extend(f"link {name} is {state}" for name, state in sorted(down.items()))
    body: dict[str, Any] = {
        "status": "ok" if not reasons else "unhealthy",
        "pipeline": snapshot.pipeline,
        "phase": snapshot.phase,
        "links": dict(snapshot.links),
    }
    if reasons:
        body["reason"] = "; ".join(reasons)
    return Health(not reasons, body)


class _PipelineCollector:
    """Reads a Snapshot at scrape time (prometheus-client's collector protocol)."""

    def __init__(self, read: Callable[[], Snapshot]) -> None:
        self._read = read

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415

        snap = self._read()
        counters = {
            name: CounterMetricFamily(
                f"actorwire_stage_{name}",
                f"Records {name} per stage" if name != "restarts" else "Restarts per stage",
                labels=["pipeline", "stage"],
            )
            for name in STAGE_COUNTERS
        }
        depth = GaugeMetricFamily(
            "actorwire_stage_mailbox_depth",
            "Messages waiting in each stage's mailbox",
            labels=["pipeline", "stage"],
        )
        for stage, stats in sorted(snap.stages.items()):
            for name, family in counters.items():
                family.add_metric([snap.pipeline, stage], float(stats.get(name, 0)))
            depth.add_metric([snap.pipeline, stage], float(stats.get("mailbox_depth", 0)))
        yield from counters.values()
        yield depth
        other = GaugeMetricFamily(
            "actorwire_stage_stat",
            "Each stage's other figures: records emitted and its component's own counters "
            "(source_reconnects, source_gaps, op_late, sink_rotations, ...)",
            labels=["pipeline", "stage", "stat"],
        )
        for stage, stats in sorted(snap.stages.items()):
            for name, value in sorted(stats.items()):
                if name in STAGE_COUNTERS or name in STAGE_GAUGES:
                    continue
                if isinstance(value, int | float) and not isinstance(value, bool):
                    other.add_metric([snap.pipeline, stage, name], float(value))
        yield other
        links = GaugeMetricFamily(
            "actorwire_link_state",
            "1 for each link's current state",
            labels=["pipeline", "link", "state"],
        )
        for link, state in sorted(snap.links.items()):
            for candidate in LINK_STATES:
                links.add_metric([snap.pipeline, link, candidate], float(candidate == state))
        yield links
        if snap.dispatcher:
            for name in DISPATCHER_GAUGES:
                gauge = GaugeMetricFamily(
                    f"actorwire_dispatcher_{name}",
                    f"The pool's {name.replace('_', ' ')}",
                    labels=["pipeline"],
                )
                gauge.add_metric([snap.pipeline], float(snap.dispatcher.get(name, 0)))
                yield gauge
            handoffs = CounterMetricFamily(
                "actorwire_dispatcher_blocked_handoffs",
                "Workers replaced while blocked in a handler or a wait",
                labels=["pipeline"],
            )
            handoffs.add_metric([snap.pipeline], float(snap.dispatcher.get("blocked_handoffs", 0)))
            yield handoffs
        up = GaugeMetricFamily(
            "actorwire_pipeline_healthy", "1 when /healthz answers 200", labels=["pipeline"]
        )
        up.add_metric([snap.pipeline], float(health(snap).ok))
        yield up
        if snap.uptime is not None:
            uptime = GaugeMetricFamily(
                "actorwire_pipeline_uptime_seconds",
                "Seconds since the pipeline started",
                labels=["pipeline"],
            )
            uptime.add_metric([snap.pipeline], float(snap.uptime))
            yield uptime


def latest_body(snapshot: Snapshot) -> bytes:
    """``/latest``: the snapshot's latest records as JSON (a value JSON cannot hold is
    given as its repr)."""
    body = {"pipeline": snapshot.pipeline, "latest": [dict(r) for r in snapshot.latest]}
    return json.dumps(body, default=repr).encode()


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/latest`` over HTTP on a thread; ``port=0`` picks a
    free port."""

    def __init__(self, read: Callable[[], Snapshot], host: str = "127.0.0.1", port: int = 0):
        try:
            from prometheus_client import CollectorRegistry  # noqa: PLC0415
            from prometheus_client.exposition import (  # noqa: PLC0415
                CONTENT_TYPE_LATEST,
                generate_latest,
            )
        except ImportError:
            raise ImportError(
                "/metrics needs prometheus-client: pip install 'actorwire[metrics]'"
            ) from None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_PipelineCollector(read))
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._reply(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif path == "/healthz":
                    result = health(read())
                    body = json.dumps(result.body).encode()
                    self._reply(200 if result.ok else 503, "application/json", body)
                elif path == "/latest":
                    self._reply(200, "application/json", latest_body(read()))
                else:
                    body = b'{"error": "not found: try /metrics, /healthz or /latest"}'
                    self._reply(404, "application/json", body)

            def _reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("metrics request", request=format % args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        bound_host, bound_port = self._server.server_address[:2]
        self.host = bound_host if isinstance(bound_host, str) else bytes(bound_host).decode()
        self.port: int = bound_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="actorwire-metrics", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
