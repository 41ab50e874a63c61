"""Shared plumbing: configuration, interleaved runs, statistics, JSON rows, progress."""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeVar

T = TypeVar("T")


class BenchError(RuntimeError):
    """A benchmark run could not complete (e.g. the actor never saw every message)."""


@dataclass(frozen=True)
class Config:
    """Sizes of one bench invocation (full or ``--quick``)."""

    quick: bool
    runs: int
    tell_n: int
    chain_n: int
    ask_n: int
    ask_warmup: int
    ask_block: int
    timeout: float = 60.0

    @classmethod
    def make(cls, *, quick: bool, runs: int | None) -> Config:
        if quick:
            return cls(
                quick=True,
                runs=runs or 3,
                tell_n=20_000,
                chain_n=10_000,
                ask_n=2_000,
                ask_warmup=200,
                ask_block=250,
                timeout=30.0,
            )
        return cls(
            quick=False,
            runs=runs or 5,
            tell_n=200_000,
            chain_n=100_000,
            ask_n=20_000,
            ask_warmup=2_000,
            ask_block=1_000,
        )


def progress(text: str) -> None:
    """Progress and diagnostics: stderr only (stdout carries nothing but JSON rows)."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def emit(row: dict[str, Any]) -> None:
    """Print one benchmark result as a single JSON line on stdout."""
    sys.stdout.write(json.dumps(row, separators=(", ", ": ")) + "\n")
    sys.stdout.flush()


def environment() -> dict[str, Any]:
    """What the figures were measured on (goes into every row)."""
    try:
        pykka_version = metadata.version("pykka")
    except metadata.PackageNotFoundError:  # pragma: no cover - pykka is a dependency
        pykka_version = "unknown"
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "pykka": pykka_version,
        "cpus": os.cpu_count(),
        "switch_interval_s": sys.getswitchinterval(),
    }


def interleave(
    label: str,
    variants: dict[str, Callable[[], T]],
    runs: int,
    describe: Callable[[T], str],
) -> dict[str, list[T]]:
    """Run every variant ``runs`` times, interleaved, rotating which one goes first.

    Interleaving means a burst of machine noise hits all sides alike rather than one
    side's whole block of runs; rotating the order cancels any first/last-in-a-round bias.
    """
    names = list(variants)
    results: dict[str, list[T]] = {name: [] for name in names}
    for r in range(runs):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            gc.collect()
            result = variants[name]()
            results[name].append(result)
            progress(f"{label} run {r + 1}/{runs} {name}: {describe(result)}")
    return results


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of an already sorted sequence."""
    if not sorted_values:
        raise ValueError("percentile of no samples")
    rank = max(math.ceil(q / 100.0 * len(sorted_values)), 1)
    return float(sorted_values[rank - 1])
