"""Pipeline operators: sans-I/O record transformers that stage actors run.

An operator never sees a thread, a socket or a clock: the stage actor that owns it passes
each record in with the current time, asks when it next needs a tick, and forwards what it
returns. That keeps every operator testable with plain lists and a number for "now", and
lets one stage actor shell run any operator.

The contract (``Operator``):

- ``on_record(record, now) -> list``: the outputs caused by one input record, in order.
- ``on_tick(now) -> list``: outputs that fall due by time alone (a window closing, a
  conflation interval ending, a batch timing out, a throttled record released).
- ``next_deadline() -> float | None``: the earliest ``now`` at which ``on_tick`` has work;
  ``None`` when nothing is pending. The stage schedules one timer for it.
- ``flush(now) -> list``: everything still held, at a drain (``stop(drain=True)``).
- ``stats() -> dict[str, int]``: counters for metrics (e.g. ``late``, ``dropped``).

Records are plain dicts (a keysquare record's data fields, a synthetic price, a JSONL
line). ``now`` is seconds on the stage's monotonic clock; event time, where an operator
uses it, comes from a record field instead (see each operator).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["Operator", "OperatorBase"]


@runtime_checkable
class Operator(Protocol):
    """What a stage actor needs from the operator it runs."""

    def on_record(self, record: Any, now: float) -> list[Any]: ...

    def on_tick(self, now: float) -> list[Any]: ...

    def next_deadline(self) -> float | None: ...

    def flush(self, now: float) -> list[Any]: ...

    def stats(self) -> dict[str, int]: ...


class OperatorBase:
    """Defaults for a stateless operator: no ticks, nothing held, no counters."""

    def on_record(self, record: Any, now: float) -> list[Any]:
        raise NotImplementedError

    def on_tick(self, now: float) -> list[Any]:
        return []

    def next_deadline(self) -> float | None:
        return None

    def flush(self, now: float) -> list[Any]:
        return []

    def stats(self) -> dict[str, int]:
        return {}
