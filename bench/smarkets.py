"""smarkets adapter: quote updates from the exchange to a handler, against smk-python-sdk 9.4.4.

``smarkets_quotes``
    N CONTRACT_QUOTES payloads, each a contract's book as the exchange sends it (three
    levels a side, best first; every fourth with an execution, the last execution and the
    high and low price), are encoded once (seqs 2..N+1) and written to a file. Every run
    starts a fresh server process, ``python -m bench.smarkets serve FILE TIMEOUT``, on
    127.0.0.1: it answers the client's LOGIN with a LOGIN_RESPONSE (seq 1, reset 2) and,
    when the bench tells it ``go``, writes the whole file with one ``sendall`` (as fast as
    the socket takes it). Its own process, so its CPU never shares the client's GIL.

    actorwire: ``StreamingAPIClient(Session(SessionSettings(..., ssl=False)))`` with a
    ``seto.contract_quotes`` handler that counts, takes ``time.monotonic()`` at the N-th
    and sets a ``threading.Event``; ``client.start()`` (the supervised link, in the bench
    process) returns once logged in; ``client.stop()`` after the run. Baseline, measured
    in the same run: the SDK's own loop in its own process, ``bench/_smk_sdk_loop.py``
    under the SDK's venv python (smk-python-sdk 9.4.4 with protobuf 3.20.3, pure-Python
    protobuf, as its users run it on Python 3.11): ``login()``, then ``client.read()``
    until the same handler has counted N. Both are timed from the bench's
    ``time.monotonic()`` just before it tells the server ``go`` to the handler's N-th call
    (CLOCK_MONOTONIC is system-wide on Linux). Target: actorwire >= 10x the SDK.

The SDK's venv is the test suite's peer (``tests.support.smkpeer.sdk_python``: built once
from the package registry and cached outside the repository). When it cannot be had, the
row reports the actorwire figure alone with ``baseline_unavailable`` saying why.
"""

from __future__ import annotations

import contextlib
import json
import random
import select
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._harness import BenchError, Config, environment, interleave, median, progress
from .keysquare import Child, child

TARGET_FACTOR = 10.0
STARTUP_TIMEOUT = 30.0  # a child's first line (imports, bind, connect, login)
SDK_LOOP = Path(__file__).with_name("_smk_sdk_loop.py")
HOST = "127.0.0.1"
USERNAME, PASSWORD = "bench", "bench-password"
SESSION = "bench-session"
LOGIN_RESET = 2  # the LOGIN_RESPONSE's reset: the client's next outgoing seq
MARKET_ID = 100
CONTRACTS = (1001, 1002, 1003)  # a three-way market: home, draw, away
LEVELS = 3  # price levels a side
EXECUTION_EVERY = 4  # every fourth update carries an execution
SEED = 20190101


@dataclass(frozen=True)
class Sizes:
    n: int
    warm_n: int
    runs: int


def _sizes(cfg: Config) -> Sizes:
    if cfg.quick:
        return Sizes(n=20_000, warm_n=2_000, runs=cfg.runs)
    return Sizes(n=100_000, warm_n=5_000, runs=cfg.runs)


# -- the stream ----------------------------------------------------------------------------


def quote_stream(n: int, first_seq: int = 2, seed: int = SEED) -> bytes:
    """``n`` framed CONTRACT_QUOTES payloads with seqs ``first_seq`` on, as the exchange
    (``adapters/smarkets/exchange.py``) writes a book: bids best (highest) first, offers
    best (lowest) first, prices in basis points of percent on a 10-point tick, quantities
    in 1/10000 of the payout currency; every ``EXECUTION_EVERY``-th carries an execution,
    ``last_execution`` and the high and low price. Deterministic for a seed."""
    from actorwire.adapters.smarkets import frame_encode, seto

    rng = random.Random(seed)
    out = bytearray()
    mids = {contract: rng.randrange(1500, 6000, 10) for contract in CONTRACTS}
    highs = dict(mids)
    lows = dict(mids)
    last: dict[int, tuple[int, int, seto.Side, int]] = {}
    micros = 1_546_300_800_000_000
    for i in range(n):
        contract = CONTRACTS[i % len(CONTRACTS)]
        mid = min(max(mids[contract] + rng.choice((-10, 0, 0, 10)), 200), 9700)
        mids[contract] = mid
        payload = seto.Payload(type=seto.PAYLOAD_CONTRACT_QUOTES)
        payload.eto_payload.seq = first_seq + i
        body = payload.contract_quotes
        body.market_id = MARKET_ID
        body.contract_id = contract
        for level in range(LEVELS):
            body.bids.add(price=mid - 10 * (level + 1), quantity=rng.randrange(10_000, 5_000_000))
        for level in range(LEVELS):
            body.offers.add(price=mid + 10 * (level + 1), quantity=rng.randrange(10_000, 5_000_000))
        micros += rng.randrange(100, 50_000)
        if i % EXECUTION_EVERY == 0:
            side = rng.choice((seto.SIDE_BUY, seto.SIDE_SELL))
            price = mid + (10 if side == seto.SIDE_BUY else -10)
            quantity = rng.randrange(10_000, 1_000_000)
            body.executions.add(price=price, quantity=quantity, liquidity=side, microseconds=micros)
            last[contract] = (price, quantity, side, micros)
            highs[contract] = max(highs[contract], price)
            lows[contract] = min(lows[contract], price)
        if contract in last:
            price, quantity, side, at = last[contract]
            execution = body.last_execution
            execution.price, execution.quantity, execution.microseconds = price, quantity, at
            execution.liquidity = side
            body.high_price, body.low_price = highs[contract], lows[contract]
        frame_encode(out, payload.SerializeToString())
    return bytes(out)


# -- the server process --------------------------------------------------------------------


class _Stopped(Exception):
    """The server's stdin closed: the bench has given up on this run."""


def _wait(sock: socket.socket | None, timeout: float, what: str) -> str | None:
    """Wait for ``sock`` to be readable (None) or for a line on stdin (the line); raises
    _Stopped when stdin closes and TimeoutError saying ``what`` did not happen in time."""
    watch: list[Any] = [sys.stdin] if sock is None else [sock, sys.stdin]
    ready = select.select(watch, [], [], timeout)[0]
    if not ready:
        raise TimeoutError(f"{what} within {timeout}s")
    if sys.stdin in ready:
        line = sys.stdin.readline()
        if not line:
            raise _Stopped
        return line.strip()
    return None


def _serve(stream_path: str, timeout: float) -> int:
    """The server process: ``port P``, then ``login`` once the LOGIN is answered; on a
    ``go`` line the whole stream in one ``sendall`` and ``sent T``; then it reads and
    drops what the client sends until the client closes. It stops whenever stdin closes."""
    try:
        return _serve_one(Path(stream_path).read_bytes(), timeout)
    except _Stopped:
        return 0
    except (TimeoutError, OSError, BenchError) as exc:
        print(f"smarkets server: {exc}", file=sys.stderr)
        return 1


def _serve_one(stream: bytes, timeout: float) -> int:
    from actorwire.adapters.smarkets import frame_decode_all, frame_encode, seto
    from actorwire.adapters.smarkets.protocol import login_response

    with socket.create_server((HOST, 0)) as listener:
        print(f"port {listener.getsockname()[1]}", flush=True)
        if _wait(listener, STARTUP_TIMEOUT, "no client connected") is not None:
            raise BenchError("a line on stdin before the client connected")
        conn, _ = listener.accept()
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        payloads: list[bytes] = []
        while not payloads:
            if _wait(conn, STARTUP_TIMEOUT, "no LOGIN") is not None:
                raise BenchError("a line on stdin before the LOGIN")
            data = conn.recv(65536)
            if not data:
                raise BenchError("the client closed before its LOGIN")
            payloads, buf = frame_decode_all(buf + data)
        if seto.Payload.FromString(payloads[0]).type != seto.PAYLOAD_LOGIN:
            raise BenchError("the client's first payload is not a LOGIN")
        answer = bytearray()
        frame_encode(answer, login_response(1, SESSION, LOGIN_RESET).SerializeToString())
        conn.sendall(answer)
        print("login", flush=True)
        # What the client sends before go (a PING when it is quiet) stays unread till then.
        line = _wait(None, timeout, "no go")
        if line != "go":
            raise BenchError(f"expected go on stdin, got {line!r}")
        conn.settimeout(timeout)
        conn.sendall(stream)
        print(f"sent {time.monotonic()!r}", flush=True)
        while True:
            if _wait(conn, timeout, "the client did not close") is None and not conn.recv(65536):
                return 0


def server_process(stream_path: Path, timeout: float) -> contextlib.AbstractContextManager[Child]:
    # Found as the bench itself was (``python -m bench`` from the repository root).
    argv = [sys.executable, "-m", "bench.smarkets", "serve", str(stream_path), repr(timeout)]
    return child("the smarkets server process", argv)


# -- one run a side ------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One timed run: N quotes, seconds from ``go`` to the N-th handler call, and the
    server's write (``go`` to ``sendall`` done)."""

    n: int
    seconds: float
    server_seconds: float

    @property
    def rate(self) -> float:
        return self.n / self.seconds


def _describe(run: Run) -> str:
    return f"{run.rate:,.0f} msg/s ({run.seconds:.3f}s, server write {run.server_seconds:.3f}s)"


def actorwire_quotes(n: int, stream_path: Path, timeout: float) -> Run:
    """One run: a fresh server process and a fresh supervised client here."""
    from actorwire.adapters.smarkets import Session, SessionSettings, StreamingAPIClient

    done = threading.Event()
    seen = 0
    end = 0.0

    def on_quotes(message: Any) -> None:
        nonlocal seen, end  # the client's actor is the only caller
        seen += 1
        if seen == n:
            end = time.monotonic()
            done.set()

    with server_process(stream_path, timeout) as server:
        port = int(server.expect("port", STARTUP_TIMEOUT))
        settings = SessionSettings(
            username=USERNAME, password=PASSWORD, host=HOST, port=port, ssl=False
        )
        client = StreamingAPIClient(Session(settings))
        client.add_handler("seto.contract_quotes", on_quotes)
        try:
            client.start(timeout=STARTUP_TIMEOUT)
            server.expect("login", STARTUP_TIMEOUT)
            start = time.monotonic()
            server.send("go")
            if not done.wait(timeout):
                raise BenchError(f"the actorwire handler saw {seen} of {n} quotes in {timeout}s")
            sent = float(server.expect("sent", timeout))
        finally:
            client.stop()
    if seen != n:
        raise BenchError(f"the actorwire handler saw {seen} quotes, expected {n}")
    return Run(n=n, seconds=end - start, server_seconds=sent - start)


def sdk_quotes(
    python: Path, n: int, stream_path: Path, timeout: float, versions: dict[str, Any]
) -> Run:
    """One run: a fresh server process and a fresh SDK loop process."""
    from tests.support.smkpeer import PYTHON_FLAGS

    with server_process(stream_path, timeout) as server:
        port = server.expect("port", STARTUP_TIMEOUT)
        argv = [str(python), *PYTHON_FLAGS, str(SDK_LOOP), HOST, port, str(n), repr(timeout)]
        with child("the SDK client process", argv) as sdk:
            versions.update(_json(sdk.expect("ready", STARTUP_TIMEOUT)))
            server.expect("login", STARTUP_TIMEOUT)
            start = time.monotonic()
            server.send("go")
            end_text, _, count = sdk.expect("done", timeout).partition(" ")
            sent = float(server.expect("sent", timeout))
    if int(count) != n:
        raise BenchError(f"the SDK handler saw {count} quotes, expected {n}")
    return Run(n=n, seconds=float(end_text) - start, server_seconds=sent - start)


def _json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise BenchError(f"the SDK loop printed {text!r}, not a JSON object")
    return value


def sdk_venv() -> tuple[Path | None, str]:
    """The SDK venv's python, or None and why it cannot be had."""
    try:
        import pytest

        from tests.support.smkpeer import sdk_python
    except ImportError as exc:
        return None, f"the SDK peer's venv builder cannot be imported: {exc!r}"
    try:
        return sdk_python(), ""
    except pytest.skip.Exception as exc:  # the package registry cannot be reached
        return None, str(exc.msg)
    except (AssertionError, OSError, RuntimeError) as exc:
        return None, f"the SDK venv could not be built: {exc}"


# -- the benchmark -------------------------------------------------------------------------


def _env(sdk_versions: dict[str, Any]) -> dict[str, Any]:
    from importlib import metadata

    from google.protobuf.internal import api_implementation

    env = environment()
    env["actorwire_protobuf"] = metadata.version("protobuf")
    env["actorwire_protobuf_implementation"] = api_implementation.Type()
    env["sdk"] = sdk_versions or None
    return env


@contextlib.contextmanager
def _streams(sizes: Sizes) -> Iterator[tuple[Path, Path, int]]:
    """The timed and the warm-up stream files, and the size of one payload on average."""
    with tempfile.TemporaryDirectory(prefix="bench-smarkets-") as tmp:
        t0 = time.perf_counter()
        stream = quote_stream(sizes.n)
        path = Path(tmp) / "quotes.bin"
        path.write_bytes(stream)
        warm = Path(tmp) / "warm.bin"
        warm.write_bytes(quote_stream(sizes.warm_n, seed=SEED + 1))
        progress(
            f"smarkets_quotes: {sizes.n:,} CONTRACT_QUOTES, {len(stream):,} bytes, encoded "
            f"in {time.perf_counter() - t0:.2f}s (untimed)"
        )
        yield path, warm, len(stream) // sizes.n


def smarkets_quotes(cfg: Config) -> list[dict[str, Any]]:
    sizes = _sizes(cfg)
    n, timeout = sizes.n, cfg.timeout
    python, why = sdk_venv()
    if python is None:
        progress(f"smarkets_quotes: the SDK baseline is unavailable: {why}")
    sdk_versions: dict[str, Any] = {}
    with _streams(sizes) as (path, warm, frame_bytes):
        progress(f"smarkets_quotes: warm-up, then {sizes.runs} runs per side")
        variants: dict[str, Callable[[], Run]] = {
            "actorwire": lambda: actorwire_quotes(n, path, timeout),
        }
        actorwire_quotes(sizes.warm_n, warm, timeout)
        if python is not None:
            sdk_quotes(python, sizes.warm_n, warm, timeout, sdk_versions)
            variants["sdk"] = lambda: sdk_quotes(python, n, path, timeout, sdk_versions)
        res = interleave("smarkets_quotes", variants, sizes.runs, _describe)
    aw = res["actorwire"]
    base = res.get("sdk")
    aw_rate = median([r.rate for r in aw])
    base_rate = median([r.rate for r in base]) if base else None
    ratio = aw_rate / base_rate if base_rate else None
    row: dict[str, Any] = {
        "bench": "smarkets_quotes",
        "unit": "msg/s",
        "actorwire": round(aw_rate),
        "baseline": round(base_rate) if base_rate else None,
        "ratio": round(ratio, 3) if ratio else None,
        "ratio_meaning": "actorwire supervised client CONTRACT_QUOTES/s to a handler / "
        "smk-python-sdk 9.4.4 read loop quotes/s on the same byte stream, same run "
        "(median of runs; higher is better)",
        "target": f"actorwire >= {TARGET_FACTOR:g}x smk-python-sdk 9.4.4",
        "meets_target": ratio is not None and ratio >= TARGET_FACTOR,
        "runs": len(aw),
        "n": n,
        "payload_bytes_mean": frame_bytes,
        "stream": f"n framed CONTRACT_QUOTES (seqs 2..n+1) of market {MARKET_ID}, "
        f"contracts {list(CONTRACTS)} in turn, {LEVELS} bid and {LEVELS} offer levels best "
        f"first, every {EXECUTION_EVERY}th with an execution, and last_execution/high/low "
        "once a contract has traded; encoded once with actorwire's seto, the same bytes "
        "for both sides",
        "server": "its own process (python -m bench.smarkets serve), loopback 127.0.0.1: "
        "answers the LOGIN with a LOGIN_RESPONSE (seq 1, reset 2), then on go writes the "
        "whole stream with one sendall",
        "variant": "StreamingAPIClient(Session(SessionSettings(..., ssl=False))), "
        "add_handler('seto.contract_quotes', h), client.start() (supervised link; "
        "returns once logged in), in the bench process; h counts, takes "
        "time.monotonic() at n and sets an Event",
        "baseline_impl": "smk-python-sdk 9.4.4 in its own process under its venv "
        "(protobuf 3.20.3, pure-Python implementation, as the SDK's users run it: its "
        "generated code imports on Python 3.11 only under the pure-Python protobuf): "
        "StreamingAPIClient.login(), then `while count < n: client.read()` "
        "(the SDK's own read/dispatch loop) with the same handler",
        "timing": "from the bench's time.monotonic() just before it tells the server go, "
        "to the handler's time.monotonic() at the n-th quote (CLOCK_MONOTONIC is "
        "system-wide); login and start-up untimed",
        "actorwire_runs_msg_s": [round(r.rate) for r in aw],
        "baseline_runs_msg_s": [round(r.rate) for r in base] if base else None,
        "paired_ratios": (
            [round(a.rate / b.rate, 3) for a, b in zip(aw, base, strict=True)] if base else None
        ),
        "server_write_s": {
            "actorwire": round(median([r.server_seconds for r in aw]), 4),
            "sdk": round(median([r.server_seconds for r in base]), 4) if base else None,
        },
        "isolation": "every run: a fresh server process, a fresh client (actorwire: its "
        "own ActorSystem, stopped after the run; SDK: a fresh process); one untimed "
        f"warm-up run a side of {sizes.warm_n:,} quotes first",
        "env": _env(sdk_versions),
    }
    if python is None:
        row["baseline_unavailable"] = why
    return [row]


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "serve":
        sys.exit("usage: python -m bench.smarkets serve STREAM_FILE TIMEOUT")
    sys.exit(_serve(sys.argv[2], float(sys.argv[3])))
