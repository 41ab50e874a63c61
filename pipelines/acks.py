"""Acknowledgements through a pipeline: which stages carry a source's barriers, how many
paths a barrier takes to terminal stages, and what cannot sit behind such a source.

A source with ``acks = True`` (a durable NATS consumer, say) acknowledges what it read only
once everything derived from it has been passed on and accepted downstream. It puts
:class:`~.stage.Barrier` markers between its records; each stage passes them on in order
(a window once the windows open when the barrier came have closed), and every terminal
stage reports each barrier done (:class:`~.stage.BarrierDone`). :func:`plan` tells each stage
whether barriers reach it and each such source how many reports make a barrier done (one
per path from it to a terminal stage). :func:`problems` lists what would lose data or stall
behind such a source, for ``actorwire check`` and ``Pipeline.start``:

- an operator that holds records and cannot say when they have left (``holds_records``
  without ``on_barrier``: batch, conflate, throttle);
- a window on processing time (a recomputed window must equal the lost one: event time,
  ``time_field``);
- a mailbox that may drop records (an overflow policy other than backpressure, or a
  ``put_timeout``): a dropped record would be acknowledged unprocessed;
- an acknowledgement wait no longer than the longest a record may wait in a window (its
  size plus allowed lateness): the source would see its messages redelivered while they
  are still being worked on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..actors import Overflow
from .spec import StageSpec

__all__ = ["Problem", "hold_seconds", "plan", "problems"]


@dataclass(frozen=True)
class Problem:
    """What is wrong with ``stage`` (its ``param``, when one parameter is to blame)."""

    stage: str
    param: str | None
    text: str


def _acking(spec: StageSpec, component: Any) -> bool:
    return spec.role == "source" and bool(getattr(component, "acks", False))


def _reach(start: str, outputs: Callable[[str], list[str]]) -> list[str]:
    seen: dict[str, None] = {}
    todo = list(outputs(start))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen[name] = None
            todo.extend(outputs(name))
    return list(seen)


def plan(
    specs: Mapping[str, StageSpec],
    components: Mapping[str, Any],
    outputs: Callable[[str], list[str]],
) -> tuple[set[str], dict[str, int]]:
    """The stages barriers reach (the acking sources themselves included), and for each
    acking source the number of paths from it to terminal stages."""
    carrying: set[str] = set()
    paths: dict[str, int] = {}
    memo: dict[str, int] = {}

    def count(name: str) -> int:
        if name not in memo:
            children = outputs(name)
            memo[name] = sum(count(c) for c in children) if children else 1
        return memo[name]

    for name, spec in specs.items():
        if _acking(spec, components.get(name)):
            carrying.add(name)
            carrying.update(_reach(name, outputs))
            paths[name] = sum(count(c) for c in outputs(name))
    return carrying, paths


def hold_seconds(component: Any) -> float:
    """How long a record may wait in ``component`` before what it feeds is passed on (a
    window's size, its allowed lateness and its idle timeout; 0 for an operator that holds
    nothing). A window on a feed that goes quiet without an idle timeout holds longer: the
    source keeps such messages from coming again (see the nats source)."""
    windowing = getattr(component, "_windowing", None)
    if windowing is None:
        return 0.0
    idle = getattr(component, "_idle", None) or 0.0
    return float(windowing.size) + float(getattr(component, "_lateness", 0.0)) + float(idle)


def problems(
    specs: Mapping[str, StageSpec],
    components: Mapping[str, Any],
    outputs: Callable[[str], list[str]],
) -> list[Problem]:
    """Everything that would lose data or stall behind a source with acknowledgements."""
    out: list[Problem] = []
    for name, spec in specs.items():
        source = components.get(name)
        if not _acking(spec, source):
            continue
        what = f"behind the {_kind(spec)} source {name!r}, which acknowledges what it read"
        longest = 0.0
        for stage in _reach(name, outputs):
            sub = specs[stage]
            component = components.get(stage)
            if sub.overflow is not Overflow.BACKPRESSURE:
                out.append(
                    Problem(
                        stage,
                        "overflow",
                        f"stage {stage!r} {what}, may drop records (overflow "
                        f"{sub.overflow.value!r}): a dropped record would be acknowledged "
                        "unprocessed; use overflow 'backpressure'",
                    )
                )
            elif sub.put_timeout is not None:
                out.append(
                    Problem(
                        stage,
                        "put_timeout",
                        f"stage {stage!r} {what}, gives up on a full mailbox after "
                        f"{sub.put_timeout:g} s and drops the record; leave put_timeout unset",
                    )
                )
            if sub.role != "operator" or component is None:
                continue
            if getattr(component, "holds_records", False):
                if not hasattr(component, "on_barrier"):
                    out.append(
                        Problem(
                            stage,
                            None,
                            f"stage {stage!r} ({_kind(sub)}) {what}, holds records and cannot "
                            "say when they have left it, so nothing could be acknowledged "
                            "safely; put it after a sink of its own pipeline instead",
                        )
                    )
                elif hasattr(component, "_time_field") and component._time_field is None:
                    out.append(
                        Problem(
                            stage,
                            "time_field",
                            f"stage {stage!r} ({_kind(sub)}) {what}, must use event time: "
                            "set time_field, so that a window recomputed after a restart "
                            "equals the one that was lost",
                        )
                    )
            longest = max(longest, hold_seconds(component))
        check = getattr(source, "check_hold", None)
        if check is not None and longest > 0:
            problem = check(longest)
            if problem is not None:
                param, text = problem
                out.append(Problem(name, param, text))
    return out


def _kind(spec: StageSpec) -> str:
    kind = spec.kind
    if isinstance(kind, str):
        return kind
    return getattr(kind, "__name__", type(kind).__name__)  # a class, a function, an instance
