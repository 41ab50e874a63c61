"""Child processes of the keysquare throughput benchmark (``bench/keysquare.py``).

Run as a script, ``python bench/_ks_worker.py ROLE ...``; one line per event on stdout
(diagnostics and logs go to stderr):

``raw-server``
    The raw gRPC baseline server: a generic-handler unary-stream service (no generated
    code) on a sync ``grpc.server`` bound to 127.0.0.1 port 0. The request is the item
    count as ASCII; the reply streams that many ``RAW_PAYLOAD``\\ s, one gRPC message each.
    Prints ``port PORT`` once serving; stops when stdin closes (or on SIGTERM).
``publisher N CHUNK TIMEOUT WARM``
    The actorwire publisher. Builds N distinct Price records (untimed), reads the
    platform's ``HOST:PORT`` from the first stdin line, connects a KeySession, publishes
    WARM warm-up records (ids ``W...``, before the bench subscribes) and prints ``ready``.
    On a ``go`` line it prints ``start T`` (``time.monotonic()``: CLOCK_MONOTONIC is
    system-wide on Linux, so the bench process can compare it with its own clock), then
    publishes the N records with ``publish_many`` in chunks of CHUNK (each call blocks
    until its chunk is acknowledged) and prints ``sent T``. Stops its session and exits
    when stdin closes.

The bench package imports this module only for ``price_records`` and the raw constants;
nothing heavy is imported at module level.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

APP, API_KEY, DATA_TYPE = "demo", "demo-key", "Price"
RAW_PAYLOAD = b"p" * 100
SESSION_TIMEOUT = 10  # the KeySession's connect/RPC timeout
PIPELINE = int(os.environ.get("AW_BENCH_PIPELINE", "3"))  # publish_many calls in flight
RAW_SERVICE, RAW_METHOD = "actorwire.bench.RawStream", "Items"


def price_records(n: int, prefix: str = "S") -> list[tuple[str, dict[str, Any]]]:
    """N Price records with distinct ids (built once, outside any timing)."""
    return [
        (
            f"{prefix}{i:07d}",
            {
                "symbol": f"{prefix}{i:07d}",
                "bid": 100.0 + i * 0.01,
                "ask": 100.02 + i * 0.01,
                "last": 100.01 + i * 0.01,
                "volume": 1000 + i,
                "timestamp": 1_700_000_000.0 + i * 0.001,
            },
        )
        for i in range(n)
    ]


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _stdin_line() -> str:
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("stdin closed")
    return line.strip()


def _identity(raw: bytes) -> bytes:
    return raw


def raw_server() -> int:
    from concurrent import futures

    import grpc

    def items(request: bytes, context: Any) -> Iterator[bytes]:
        payload = RAW_PAYLOAD
        for _ in range(int(request)):
            yield payload

    handler = grpc.method_handlers_generic_handler(
        RAW_SERVICE,
        {
            RAW_METHOD: grpc.unary_stream_rpc_method_handler(
                items, request_deserializer=_identity, response_serializer=_identity
            )
        },
    )
    executor = futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="bench-raw-grpc")
    server = grpc.server(executor, handlers=[handler])
    try:
        port = server.add_insecure_port("127.0.0.1:0")
        if port == 0:
            print("raw-server: could not bind 127.0.0.1", file=sys.stderr, flush=True)
            return 1
        server.start()
        _say(f"port {port}")
        sys.stdin.read()  # until the bench closes our stdin
    finally:
        server.stop(None).wait()
        executor.shutdown(wait=True)
    return 0


def publisher(n: int, chunk: int, timeout: float, warm: int) -> int:
    import gc

    from actorwire.actors import configure_logging

    configure_logging(level="warning", stream=sys.stderr)
    from actorwire.adapters.keysquare import KeySession

    records = price_records(n)
    chunks = [records[i : i + chunk] for i in range(0, n, chunk)]
    warm_chunks = [price_records(min(chunk, warm - i), f"W{i:07d}-") for i in range(0, warm, chunk)]
    # The prebuilt records are scaffolding: keep full collections from rescanning them.
    gc.collect()
    gc.freeze()
    url = _stdin_line()
    ks = KeySession(APP, API_KEY, url, timeout=SESSION_TIMEOUT)
    try:
        publish_many = ks.publish_many
        for c in warm_chunks:
            publish_many(DATA_TYPE, c, timeout=timeout)
        _say("ready")
        if _stdin_line() != "go":
            return 1
        start = time.monotonic()
        _say(f"start {start!r}")
        # PIPELINE chunks in flight at once, so encoding the next chunk overlaps the
        # platform's work on the previous one (each call still blocks for its own ack).
        with ThreadPoolExecutor(max_workers=PIPELINE, thread_name_prefix="publish") as pool:
            for ack in pool.map(lambda c: publish_many(DATA_TYPE, c, timeout=timeout), chunks):
                if ack["status"] != "OK":
                    return 1
        _say(f"sent {time.monotonic()!r}")
        sys.stdin.read()  # until the bench closes our stdin
    finally:
        ks.stop()
    return 0


def main(argv: list[str]) -> int:
    role, *args = argv
    if role == "raw-server" and not args:
        return raw_server()
    if role == "publisher" and len(args) == 4:
        return publisher(int(args[0]), int(args[1]), float(args[2]), int(args[3]))
    print(
        f"usage: _ks_worker.py raw-server | publisher N CHUNK TIMEOUT WARM; got {argv}",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
