"""streamsea adapter: deliveries to a subscriber's handler, against raw websockets + json and
stream-sea-client 0.7.0. Two rows.

The stream, both rows: ``ticks`` (a price tick of 8 fields: ``symbol``, ``bid``, ``ask``,
``bidSize``, ``askSize``, ``last``, ``volume``, ``time`` as ``YYYY-MM-DDTHH:mm:ssZ``; about
130 bytes of JSON), N distinct ticks made up front (untimed), the same every run.

``streamsea_fanout`` (the clients; the targets apply here)
    The bench encodes the N deliveries once (untimed) exactly as the embedded server sends
    them to a subscription whose subscribe was id 2 (every client's first request after the
    authenticate) and whose reply said seq 0: ``encode_delivery(2, encode_payload(tick),
    stream="ticks", seq=k)`` for k = 1..N (the server's own functions, from
    ``actorwire.adapters.streamsea.protocol``), each framed by websockets'
    ``Frame.serialize`` as an unmasked text frame, as a server's are; they go to a file
    with the two replies. Every run starts a fresh scripted server process,
    ``python -m bench._ss_wire_server FILE TIMEOUT`` (its docstring says more): it takes one
    websocket (the upgrade by websockets' sans-I/O ``ServerProtocol``), answers the
    authenticate (id 1, success) and the subscribe (same id, action ``subscription``,
    success, ``streamName`` and actorwire's optional ``"seq":0,"epoch":"bench"``, which the
    other clients ignore), and on ``go`` writes the frames with one ``sendall`` per 256 KiB
    chunk, as fast as the socket takes them. It does no work per message, so the figures
    are the clients'. ``server_write_s`` is its time from the first ``sendall`` to the last
    returning (the socket buffers hold the rest).

``streamsea_fanout_embedded`` (end to end; report only)
    Every run a fresh ``python -m bench.streamsea serve N TIMEOUT``: the embedded stream-sea
    server (``serve()``, default config, client ``demo``) on 127.0.0.1 port 0 with the
    ``ticks`` stream defined by its schema. It prints its port, polls ``server.stats()``
    until the stream has a live subscriber and says so; on ``go`` it publishes the N ticks
    with ``server.publish`` in a tight loop (each checked against the schema, logged,
    fanned out to the one subscriber) and reports the loop's times: its rate is
    ``server_publish_msgs_per_s``. ``client_over_publish_rate`` is each side's rate over
    its server's publish rate; ``server_bound`` is true when every side kept up with the
    publish loop (>= 0.95 of it): then the server is the ceiling and the ratios say little
    about the clients (hence the first row). Sides: actorwire, raw, and 0.7.0 with current
    websockets; no warm-up runs (the first row's runs warmed the bench process).

The clients, each timed from the bench's ``time.monotonic()`` just before it tells the
server ``go`` to the handler's ``time.monotonic()`` at the N-th payload (CLOCK_MONOTONIC is
system-wide on Linux); connecting, authenticating and subscribing are untimed:

- actorwire, in the bench process: ``StreamSeaConnection(...)`` opened with ``with`` (the
  supervised link), ``conn.subscribe("ticks", callback=handler)`` (a fresh fan-out group;
  the callback runs in the subscription's own actor); the handler counts, takes
  ``time.monotonic()`` at N and sets a ``threading.Event``.
- raw ``websockets`` + ``json``, in the bench process as well (the same placement: one client
  process beside the server process): one thread runs ``asyncio.run`` of a
  ``websockets.asyncio.client.connect`` client that sends the authenticate and subscribe by
  hand, reads the subscribe's reply, then ``json.loads`` each message and calls the same
  handler with its ``payload`` (the message's id checked, as any client must).
- stream-sea-client 0.7.0, in its own process (``bench/_ss_client_loop.py``): ``async with
  StreamSeaConnection(...) as c``, ``it = await c.subscribe("ticks")``, ``async for payload
  in it`` calling a counting handler; it prints its time at the N-th. Two installs, each
  labelled in the rows:

  (a) ``sdk_0_7_0_msgs_per_s``: as shipped, with its own pins (``websockets~=8.1``,
      ``requests~=2.24``) on Python 3.9, where they work (PEERS.md 2.2: on Python >= 3.10
      its subscribe fails with the pinned websockets). The venv is made once with
      ``python3.9 -m venv`` and pip from the package registry by package name, cached under
      ``~/.cache/actorwire/peers/`` by ``tests/support/peervenv.py``'s machinery
      (``shipped_venv``). python3.9 is the first that runs of ``python3.9`` on PATH and
      pyenv's ``versions/3.9.*``; when none does, or the registry cannot be reached, the row
      says why in ``sdk_0_7_0_unavailable``.
  (b) ``sdk_0_7_0_current_websockets_msgs_per_s``: the test suite's peer venv
      (``tests.support.sspeer.ss_python``: Python 3.11, the client installed ``--no-deps``
      with the registry's current requests and websockets, as it must be run on Python >=
      3.10); when it cannot be had, ``sdk_0_7_0_current_websockets_unavailable`` says why.

Targets (first row): actorwire >= 0.8x raw websockets + json (``ratio_vs_raw``) and >= 2x
0.7.0 as shipped, (a) (``ratio_vs_0_7_0``); ``ratio_vs_0_7_0_current_websockets`` is shown
beside it. Medians of runs interleaved run by run, the order rotating.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._harness import BenchError, Config, environment, interleave, median, progress
from ._ss_wire_server import CHUNK, CLIENT_ID, CLIENT_SECRET, HOST, STREAM
from .keysquare import Child, child

if TYPE_CHECKING:
    from actorwire.adapters.streamsea import SchemaDefinition

TARGET_VS_RAW = 0.8
TARGET_VS_SDK = 2.0
STARTUP_TIMEOUT = 30.0  # a child's first line, connecting and subscribing
SERVER_BOUND = 0.95  # a client at this share of the publish rate or more kept up with it
POLL_INTERVAL = 0.01  # the embedded server's checks for a live subscriber
CLIENT_LOOP = Path(__file__).with_name("_ss_client_loop.py")
SUBSCRIBE_ID = 2  # every client's subscribe: the first request after the authenticate (id 1)
EPOCH = "bench"
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "JPM")
FIRST_TICK = 1_709_303_400  # 2024-03-01T14:30:00Z
TICKS_PER_SECOND = 50  # the ticks' time advances a second every this many
SEED = 20240301
SHIPPED_CLIENT = "stream-sea-client==0.7.0"  # installed with its own pins
SHIPPED_PINS = {"websockets": 8, "requests": 2}  # ~=8.1 and ~=2.24: the major versions
PROBE_TIMEOUT = 30.0  # a python's version check


@dataclass(frozen=True)
class Sizes:
    n: int  # the client-bound row
    embedded_n: int  # the embedded row: the server's ~50k msg/s sets its pace
    warm_n: int
    runs: int


def _sizes(cfg: Config) -> Sizes:
    if cfg.quick:
        return Sizes(n=10_000, embedded_n=5_000, warm_n=2_000, runs=cfg.runs)
    return Sizes(n=60_000, embedded_n=30_000, warm_n=5_000, runs=cfg.runs)


# -- the stream ----------------------------------------------------------------------------


def tick_schema() -> SchemaDefinition:
    """The ``ticks`` stream's schema: one price tick of eight fields."""
    from actorwire.adapters.streamsea import FieldType, SchemaDefinition

    schema = SchemaDefinition(STREAM, 1)
    for name, kind in (
        ("symbol", FieldType.STRING),
        ("bid", FieldType.FLOAT),
        ("ask", FieldType.FLOAT),
        ("bidSize", FieldType.INTEGER),
        ("askSize", FieldType.INTEGER),
        ("last", FieldType.FLOAT),
        ("volume", FieldType.INTEGER),
        ("time", FieldType.DATE),
    ):
        schema.add_field(name, kind)
    return schema


def ticks(n: int, seed: int = SEED) -> list[dict[str, Any]]:
    """``n`` distinct price ticks, the symbols in turn, each mid on a random walk of one
    cent, spreads of one to five cents, sizes in round lots. Deterministic for a seed."""
    rng = random.Random(seed)
    mids = {symbol: rng.randrange(5_000, 50_000) for symbol in SYMBOLS}  # in cents
    volumes = dict.fromkeys(SYMBOLS, 0)
    out: list[dict[str, Any]] = []
    for i in range(n):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        mid = max(mids[symbol] + rng.choice((-1, 0, 0, 1)), 100)
        mids[symbol] = mid
        half = rng.randrange(1, 6)
        volumes[symbol] += rng.randrange(1, 20) * 100
        at = time.gmtime(FIRST_TICK + i // TICKS_PER_SECOND)
        out.append(
            {
                "symbol": symbol,
                "bid": (mid - half) / 100,
                "ask": (mid + half) / 100,
                "bidSize": rng.randrange(1, 50) * 100,
                "askSize": rng.randrange(1, 50) * 100,
                "last": (mid + rng.choice((-half, half))) / 100,
                "volume": volumes[symbol],
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", at),
            }
        )
    return out


# -- the server process --------------------------------------------------------------------


class _Stopped(Exception):
    """The server's stdin closed: the bench has given up on this run (or it is over)."""


def _line(timeout: float) -> str | None:
    """The next line on stdin, or None when none came within ``timeout``; raises _Stopped
    when stdin closes."""
    if not select.select([sys.stdin], [], [], timeout)[0]:
        return None
    line = sys.stdin.readline()
    if not line:
        raise _Stopped
    return line.strip()


def _serve(n: int, timeout: float) -> int:
    """The server process: ``port P``; ``subscribed`` once the stream has a live member;
    on ``go``, N publishes and ``published T0 T1`` (the loop's start and end); then it
    serves until stdin closes."""
    from actorwire.actors import configure_logging
    from actorwire.adapters.streamsea import serve

    configure_logging(level="warning", stream=sys.stderr)
    server = serve(HOST, 0)
    try:
        server.define(tick_schema())
        payloads = ticks(n)
        print(f"port {server.port}", flush=True)
        _publish(server, payloads, timeout)
        while _line(timeout) is None:
            pass
    except _Stopped:
        return 0
    except (TimeoutError, BenchError, OSError, ValueError) as exc:
        print(f"stream-sea server: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()
    return 0


def _publish(server: Any, payloads: list[dict[str, Any]], timeout: float) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while server.stats()["members"] < 1:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no subscriber within {STARTUP_TIMEOUT}s")
        if _line(POLL_INTERVAL) is not None:
            raise BenchError("a line on stdin before the subscriber subscribed")
    print("subscribed", flush=True)
    line = _line(timeout)
    if line != "go":
        raise BenchError(f"expected go on stdin within {timeout}s, got {line!r}")
    publish = server.publish
    t0 = time.monotonic()
    for payload in payloads:
        publish(STREAM, payload)
    t1 = time.monotonic()
    print(f"published {t0!r} {t1!r}", flush=True)


def embedded_process(n: int, timeout: float) -> contextlib.AbstractContextManager[Child]:
    # Found as the bench itself was (``python -m bench`` from the repository root).
    argv = [sys.executable, "-m", "bench.streamsea", "serve", str(n), repr(timeout)]
    return child("the stream-sea server process", argv)


# -- the scripted server's stream ----------------------------------------------------------


def delivery_stream(n: int, seed: int = SEED) -> bytes:
    """The file ``bench._ss_wire_server`` serves: a JSON header line (the authenticate and
    subscribe replies, the subscribe's id) and ``n`` delivery frames, each the embedded
    server's text for tick k (seq k) as an unmasked websocket text frame."""
    from actorwire.adapters.streamsea.protocol import (
        AuthenticateReply,
        SubscriptionReply,
        encode,
        encode_delivery,
        encode_payload,
    )
    from websockets.frames import Frame, Opcode

    header = {
        "auth": encode(AuthenticateReply(True)),
        "subscribed": encode(SubscriptionReply(SUBSCRIBE_ID, STREAM, seq=0, epoch=EPOCH)),
        "subscribe_id": SUBSCRIBE_ID,
    }
    out = bytearray(json.dumps(header).encode() + b"\n")
    for seq, tick in enumerate(ticks(n, seed), 1):
        text = encode_delivery(SUBSCRIBE_ID, encode_payload(tick), stream=STREAM, seq=seq)
        out += Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
    return bytes(out)


@contextlib.contextmanager
def _streams(sizes: Sizes) -> Iterator[tuple[Path, Path, int]]:
    """The timed and the warm-up stream files, and a delivery frame's mean size."""
    with tempfile.TemporaryDirectory(prefix="bench-streamsea-") as tmp:
        t0 = time.perf_counter()
        stream = delivery_stream(sizes.n)
        path = Path(tmp) / "deliveries.bin"
        path.write_bytes(stream)
        warm = Path(tmp) / "warm.bin"
        warm.write_bytes(delivery_stream(sizes.warm_n, seed=SEED + 1))
        frames = len(stream.partition(b"\n")[2])
        progress(
            f"streamsea_fanout: {sizes.n:,} deliveries, {frames:,} bytes framed, encoded in "
            f"{time.perf_counter() - t0:.2f}s (untimed)"
        )
        yield path, warm, round(frames / sizes.n)


def wire_process(stream_path: Path, timeout: float) -> contextlib.AbstractContextManager[Child]:
    argv = [sys.executable, "-m", "bench._ss_wire_server", str(stream_path), repr(timeout)]
    return child("the scripted stream-sea server process", argv)


Server = Callable[[], contextlib.AbstractContextManager[Child]]
"""Starts a fresh server process: ``port P``, ``subscribed``, then on ``go`` the N
deliveries and ``published T0 T1``."""


# -- the handler and one run a side ----------------------------------------------------------


@dataclass
class Count:
    """What the counting handler saw: how many, and when the N-th came."""

    n: int
    seen: int = 0
    end: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)


def counting_handler(count: Count) -> Callable[[Any], None]:
    """The handler every in-process client calls with each payload: counts, and at the
    N-th takes ``time.monotonic()`` and sets the Event."""

    def handler(payload: Any) -> None:
        count.seen += 1  # one caller at a time: the subscription's actor, or the raw loop
        if count.seen == count.n:
            count.end = time.monotonic()
            count.done.set()

    return handler


@dataclass(frozen=True)
class Run:
    """One timed run: N payloads, seconds from ``go`` to the N-th handler call, and the
    server's own time (the embedded server's publish loop; the scripted server's writes)."""

    n: int
    seconds: float
    server_seconds: float

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    @property
    def server_rate(self) -> float:
        return self.n / self.server_seconds


def _describe_wire(run: Run) -> str:
    return f"{run.rate:,.0f} msg/s ({run.seconds:.3f}s; server writes {run.server_seconds:.3f}s)"


def _describe_embedded(run: Run) -> str:
    return (
        f"{run.rate:,.0f} msg/s ({run.seconds:.3f}s; server published at "
        f"{run.server_rate:,.0f} msg/s)"
    )


def _go(server: Child, count: Count, timeout: float, who: str) -> Run:
    """Tell the server ``go`` once its subscriber is in place and wait for the handler's
    N-th call."""
    server.expect("subscribed", STARTUP_TIMEOUT)
    start = time.monotonic()
    server.send("go")
    if not count.done.wait(timeout):
        raise BenchError(f"the {who} handler saw {count.seen} of {count.n} payloads in {timeout}s")
    t0, t1 = (float(t) for t in server.expect("published", timeout).split())
    return Run(n=count.n, seconds=count.end - start, server_seconds=t1 - t0)


def actorwire_fanout(server_process: Server, n: int, timeout: float) -> Run:
    """One run: a fresh server process and a fresh supervised connection here."""
    from actorwire.adapters.streamsea import StreamSeaConnection

    count = Count(n)
    with server_process() as server:
        port = int(server.expect("port", STARTUP_TIMEOUT))
        with StreamSeaConnection(
            remote_host=HOST, remote_port=port, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        ) as conn:
            conn.subscribe(STREAM, callback=counting_handler(count), timeout=STARTUP_TIMEOUT)
            run = _go(server, count, timeout, "actorwire")
    if count.seen != n:
        raise BenchError(f"the actorwire handler saw {count.seen} payloads, expected {n}")
    return run


async def _raw_client(port: int, count: Count, subscribed: threading.Event) -> None:
    """stream-sea by hand: authenticate, subscribe, then ``json.loads`` each message and
    hand its payload to the handler until it has counted N."""
    from websockets.asyncio.client import connect

    handler = counting_handler(count)
    async with connect(f"ws://{HOST}:{port}/api/v1/streams") as ws:
        auth = {"type": "basic", "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}
        await ws.send(json.dumps({"id": 1, "action": "authenticate", "payload": auth}))
        reply = json.loads(await ws.recv())
        if reply.get("success") is not True:
            raise BenchError(f"raw client: authenticate refused: {reply.get('error')!r:.200}")
        await ws.send(json.dumps({"id": SUBSCRIBE_ID, "action": "subscribe", "payload": STREAM}))
        reply = json.loads(await ws.recv())
        if reply.get("action") != "subscription" or reply.get("success") is not True:
            raise BenchError(f"raw client: subscribe refused: {reply!r:.200}")
        subscribed.set()
        loads, recv, n = json.loads, ws.recv, count.n
        while count.seen < n:
            message = loads(await recv())
            if message["id"] == SUBSCRIBE_ID:
                handler(message["payload"])


def raw_fanout(server_process: Server, n: int, timeout: float) -> Run:
    """One run: a fresh server process and a fresh raw client on a thread here."""
    count = Count(n)
    subscribed = threading.Event()
    failure: list[BaseException] = []

    with server_process() as server:
        port = int(server.expect("port", STARTUP_TIMEOUT))

        def client() -> None:
            try:
                asyncio.run(asyncio.wait_for(_raw_client(port, count, subscribed), timeout))
            except BaseException as exc:
                failure.append(exc)
                subscribed.set()
                count.done.set()

        thread = threading.Thread(target=client, name="raw-websockets-client")
        thread.start()
        try:
            if not subscribed.wait(STARTUP_TIMEOUT) or failure:
                raise BenchError(f"the raw client did not subscribe: {failure or 'no answer'}")
            run = _go(server, count, timeout, "raw websockets")
        finally:
            thread.join(timeout)
    if failure:
        raise BenchError(f"the raw client failed: {failure[0]!r}")
    if count.seen != n:
        raise BenchError(f"the raw handler saw {count.seen} payloads, expected {n}")
    return run


@dataclass(frozen=True)
class Sdk:
    """One install of stream-sea-client 0.7.0: its venv's python, and the versions its
    loop reported (filled by the first run)."""

    side: str  # its name in the rows: SHIPPED or CURRENT
    label: str
    python: Path
    versions: dict[str, Any] = field(default_factory=dict)


def sdk_fanout(server_process: Server, sdk: Sdk, n: int, timeout: float) -> Run:
    """One run: a fresh server process and a fresh 0.7.0 loop process."""
    from tests.support.sspeer import PYTHON_FLAGS

    with server_process() as server:
        port = server.expect("port", STARTUP_TIMEOUT)
        argv = [str(sdk.python), *PYTHON_FLAGS, str(CLIENT_LOOP), HOST, port, STREAM, str(n)]
        argv.append(repr(timeout))
        with child(f"the stream-sea-client 0.7.0 ({sdk.label}) process", argv) as loop:
            sdk.versions.update(_json(loop.expect("ready", STARTUP_TIMEOUT)))
            server.expect("subscribed", STARTUP_TIMEOUT)
            start = time.monotonic()
            server.send("go")
            end_text, _, seen = loop.expect("done", timeout).partition(" ")
            t0, t1 = (float(t) for t in server.expect("published", timeout).split())
    if int(seen) != n:
        raise BenchError(f"the 0.7.0 ({sdk.label}) handler saw {seen} payloads, expected {n}")
    return Run(n=n, seconds=float(end_text) - start, server_seconds=t1 - t0)


def _json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise BenchError(f"the 0.7.0 loop printed {text!r}, not a JSON object")
    return value


# -- the 0.7.0 venvs -------------------------------------------------------------------------


def _peer(build: Callable[[], Path], what: str) -> tuple[Path | None, str]:
    """``build()``'s python, or None and why it cannot be had."""
    try:
        import pytest
    except ImportError as exc:
        return None, f"the peers' venv builder cannot be imported: {exc!r}"
    try:
        return build(), ""
    except pytest.skip.Exception as exc:  # the package registry cannot be reached
        return None, str(exc.msg)
    except (AssertionError, OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return None, f"the {what} venv could not be built: {exc}"


def current_websockets_venv() -> tuple[Path | None, str]:
    """(b): the test suite's peer, 0.7.0 ``--no-deps`` with current websockets on 3.11."""
    from tests.support.sspeer import ss_python

    return _peer(ss_python, "0.7.0 (current websockets)")


def _python39() -> tuple[Path, str] | str:
    """The first python3.9 that runs (PATH, then pyenv's versions) and its version, or
    why there is none."""
    candidates: list[Path] = []
    on_path = shutil.which("python3.9")
    if on_path:
        candidates.append(Path(on_path))
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    installed = pyenv.glob("versions/3.9.*/bin/python3.9")
    candidates += sorted(
        installed,
        key=lambda p: [int(x) for x in p.parts[-3].split(".")[:3] if x.isdigit()],
        reverse=True,
    )
    probe = "import sys, ssl, venv; print('%d.%d.%d' % sys.version_info[:3])"
    tried: list[str] = []
    for python in candidates:
        try:
            proc = subprocess.run(
                [str(python), "-I", "-c", probe],
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"{python}: {exc}")
            continue
        version = proc.stdout.strip()
        if proc.returncode == 0 and version.startswith("3.9."):
            return python, version
        tried.append(f"{python}: exit {proc.returncode} {proc.stderr.strip()[-200:]!r}")
    if not candidates:
        return f"no python3.9 on PATH nor under {pyenv}/versions"
    return "no python3.9 runs: " + "; ".join(tried)


def _shipped_installed(venv: Path) -> dict[str, str] | str:
    """The versions of the client and its dependencies the venv imports, or why not; a
    venv whose websockets or requests are not the pinned major versions is not as shipped."""
    from tests.support.peervenv import run_python
    from tests.support.sspeer import CHECK, PYTHON_FLAGS

    versions = run_python(venv, PYTHON_FLAGS, CHECK)
    if isinstance(versions, str):
        return versions
    if not isinstance(versions, dict):
        return f"unexpected output: {versions!r}"
    name, version = SHIPPED_CLIENT.split("==")
    if versions.get(name) != version:
        return f"holds {versions}, expected {name} {version}"
    for dep, major in SHIPPED_PINS.items():
        if str(versions.get(dep, "")).split(".")[0] != str(major):
            return f"holds {dep} {versions.get(dep)}, not its pin's {major}.x"
    return versions


def shipped_venv() -> tuple[Path | None, str]:
    """(a): the python of a Python 3.9 venv with 0.7.0 and its own pins, built once from the
    registry and cached with the peers, or None and why it cannot be had."""
    found = _python39()
    if isinstance(found, str):
        return None, found
    python39, version = found
    from tests.support.peervenv import MARKER, VENV_TIMEOUT, cached_venv, pip_install

    def check(venv: Path) -> str | None:
        try:
            marker = json.loads((venv / MARKER).read_text())
        except (OSError, ValueError):
            return "incomplete"
        versions = _shipped_installed(venv)
        if isinstance(versions, str):
            return versions
        if not isinstance(marker, dict) or versions != marker.get("versions"):
            return f"holds {versions}, built with {marker!r:.200}"
        return None

    def build(venv: Path) -> None:
        subprocess.run(
            [str(python39), "-m", "venv", str(venv)],
            check=True,
            capture_output=True,
            timeout=VENV_TIMEOUT,
        )
        pip_install(venv, SHIPPED_CLIENT)  # with its own pins
        versions = _shipped_installed(venv)
        if isinstance(versions, str):
            raise AssertionError(f"the new venv is not 0.7.0 as shipped: {versions}")
        marker = {"client": SHIPPED_CLIENT, "no_deps": False, "python": version}
        (venv / MARKER).write_text(json.dumps({**marker, "versions": versions}) + "\n")

    key = f"{SHIPPED_CLIENT.replace('==', '-')}-shipped-py{version}"
    return _peer(lambda: cached_venv(key, check, build), "0.7.0 (as shipped)")


# -- the rows --------------------------------------------------------------------------------


def _env(sdks: list[Sdk]) -> dict[str, Any]:
    from importlib import metadata

    env = environment()
    env["websockets"] = metadata.version("websockets")
    env["sdk"] = {sdk.side: sdk.versions or None for sdk in sdks} or None
    return env


def _payload_bytes(n: int) -> int:
    sample = ticks(min(n, 1000))
    return round(sum(len(json.dumps(t, separators=(",", ":"))) for t in sample) / len(sample))


def _ratio(a: float, b: float | None) -> float | None:
    return round(a / b, 3) if b else None


def _rate(res: dict[str, list[Run]], side: str) -> float | None:
    runs = res.get(side)
    return median([r.rate for r in runs]) if runs else None


def _rounded(rate: float | None) -> int | None:
    return None if rate is None else round(rate)


def _n(res: dict[str, list[Run]]) -> int:
    return res["actorwire"][0].n


def _runs(res: dict[str, list[Run]], side: str) -> list[int] | None:
    runs = res.get(side)
    return [round(r.rate) for r in runs] if runs else None


SHIPPED, CURRENT = "sdk_0_7_0", "sdk_0_7_0_current_websockets"  # the sides' names
VARIANT = (
    "StreamSeaConnection(...) in a with block (supervised link), subscribe('ticks', "
    "callback=h) (a fresh fan-out group; h runs in the subscription's actor), in the bench "
    "process; h counts, takes time.monotonic() at n and sets an Event"
)
RAW_IMPL = (
    "websockets.asyncio.client.connect on a thread of the bench process (asyncio.run), "
    "authenticate and subscribe sent by hand, then json.loads of each message and "
    "h(message['payload']) after checking its id; the same h"
)
SDK_LOOP = (
    "in its own process (bench/_ss_client_loop.py): async with StreamSeaConnection(...) as "
    "c, it = await c.subscribe('ticks'), async for payload in it: a counting handler"
)
SHIPPED_IMPL = (
    "stream-sea-client 0.7.0 as shipped: pip install stream-sea-client==0.7.0 with its own "
    "pins (websockets~=8.1, requests~=2.24) in a python3.9 venv (on Python >= 3.10 its "
    f"subscribe fails with the pinned websockets), {SDK_LOOP}"
)
CURRENT_IMPL = (
    "stream-sea-client 0.7.0 installed --no-deps with the registry's current websockets and "
    f"requests on Python 3.11 (the test suite's peer; how it must run on >= 3.10), {SDK_LOOP}"
)
TIMING = (
    "from the bench's time.monotonic() just before it tells the server go, to the handler's "
    "time.monotonic() at the n-th payload (CLOCK_MONOTONIC is system-wide); connect, "
    "authenticate and subscribe untimed"
)
STREAM_TEXT = (
    f"n distinct price ticks of {len(SYMBOLS)} symbols in turn (8 fields: symbol, bid, ask, "
    f"bidSize, askSize, last, volume, time as YYYY-MM-DDTHH:mm:ssZ), stream {STREAM!r}"
)


def _wire_row(
    sizes: Sizes, res: dict[str, list[Run]], frame_bytes: int, unavailable: dict[str, str]
) -> dict[str, Any]:
    aw_rate = _rate(res, "actorwire")
    assert aw_rate is not None
    raw_rate, shipped_rate, current_rate = (_rate(res, s) for s in ("raw", SHIPPED, CURRENT))
    vs_raw, vs_shipped = _ratio(aw_rate, raw_rate), _ratio(aw_rate, shipped_rate)
    aw, raw = res["actorwire"], res["raw"]
    row: dict[str, Any] = {
        "bench": "streamsea_fanout",
        "unit": "msg/s",
        "msgs_per_s": round(aw_rate),
        "raw_websockets_msgs_per_s": _rounded(raw_rate),
        "ratio_vs_raw": vs_raw,
        "target_vs_raw": TARGET_VS_RAW,
        "sdk_0_7_0_msgs_per_s": _rounded(shipped_rate),
        "ratio_vs_0_7_0": vs_shipped,
        "target_vs_0_7_0": TARGET_VS_SDK,
        "sdk_0_7_0_current_websockets_msgs_per_s": _rounded(current_rate),
        "ratio_vs_0_7_0_current_websockets": _ratio(aw_rate, current_rate),
        "target": f"actorwire >= {TARGET_VS_RAW:g}x raw websockets + json and "
        f">= {TARGET_VS_SDK:g}x stream-sea-client 0.7.0 as shipped (websockets 8.1, "
        "Python 3.9)",
        "meets_target": vs_raw is not None
        and vs_raw >= TARGET_VS_RAW
        and vs_shipped is not None
        and vs_shipped >= TARGET_VS_SDK,
        "ratio_meaning": "payloads/s from go to the handler's n-th call, actorwire supervised "
        "subscription / the baseline on the same pre-encoded deliveries, same run (medians "
        "of runs; higher is better)",
        "runs": len(aw),
        "n": _n(res),
        "payload_bytes_mean": _payload_bytes(sizes.n),
        "frame_bytes_mean": frame_bytes,
        "stream": f"{STREAM_TEXT}; encoded once as the embedded server encodes deliveries "
        f"(encode_delivery(id {SUBSCRIBE_ID}, encode_payload(tick), stream, seq k), "
        "websockets text frames, unmasked), the same bytes for every side",
        "server": "its own process (python -m bench._ss_wire_server), 127.0.0.1: answers the "
        "authenticate and the subscribe (seq 0, epoch 'bench'), then on go writes the "
        f"pre-framed deliveries with one sendall per {CHUNK // 1024} KiB, as fast as the "
        "socket takes them (no work per message: the figures are the clients')",
        "variant": VARIANT,
        "raw_impl": RAW_IMPL,
        "sdk_0_7_0_impl": SHIPPED_IMPL,
        "sdk_0_7_0_current_websockets_impl": CURRENT_IMPL,
        "timing": TIMING,
        "actorwire_runs_msg_s": _runs(res, "actorwire"),
        "raw_runs_msg_s": _runs(res, "raw"),
        "sdk_0_7_0_runs_msg_s": _runs(res, SHIPPED),
        "sdk_0_7_0_current_websockets_runs_msg_s": _runs(res, CURRENT),
        "paired_ratios_vs_raw": [round(a.rate / b.rate, 3) for a, b in zip(aw, raw, strict=True)],
        "server_write_s": {
            side: round(median([r.server_seconds for r in runs]), 4) for side, runs in res.items()
        },
        "isolation": "every run: a fresh server process and a fresh client (actorwire: its "
        "own ActorSystem, stopped after the run; raw: a new thread and event loop; 0.7.0: a "
        f"fresh process); one untimed warm-up run a side of {sizes.warm_n:,} deliveries first",
    }
    for side, why in unavailable.items():
        row[f"{side}_unavailable"] = why
    return row


def _embedded_row(sizes: Sizes, res: dict[str, list[Run]], why: str | None) -> dict[str, Any]:
    aw_rate = _rate(res, "actorwire")
    assert aw_rate is not None
    raw_rate, current_rate = _rate(res, "raw"), _rate(res, CURRENT)
    aw, raw = res["actorwire"], res["raw"]
    kept_up = {
        side: round(median([r.rate / r.server_rate for r in runs]), 3) for side, runs in res.items()
    }
    row: dict[str, Any] = {
        "bench": "streamsea_fanout_embedded",
        "unit": "msg/s",
        "msgs_per_s": round(aw_rate),
        "raw_websockets_msgs_per_s": _rounded(raw_rate),
        "ratio_vs_raw": _ratio(aw_rate, raw_rate),
        "sdk_0_7_0_current_websockets_msgs_per_s": _rounded(current_rate),
        "ratio_vs_0_7_0_current_websockets": _ratio(aw_rate, current_rate),
        "target": "report only (end to end through the embedded server, whose publish loop "
        "is the ceiling when server_bound; the targets apply to streamsea_fanout)",
        "meets_target": True,
        "server_publish_msgs_per_s": round(
            median([r.server_rate for runs in res.values() for r in runs])
        ),
        "server_publish_msgs_per_s_by_side": {
            side: round(median([r.server_rate for r in runs])) for side, runs in res.items()
        },
        "client_over_publish_rate": kept_up,
        "server_bound": all(v >= SERVER_BOUND for v in kept_up.values()),
        "server_bound_meaning": "each side's msg/s over its server's publish rate, run by run "
        f"(median); when every side is >= {SERVER_BOUND:g}, every client kept up with the "
        "publish loop: the server was the ceiling and the ratios say little about the clients",
        "ratio_meaning": "payloads/s from the server's first publish to a handler, actorwire "
        "supervised subscription / the baseline on the same server and stream, same run "
        "(medians of runs; higher is better)",
        "runs": len(aw),
        "n": _n(res),
        "payload_bytes_mean": _payload_bytes(sizes.embedded_n),
        "stream": f"{STREAM_TEXT} with that schema",
        "server": "its own process (python -m bench.streamsea serve), the embedded server on "
        "127.0.0.1: once the one subscriber is in, on go calls server.publish n times in a "
        "tight loop (schema check, log, fan-out); server_publish_msgs_per_s is n over that "
        "loop's time: a client near it is held by the server",
        "variant": VARIANT,
        "raw_impl": RAW_IMPL,
        "sdk_0_7_0_current_websockets_impl": CURRENT_IMPL,
        "timing": TIMING,
        "actorwire_runs_msg_s": _runs(res, "actorwire"),
        "raw_runs_msg_s": _runs(res, "raw"),
        "sdk_0_7_0_current_websockets_runs_msg_s": _runs(res, CURRENT),
        "paired_ratios_vs_raw": [round(a.rate / b.rate, 3) for a, b in zip(aw, raw, strict=True)],
        "isolation": "every run: a fresh server process and a fresh client, as in "
        "streamsea_fanout; no warm-up runs (streamsea_fanout's runs came first)",
    }
    if why is not None:
        row["sdk_0_7_0_current_websockets_unavailable"] = why
    return row


def streamsea_fanout(cfg: Config) -> list[dict[str, Any]]:
    sizes = _sizes(cfg)
    timeout = cfg.timeout
    sdks: list[Sdk] = []
    unavailable: dict[str, str] = {}
    for side, label, find in (
        (SHIPPED, "as shipped, Python 3.9", shipped_venv),
        (CURRENT, "current websockets, Python 3.11", current_websockets_venv),
    ):
        python, why = find()
        if python is None:
            progress(f"streamsea_fanout: the 0.7.0 ({label}) baseline is unavailable: {why}")
            unavailable[side] = why
        else:
            sdks.append(Sdk(side, label, python))
    by_side = {sdk.side: sdk for sdk in sdks}

    with _streams(sizes) as (path, warm, frame_bytes):
        progress(f"streamsea_fanout: warm-up, then {sizes.runs} runs per side of {sizes.n:,}")
        n = sizes.n

        def wire() -> contextlib.AbstractContextManager[Child]:
            return wire_process(path, timeout)

        def wire_warm() -> contextlib.AbstractContextManager[Child]:
            return wire_process(warm, timeout)

        variants: dict[str, Callable[[], Run]] = {
            "actorwire": lambda: actorwire_fanout(wire, n, timeout),
            "raw": lambda: raw_fanout(wire, n, timeout),
        }
        actorwire_fanout(wire_warm, sizes.warm_n, timeout)
        raw_fanout(wire_warm, sizes.warm_n, timeout)
        for sdk in sdks:
            sdk_fanout(wire_warm, sdk, sizes.warm_n, timeout)
            variants[sdk.side] = functools.partial(sdk_fanout, wire, sdk, n, timeout)
        wire_res = interleave("streamsea_fanout", variants, sizes.runs, _describe_wire)
    rows = [_wire_row(sizes, wire_res, frame_bytes, unavailable)]

    rows.append(_embedded(sizes, timeout, by_side.get(CURRENT), unavailable.get(CURRENT)))
    env = _env(sdks)
    for row in rows:
        row["env"] = env
    return rows


def _embedded(sizes: Sizes, timeout: float, current: Sdk | None, why: str | None) -> dict[str, Any]:
    """The embedded row; when it cannot be measured, a row saying why (the first row's
    figures are still printed)."""
    label = "streamsea_fanout_embedded"
    en = sizes.embedded_n
    progress(f"{label}: {sizes.runs} runs per side of {en:,} ticks")

    def embedded() -> contextlib.AbstractContextManager[Child]:
        return embedded_process(en, timeout)

    variants = {
        "actorwire": lambda: actorwire_fanout(embedded, en, timeout),
        "raw": lambda: raw_fanout(embedded, en, timeout),
    }
    if current is not None:
        variants[CURRENT] = functools.partial(sdk_fanout, embedded, current, en, timeout)
    try:
        res = interleave(label, variants, sizes.runs, _describe_embedded)
    except (BenchError, TimeoutError, OSError) as exc:
        traceback.print_exc(file=sys.stderr)
        return {"bench": label, "error": repr(exc), "meets_target": False, "runs": 0}
    return _embedded_row(sizes, res, why)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "serve":
        sys.exit("usage: python -m bench.streamsea serve N TIMEOUT")
    sys.exit(_serve(int(sys.argv[2]), float(sys.argv[3])))
