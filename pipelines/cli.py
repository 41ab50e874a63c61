"""The ``actorwire`` command line.

``actorwire serve ADAPTER`` runs an adapter's embedded server until SIGINT or SIGTERM; the
adapters that have one register it through their ``actorwire.plugins`` entry point.
``actorwire top URL`` shows the live view of a running ``actorwire run`` (:mod:`.top`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["build_parser", "main", "servers"]

Runner = Callable[[argparse.Namespace, threading.Event], int]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("actorwire")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "unknown"


def servers() -> dict[str, Runner]:
    """Adapters with an embedded server (from the installed plugins): name -> runner(args,
    stop_event) -> exit code."""
    from .plugins import server_kinds  # noqa: PLC0415 - loads the plugins on use

    return {name: kind.serve for name, kind in server_kinds().items() if kind.serve is not None}


def _fail(message: str, code: int) -> int:
    print(message, file=sys.stderr, flush=True)
    return code


def _configure_logging(args: argparse.Namespace) -> int | None:
    """Logs go to stderr (stdout carries only the ready line); an exit code on bad options."""
    from actorwire.actors.log import configure_logging  # noqa: PLC0415

    try:
        configure_logging(args.log_format or "console", args.log_level or "info", stream=sys.stderr)
    except ValueError as exc:
        return _fail(f"actorwire: {exc}", 2)
    return None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="actorwire", description="Actor-based event processing: servers and pipelines."
    )
    # Logging options are accepted before or after the command (``actorwire run F
    # --log-level debug``); unset, each command picks its default.
    logging_options = argparse.ArgumentParser(add_help=False)
    logging_options.add_argument(
        "--log-format",
        choices=("console", "json"),
        default=argparse.SUPPRESS,
        help="log output format (default: console, or the definition's [logging])",
    )
    logging_options.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default=argparse.SUPPRESS,
        help="debug, info, warning or error (default: info, or the definition's [logging])",
    )
    parser.add_argument("--version", action="version", version=f"actorwire {_version()}")
    parser.add_argument("--log-format", choices=("console", "json"), default=None, help="as below")
    parser.add_argument(
        "--log-level", type=str.lower, choices=LOG_LEVELS, default=None, help="as below"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        parents=[logging_options],
        help="run an adapter's embedded server",
        description="Run an adapter's embedded server until SIGINT/SIGTERM.",
    )
    serve.add_argument(
        "adapter", metavar="ADAPTER", help="an adapter with a server (keysquare, ...)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=None, help="port (default: the adapter's own; 0: any)"
    )
    serve.add_argument("--config", metavar="FILE", help="the server's config (TOML)")
    serve.add_argument(
        "--store",
        metavar="PATH",
        help="what a restart must not lose: an SQLite file for keysquare (stored records, "
        "the journal, the dedupe window), smarkets (accounts, books, orders, references, "
        "account sequences) and streamsea (schemas, logs, consumer groups); a folder for "
        "nats (JetStream's streams and consumers)",
    )
    serve.add_argument("--cert", metavar="FILE", help="serve over TLS: the certificate (PEM)")
    serve.add_argument("--key", metavar="FILE", help="serve over TLS: its private key (PEM)")
    serve.set_defaults(handler=_cmd_serve)
    run = commands.add_parser(
        "run",
        parents=[logging_options],
        help="run a pipeline definition under its supervisor",
        description=(
            "Run a pipeline definition (TOML): start its embedded servers, then its "
            "stages under their supervision tree, until SIGINT/SIGTERM, --duration, or "
            "every source is done; then drain (every accepted record goes through, open "
            "windows and batches flush, sinks flush and close), stop the servers and exit "
            "0. A second signal exits at once (130). A fatal error exits 1 with the "
            "reason; a definition with problems exits 2 before anything starts; a run "
            "that lost an accepted record to a dead letter exits 3 (the summary on "
            "stderr says which stage)."
        ),
    )
    run.add_argument("file", metavar="FILE", help="the definition file (TOML)")
    run.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="stop (and drain) after this many seconds (default: run until a signal)",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="serve Prometheus /metrics and /healthz on 127.0.0.1:N (0: any free port; "
        "default: the definition's [metrics] port, else none)",
    )
    run.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long draining may take before the pipeline stops anyway (default 30)",
    )
    run.set_defaults(handler=_cmd_run)
    check = commands.add_parser(
        "check",
        help="check a pipeline definition file without starting anything",
        description=(
            "Check a pipeline definition (TOML): sections, keys and their types, kinds and "
            "their parameters, wiring (unknown names, cycles), and that every "
            "'module:function' imports. Prints every problem with the file, line and key "
            "path. Exit status: 0 when the file is valid, 2 when it is not."
        ),
    )
    check.add_argument("file", metavar="FILE", help="the definition file (TOML)")
    check.set_defaults(handler=_cmd_check)
    top = commands.add_parser(
        "top",
        help="watch a running pipeline: the live view, read from its /metrics",
        description=(
            "Show the live view of a running 'actorwire run' (one panel per link: state, "
            "rate, lag, reconnects, gaps; the stages; the latest bars; health), read from "
            "its /metrics, /healthz and /latest every --interval seconds until Ctrl-C. "
            "Exit status: 0, or 1 when the URL cannot be read."
        ),
    )
    top.add_argument(
        "url",
        metavar="URL",
        help="the run's metrics address: http://127.0.0.1:PORT (a trailing /metrics is fine)",
    )
    top.add_argument(
        "--interval",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="seconds between reads (default 0.5)",
    )
    top.add_argument(
        "--once",
        action="store_true",
        help="print one frame (two reads, --interval apart) and exit: for pipes and scripts",
    )
    top.set_defaults(handler=_cmd_top)
    return parser


def _cmd_top(args: argparse.Namespace) -> int:
    from .top import run_top  # noqa: PLC0415

    if not args.interval > 0:
        return _fail(f"actorwire top: --interval must be > 0 seconds, got {args.interval}", 2)
    return run_top(args.url, interval=args.interval, once=args.once)


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner import RunOptions, run_file  # noqa: PLC0415

    if args.duration is not None and args.duration < 0:
        return _fail(f"actorwire run: --duration must be >= 0, got {args.duration}", 2)
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        return _fail(f"actorwire run: --metrics-port must be 0..65535, got {args.metrics_port}", 2)
    options = RunOptions(
        duration=args.duration,
        metrics_port=args.metrics_port,
        log_format=args.log_format,
        log_level=args.log_level,
        drain_timeout=args.drain_timeout,
    )
    return run_file(args.file, options)


def _cmd_check(args: argparse.Namespace) -> int:
    from .definition import DefinitionError  # noqa: PLC0415
    from .loader import check_definition  # noqa: PLC0415

    # Every problem in one pass: the shape, then every constructor's checks; no start.
    definition, errors = check_definition(Path(args.file))
    if errors or definition is None:
        return _fail(str(DefinitionError(errors)), 2)
    for warning in definition.warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    counts = ", ".join(
        f"{len(items)} {label if len(items) == 1 else label + 's'}"
        for label, items in (
            ("server", definition.servers),
            ("source", definition.sources),
            ("stage", definition.stages),
            ("sink", definition.sinks),
        )
    )
    print(f"{args.file}: ok (pipeline {definition.name!r}: {counts})", flush=True)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    runners = servers()
    runner = runners.get(args.adapter)
    if runner is None:
        return _fail(
            f"actorwire serve: unknown adapter {args.adapter!r} "
            f"(available: {', '.join(sorted(runners)) or 'none installed'})",
            2,
        )
    if args.port is not None and not 0 <= args.port <= 65535:
        return _fail(f"actorwire serve: --port must be 0..65535, got {args.port}", 2)
    if (code := _configure_logging(args)) is not None:
        return code
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        return runner(args, stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``actorwire`` command; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:  # bare ``actorwire``: what it can do (a usage error still)
        parser.print_help(sys.stderr)
        return 2
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
