"""``python -m bench [names...] [--quick] [--runs N] [--strict]``: see ``bench/__init__.py``."""

from __future__ import annotations

import argparse
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from actorwire.actors import configure_logging

from ._harness import Config, emit, progress
from .jupyter import jupyter_session_roundtrip
from .kdb import kdb_updates
from .keysquare import keysquare_publish_to_callback, keysquare_snapshot_dataframe
from .keysquare_topics import keysquare_topics
from .latency import ask_latency
from .nats import nats_stage
from .pipelines import pipeline_bars
from .scale import scale_actors
from .smarkets import smarkets_quotes
from .streamsea import streamsea_fanout
from .throughput import chain3, tell_throughput

BENCHES: dict[str, Callable[[Config], list[dict[str, Any]]]] = {
    "tell_throughput": tell_throughput,
    "chain3": chain3,
    "ask_latency": ask_latency,
    "scale_actors": scale_actors,
    "keysquare_publish_to_callback": keysquare_publish_to_callback,
    "keysquare_snapshot_dataframe": keysquare_snapshot_dataframe,
    "keysquare_topics": keysquare_topics,
    "pipeline_bars": pipeline_bars,
    "jupyter_session_roundtrip": jupyter_session_roundtrip,
    "smarkets_quotes": smarkets_quotes,
    "streamsea_fanout": streamsea_fanout,
    "kdb_updates": kdb_updates,
    "nats_stage": nats_stage,
}
# Rows a benchmark prints besides its own name: naming a row runs its benchmark and prints
# only the rows named.
ALIASES = {
    "tell_throughput_on_batch": "tell_throughput",
    "chain3_on_receive": "chain3",
    "chain3_on_batch": "chain3",
    "jupyter_session_roundtrip_buffer": "jupyter_session_roundtrip",
    "streamsea_fanout_embedded": "streamsea_fanout",
    "kdb_snap": "kdb_updates",
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="actorwire vs raw pykka benchmarks; one JSON object per line on stdout.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all): {', '.join(BENCHES)}",
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run (small N)")
    parser.add_argument(
        "--runs", type=int, default=None, help="runs per side (default 5; 3 with --quick)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a benchmark misses its target"
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHES and n not in ALIASES]
    if unknown:
        parser.error(
            f"unknown benchmark(s): {', '.join(unknown)}; "
            f"choose from {', '.join([*BENCHES, *ALIASES])}"
        )
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # actorwire logs through structlog; keep stdout for JSON rows only.
    configure_logging(level="warning", stream=sys.stderr)
    cfg = Config.make(quick=args.quick, runs=args.runs)
    selected = list(dict.fromkeys([ALIASES.get(n, n) for n in args.names] or BENCHES))
    # A benchmark named by one of its rows prints only the rows asked for.
    only_rows = {
        group: {n for n in args.names if ALIASES.get(n) == group}
        for group in selected
        if group not in args.names and args.names
    }

    missed: list[str] = []
    failed: list[str] = []

    started = time.perf_counter()
    progress(
        f"running {', '.join(selected)} ({'quick' if cfg.quick else 'full'}, "
        f"{cfg.runs} runs per side)"
    )
    for name in selected:
        t0 = time.perf_counter()
        try:
            rows = BENCHES[name](cfg)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            failed.append(name)
            rows = [{"bench": name, "error": repr(exc), "meets_target": False, "runs": 0}]
        wanted = only_rows.get(name)
        for row in rows:
            if wanted and "error" not in row and row["bench"] not in wanted:
                continue
            if not row["meets_target"]:
                missed.append(str(row["bench"]))
            emit(row)
        progress(f"{name} done in {time.perf_counter() - t0:.1f}s")
    progress(f"all done in {time.perf_counter() - started:.1f}s")

    lingering = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if lingering:
        progress(f"warning: threads still alive after the benchmarks: {lingering}")
    if missed:
        progress(f"missed target: {', '.join(missed)}")
    if failed:
        return 2
    if args.strict and missed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
