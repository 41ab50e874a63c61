"""Per-stage counters of a pipeline, merged from the stage's own state (which outlives its
incarnations), the actor system's mailbox metrics and its dead letters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..actors import ActorSystem
from .spec import StageSpec
from .stage import StageRuntime, StageState

__all__ = ["COUNTERS", "stage_stats"]

COUNTERS = ("received", "processed", "failed", "emitted")
"""Record counters a pipeline-built stage keeps in its StageState."""


def stage_stats(
    pipeline: str,
    specs: Mapping[str, StageSpec],
    runtimes: Mapping[str, StageRuntime],
    system: ActorSystem | None,
    last_rows: dict[str, dict[str, Any]],
) -> dict[str, dict[str, int]]:
    """The counters ``Pipeline.stats()`` reports for every stage of ``pipeline``.

    ``last_rows`` keeps each stage's last actor metrics, so that the counters stay readable
    once the system has shut down.
    """
    rows: dict[str, dict[str, Any]] = {}
    lost: dict[str, int] = {}
    if system is not None:
        lost = system.dead_letters.lost()
        if not system.is_shut_down:
            rows = system.metrics()["actors"]
    out: dict[str, dict[str, int]] = {}
    for name, spec in specs.items():
        runtime = runtimes.get(name)
        state = runtime.state if runtime is not None else StageState()
        actor = f"{pipeline}.{name}"
        row = rows.get(actor)
        if row is not None:
            last_rows[name] = row
        else:
            row = last_rows.get(name, {})
        stats: dict[str, int] = {}
        if spec.role == "actor":
            stats["received"] = max(int(row.get("received", 0)) - state.control, 0)
            stats["processed"] = max(int(row.get("processed", 0)) - state.control, 0)
            stats["failed"] = int(row.get("failed", 0))
            stats["emitted"] = state.emitted
        else:
            for counter in COUNTERS:
                stats[counter] = getattr(state, counter)
        # Policy drops only: records refused by a restarting stage's full hold are
        # dead letters, counted in dead_lettered.
        stats["dropped"] = int(row.get("dropped", 0)) - int(row.get("lost", 0))
        stats["dead_lettered"] = lost.get(actor, 0)
        stats["mailbox_depth"] = int(row.get("mailbox_depth", 0))
        stats["restarts"] = int(row.get("restarts", 0))
        prefix = {"source": "source_", "sink": "sink_"}.get(spec.role, "op_")
        for key, value in state.component_stats.items():
            stats[prefix + key] = int(value)
        out[name] = stats
    return out
