"""kdb Insights adapter: updates from ``upsert`` to a subscriber's DataFrame callback, and a
snap of 1,000,000 rows to a DataFrame, against raw websockets + json + pandas. Two rows.

The gateway, both rows: the embedded gateway (``serve()``) in its own process, ``python -m
bench.kdb serve updates|snap N TIMEOUT``, on 127.0.0.1 port 0, auth on with one bearer
token, a topic keyed on ``sym`` (symbol; ``S000000``, ``S000001``, ...) with six value
columns: ``bid``, ``ask``, ``last`` (float), ``size``, ``volume``, ``seq`` (long); about 77
bytes of JSON a row. Every client connects with the token in ``Sec-WebSocket-Protocol:
Bearer <token>`` and ``?in=json&out=json``; connecting and subscribing are untimed. The
limits are raised so the tables fit (``max_rows_per_topic``, ``max_data_bytes``,
``max_outbox_bytes``); ``max_message_size`` and ``snap_chunk_bytes`` (1 MiB) stay at their
defaults, so large updates and the snap come in chunks (``payload.chunk = {index, count}``,
actorwire's extension) that every client joins back before making its DataFrame.

``kdb_updates`` (target: actorwire >= 0.8x raw)
    Topic ``quotes`` with ``update_interval`` 0.02 s. The server process starts with N
    keys in the table (round 0, untimed). Each run is one round R: the bench says ``run R
    M``, the server makes its batches (untimed: the first M keys, every value changed, in
    batches of 1,000 distinct keys, as column dicts), a fresh client connects and
    subscribes, the server sees the subscription and says ``subscribed``; on ``go`` it
    calls ``server.upsert`` batch after batch as fast as it can and reports the loop's
    times. Every key changes exactly once a round, so no update can conflate two changes
    of one key: whatever the batching interval cut, each client receives exactly M rows,
    the latest values of every changed key, in the server's update messages. The figure is
    M over the seconds from the bench's ``time.monotonic()`` just before ``go`` to the
    callback's ``time.monotonic()`` once its DataFrames held M rows in all (one server
    process for all runs of both sides, sides alternating run by run).

    - actorwire: ``GatewayClient(url, token=...)`` opened with ``with``,
      ``client.subscribe("quotes", callback=cb)``; ``cb(df, subscription)`` gets a pandas
      DataFrame per update (in the subscription's own actor) and adds ``len(df)``.
    - raw: one thread of the bench process runs ``asyncio.run`` of a
      ``websockets.asyncio.client.connect`` client (the token as an additional header, no
      compression, ``max_size`` 16 MiB as actorwire's) that sends the subscribe JSON by
      hand, then ``json.loads`` each message and, for each update of its subscription
      (chunks joined), calls the same counting callback with ``pandas.DataFrame(data)``.

    ``server_upsert_rows_per_s`` is M over the server's upsert loop; each side's
    ``client_over_upsert_rate`` is its rate over that, and ``server_bound`` is true when
    both sides reached >= 0.95 of it (the server is then the ceiling and the ratio says
    little about the clients). ``client_cpu_us_per_row`` is the bench process's CPU time
    (``time.process_time()``, every thread) from ``go`` to the M-th row over M: the
    clients' cost, whoever sets the pace.

``kdb_snap`` (report only)
    Topic ``book`` with S rows (1,000,000; round 0), loaded once by one server process
    for every run of both sides; one run a side (a snap takes 5-7 s, most of it the
    server's encoding, and loading the rows about 12 s), two with ``--quick`` (200,000
    rows). Each run a fresh client
    connects (untimed); the figure is the seconds from just before the request to the
    DataFrame: actorwire
    ``client.snap("book")`` (a DataFrame) against raw websockets sending the snap JSON,
    ``json.loads`` of each chunk, the columns joined with ``list.extend``, then
    ``pandas.DataFrame(columns)``. The server builds and encodes the snapshot in every run
    (the same work for both sides, in its own process, chunk by chunk while the client
    decodes). ``ratio`` is raw seconds over actorwire seconds: higher is better, 1.0 is a
    tie.

qipc (``GatewayClient(url, protocol="qipc")``): measured as one more side in both rows when
the client can be made with it and the embedded gateway serves it; otherwise the rows say
why in ``qipc``. Medians of runs interleaved run by run, the order rotating; ``kdb_updates``
has one untimed warm-up run a side first; ``kdb_snap`` none (the first row warmed the bench
process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._harness import BenchError, Config, environment, interleave, median, progress
from .keysquare import Child, child

if TYPE_CHECKING:
    from actorwire.adapters.kdb.config import GatewayConfig

TARGET_VS_RAW = 0.8
SERVER_BOUND = 0.95  # a client at this share of the upsert rate or more kept up with it
STARTUP_TIMEOUT = 60.0  # a server's first line (the snap server loads its table first)
POLL_INTERVAL = 0.005  # the server's checks for the run's subscription
HOST = "127.0.0.1"
TOKEN = "bench-token"
UPDATES_TOPIC, SNAP_TOPIC = "quotes", "book"
UPDATE_INTERVAL = 0.02
BATCH = 1_000  # distinct keys an upsert
LOAD_BATCH = 20_000  # keys an upsert while a server fills its table (untimed)
MAX_MESSAGE = 16 << 20  # the raw client's max_size: actorwire's DEFAULT_MAX_MESSAGE_SIZE
KEY = "sym"
VALUES = (
    ("bid", "float"),
    ("ask", "float"),
    ("last", "float"),
    ("size", "long"),
    ("volume", "long"),
    ("seq", "long"),
)
SUBSCRIBE_ID = 1
QIPC = "actorwire_qipc"  # the qipc side's name


@dataclass(frozen=True)
class Sizes:
    n: int  # keys of the updates topic, each changed once a run
    warm_n: int
    snap_rows: int
    runs: int
    snap_runs: int


def _sizes(cfg: Config) -> Sizes:
    if cfg.quick:
        return Sizes(n=40_000, warm_n=5_000, snap_rows=200_000, runs=cfg.runs, snap_runs=2)
    return Sizes(n=100_000, warm_n=10_000, snap_rows=1_000_000, runs=cfg.runs, snap_runs=1)


# -- the data ------------------------------------------------------------------------------


def rows(lo: int, hi: int, round_: int) -> dict[str, list[Any]]:
    """Keys ``lo`` to ``hi - 1`` as a column dict, every value different in each round."""
    keys = range(lo, hi)
    drift = round_ / 10_000
    return {
        KEY: [f"S{i:06d}" for i in keys],
        "bid": [100.0 + (i % 1000) / 100 + drift for i in keys],
        "ask": [100.01 + (i % 1000) / 100 + drift for i in keys],
        "last": [100.005 + (i % 1000) / 100 + drift for i in keys],
        "size": [(i % 50 + 1) * 100 for i in keys],
        "volume": [round_ * 1_000_000 + i for i in keys],
        "seq": [round_ * 10_000_000 + i for i in keys],
    }


def gateway_config(topic: str, max_rows: int) -> GatewayConfig:
    """One topic, the bench's token, a short interval, limits raised to hold the table."""
    from actorwire.adapters.kdb.config import parse_config

    doc = {
        "gateway": {"tokens": [TOKEN], "update_interval": UPDATE_INTERVAL},
        "limits": {
            "max_rows_per_topic": max_rows,
            "max_data_bytes": 1 << 36,
            "max_outbox_bytes": 1 << 31,
        },
        "topics": [{"name": topic, "keys": {KEY: "symbol"}, "values": dict(VALUES)}],
    }
    return parse_config(doc, "bench.kdb")


# -- the server process --------------------------------------------------------------------


class _Stopped(Exception):
    """The server's stdin closed: the bench is done with it."""


def _line(timeout: float) -> str | None:
    """The next stdin line, None when none came within ``timeout``; _Stopped at its end."""
    if not select.select([sys.stdin], [], [], timeout)[0]:
        return None
    line = sys.stdin.readline()
    if not line:
        raise _Stopped
    return line.strip()


def _load(server: Any, topic: str, n: int) -> float:
    """Fill ``topic`` with keys 0 to n - 1 (round 0); the seconds it took."""
    t0 = time.perf_counter()
    for lo in range(0, n, LOAD_BATCH):
        server.upsert(topic, rows(lo, min(lo + LOAD_BATCH, n), 0))
    return time.perf_counter() - t0


def _serve(kind: str, n: int, timeout: float) -> int:
    """The server process: ``port P LOAD_S`` once its table is full; then, for updates, on
    each ``run R M``: ``subscribed`` once the run's one subscription is live, and on ``go``
    the upserts and ``published T0 T1``. It serves until stdin closes."""
    from actorwire.actors import configure_logging
    from actorwire.adapters.kdb import server as gateway

    configure_logging(level="warning", stream=sys.stderr)
    topic = UPDATES_TOPIC if kind == "updates" else SNAP_TOPIC
    server = gateway.serve(HOST, 0, gateway_config(topic, n))
    try:
        loaded = _load(server, topic, n)
        print(f"port {server.port} {loaded:.3f}", flush=True)
        while True:
            line = _line(timeout)
            if line is None or kind == "snap":
                continue
            word, round_, m = line.split()
            if word != "run":
                raise BenchError(f"expected 'run R M' on stdin, got {line!r}")
            _round(server, int(round_), int(m), timeout)
    except _Stopped:
        return 0
    except (TimeoutError, BenchError, OSError, ValueError) as exc:
        print(f"kdb gateway process: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()


def _round(server: Any, round_: int, m: int, timeout: float) -> None:
    batches = [rows(lo, min(lo + BATCH, m), round_) for lo in range(0, m, BATCH)]
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        stats = server.stats()
        # One client at a time: the last run's connection must be gone, this one's in.
        if stats["subscriptions"] == 1 and stats["websockets"] == 1:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"no lone subscriber within {STARTUP_TIMEOUT}s: {stats}")
        if _line(POLL_INTERVAL) is not None:
            raise BenchError("a line on stdin before the subscriber subscribed")
    print("subscribed", flush=True)
    line = _line(timeout)
    if line != "go":
        raise BenchError(f"expected go on stdin within {timeout}s, got {line!r}")
    upsert = server.upsert
    changed = 0
    t0 = time.monotonic()
    for batch in batches:
        changed += upsert(UPDATES_TOPIC, batch)
    t1 = time.monotonic()
    if changed != m:
        raise BenchError(f"round {round_}: {changed} rows changed, expected {m}")
    print(f"published {t0!r} {t1!r}", flush=True)


@contextlib.contextmanager
def gateway_process(kind: str, n: int, timeout: float) -> Iterator[tuple[Child, str]]:
    """The server process and its URL, once its table is loaded."""
    argv = [sys.executable, "-m", "bench.kdb", "serve", kind, str(n), repr(timeout)]
    with child(f"the kdb gateway process ({kind})", argv) as proc:
        port, loaded = proc.expect("port", STARTUP_TIMEOUT).split()
        progress(f"kdb_{kind}: the gateway loaded {n:,} rows in {float(loaded):.1f}s (untimed)")
        yield proc, f"ws://{HOST}:{port}/"


# -- the clients ---------------------------------------------------------------------------


@dataclass
class Count:
    """Rows the counting callback saw, and the clocks when the M-th came."""

    n: int
    seen: int = 0
    updates: int = 0
    end: float = 0.0
    end_cpu: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)

    def add(self, df: Any, *_: Any) -> None:
        """The callback: one DataFrame (one caller at a time)."""
        self.updates += 1
        self.seen += len(df)
        if self.seen >= self.n and not self.done.is_set():
            self.end = time.monotonic()
            self.end_cpu = time.process_time()
            self.done.set()


@dataclass(frozen=True)
class Run:
    """One updates run: M rows, seconds from ``go`` to the M-th row, the bench process's
    CPU seconds meanwhile, the server's upsert loop, and how many updates carried them."""

    n: int
    seconds: float
    cpu_seconds: float
    server_seconds: float
    updates: int

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    @property
    def server_rate(self) -> float:
        return self.n / self.server_seconds


def _describe(run: Run) -> str:
    return (
        f"{run.rate:,.0f} rows/s ({run.seconds:.3f}s, {run.updates} updates, cpu "
        f"{run.cpu_seconds:.3f}s; server upserts at {run.server_rate:,.0f} rows/s)"
    )


def _go(server: Child, count: Count, timeout: float, who: str) -> Run:
    server.expect("subscribed", STARTUP_TIMEOUT)
    start, start_cpu = time.monotonic(), time.process_time()
    server.send("go")
    if not count.done.wait(timeout):
        raise BenchError(f"the {who} callback saw {count.seen} of {count.n} rows in {timeout}s")
    t0, t1 = (float(t) for t in server.expect("published", timeout).split())
    if count.seen != count.n:
        raise BenchError(f"the {who} callback saw {count.seen} rows, expected {count.n}")
    return Run(count.n, count.end - start, count.end_cpu - start_cpu, t1 - t0, count.updates)


class Rounds:
    """The updates server and its round numbers (every run changes every value)."""

    def __init__(self, server: Child, url: str) -> None:
        self.server, self.url, self.round = server, url, 0

    def start(self, m: int) -> None:
        self.round += 1
        self.server.send(f"run {self.round} {m}")


def actorwire_updates(rounds: Rounds, m: int, timeout: float, protocol: str = "json") -> Run:
    """One run: a fresh GatewayClient (its own ActorSystem) subscribed with a callback."""
    from actorwire.adapters.kdb.client import GatewayClient

    count = Count(m)
    rounds.start(m)
    with GatewayClient(rounds.url, token=TOKEN, protocol=protocol) as client:
        client.subscribe(UPDATES_TOPIC, callback=count.add, timeout=STARTUP_TIMEOUT)
        return _go(rounds.server, count, timeout, f"actorwire ({protocol})")


def _connect(url: str) -> Any:
    from websockets.asyncio.client import connect

    return connect(
        f"{url}?in=json&out=json",
        additional_headers={"Sec-WebSocket-Protocol": f"Bearer {TOKEN}"},
        compression=None,
        max_size=MAX_MESSAGE,
    )


def _join(parts: dict[str, list[Any]] | None, data: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """A chunk's columns appended to the earlier chunks' (the first chunk's lists kept)."""
    if parts is None:
        return data
    for column, values in parts.items():
        values.extend(data[column])
    return parts


async def _raw_updates(url: str, count: Count, subscribed: threading.Event) -> None:
    """The subscribe by hand, then ``json.loads`` each message and a DataFrame for each
    (joined) update of the subscription, until the callback has M rows."""
    import pandas as pd

    async with _connect(url) as ws:
        request = {"type": "subscribe", "id": SUBSCRIBE_ID, "payload": {"topic": UPDATES_TOPIC}}
        await ws.send(json.dumps(request))
        reply = json.loads(await ws.recv())
        if reply.get("type") != "subscribed" or reply.get("id") != SUBSCRIBE_ID:
            raise BenchError(f"raw client: subscribe refused: {reply!r:.200}")
        subscribed.set()
        loads, recv, frame, add = json.loads, ws.recv, pd.DataFrame, count.add
        parts: dict[str, list[Any]] | None = None
        while not count.done.is_set():
            message = loads(await recv())
            if message["type"] != "update" or message["id"] != SUBSCRIBE_ID:
                continue
            payload = message["payload"]
            chunk = payload.get("chunk")
            if chunk is None:
                add(frame(payload["data"]))
                continue
            parts = _join(parts if chunk["index"] else None, payload["data"])
            if chunk["index"] == chunk["count"] - 1:
                add(frame(parts))
                parts = None


def raw_updates(rounds: Rounds, m: int, timeout: float) -> Run:
    """One run: a fresh raw client on a fresh thread and event loop."""
    count = Count(m)
    subscribed = threading.Event()
    failure: list[BaseException] = []
    rounds.start(m)

    def client() -> None:
        try:
            asyncio.run(asyncio.wait_for(_raw_updates(rounds.url, count, subscribed), timeout))
        except BaseException as exc:
            failure.append(exc)
            subscribed.set()
            count.done.set()

    thread = threading.Thread(target=client, name="raw-websockets-client")
    thread.start()
    try:
        if not subscribed.wait(STARTUP_TIMEOUT) or failure:
            raise BenchError(f"the raw client did not subscribe: {failure or 'no answer'}")
        run = _go(rounds.server, count, timeout, "raw websockets")
    finally:
        thread.join(timeout)
    if failure:
        raise BenchError(f"the raw client failed: {failure[0]!r}")
    return run


@dataclass(frozen=True)
class Snap:
    """One snap: seconds from the request to the DataFrame, the bench process's CPU
    seconds meanwhile."""

    seconds: float
    cpu_seconds: float


def _describe_snap(snap: Snap | None) -> str:
    if snap is None:
        return "failed (see above)"
    return f"{snap.seconds:.3f}s (cpu {snap.cpu_seconds:.3f}s)"


def actorwire_snap(url: str, rows_n: int, timeout: float, protocol: str = "json") -> Snap:
    """One snap through a fresh GatewayClient (connecting untimed)."""
    from actorwire.adapters.kdb.client import GatewayClient

    with GatewayClient(url, token=TOKEN, protocol=protocol) as client:
        t0, cpu0 = time.perf_counter(), time.process_time()
        df = client.snap(SNAP_TOPIC, timeout=timeout)
        snap = Snap(time.perf_counter() - t0, time.process_time() - cpu0)
    if len(df) != rows_n:
        raise BenchError(f"actorwire ({protocol}) snapped {len(df)} rows, expected {rows_n}")
    return snap


async def _raw_snap(url: str, rows_n: int) -> Snap:
    import pandas as pd

    async with _connect(url) as ws:
        loads, recv = json.loads, ws.recv
        t0, cpu0 = time.perf_counter(), time.process_time()
        await ws.send(json.dumps({"type": "snap", "id": 1, "payload": {"topic": SNAP_TOPIC}}))
        parts: dict[str, list[Any]] | None = None
        while True:
            message = loads(await recv())
            if message["type"] != "snapped" or message["id"] != 1:
                raise BenchError(f"raw client: the snap was answered with {message!r:.200}")
            payload = message["payload"]
            chunk = payload.get("chunk")
            parts = _join(parts, payload["data"])
            if chunk is None or chunk["index"] == chunk["count"] - 1:
                break
        df = pd.DataFrame(parts)
        snap = Snap(time.perf_counter() - t0, time.process_time() - cpu0)
    if len(df) != rows_n:
        raise BenchError(f"raw websockets snapped {len(df)} rows, expected {rows_n}")
    return snap


def raw_snap(url: str, rows_n: int, timeout: float) -> Snap:
    """One snap through a fresh raw client (connecting untimed)."""
    return asyncio.run(asyncio.wait_for(_raw_snap(url, rows_n), timeout))


def _qipc(url: str, topic: str) -> str | None:
    """None when a qipc GatewayClient can be made, can connect to the gateway and subscribe
    to ``topic``; else why not (the rows' ``qipc``)."""
    from actorwire.adapters.kdb.client import GatewayClient

    try:
        client = GatewayClient(url, token=TOKEN, protocol="qipc")
    except (NotImplementedError, ValueError, ImportError) as exc:
        return f"not available: GatewayClient(url, protocol='qipc') raised {exc!r}"
    try:
        with client:
            client.subscribe(topic, callback=lambda *_: None, timeout=10.0)
    except Exception as exc:  # whatever a half-built qipc path raises: the row says it
        return f"not available: a qipc client could not subscribe: {exc!r:.300}"
    return None


class _Optional:
    """A qipc side that may fail at run time: its first failure is kept (the row says it)
    and every later run of it is skipped."""

    def __init__(self, run: Callable[[], Snap]) -> None:
        self.run = run
        self.failure: str | None = None

    def __call__(self) -> Snap | None:
        if self.failure is not None:
            return None
        try:
            return self.run()
        except Exception as exc:  # whatever a half-built qipc path raises: the row says it
            self.failure = f"not available: a qipc snap failed: {exc!r:.300}"
            progress(f"kdb_snap: {self.failure}")
            return None


# -- the rows ------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3)


def _env() -> dict[str, Any]:
    from importlib import metadata

    env = environment()
    for package in ("websockets", "pandas"):
        env[package] = metadata.version(package)
    return env


GATEWAY = (
    "the embedded gateway (serve()) in its own process (python -m bench.kdb serve), "
    "127.0.0.1, auth on (bearer token), json, snap_chunk_bytes and max_message_size at "
    "their defaults (1 MiB, 16 MiB: large messages come in chunks)"
)
TABLE = (
    "keyed on sym (symbol, S000000...) with bid, ask, last (float), size, volume, seq (long); "
    "about 77 bytes of JSON a row"
)


def _updates_row(sizes: Sizes, res: dict[str, list[Run]], qipc: str | None) -> dict[str, Any]:
    rates = {side: median([r.rate for r in runs]) for side, runs in res.items()}
    kept_up = {
        side: round(median([r.rate / r.server_rate for r in runs]), 3) for side, runs in res.items()
    }
    aw, raw = res["actorwire"], res["raw"]
    ratio = _ratio(rates["actorwire"], rates["raw"])
    row: dict[str, Any] = {
        "bench": "kdb_updates",
        "unit": "rows/s",
        "rows_per_s": round(rates["actorwire"]),
        "raw_websockets_rows_per_s": round(rates["raw"]),
        "ratio_vs_raw": ratio,
        "target_vs_raw": TARGET_VS_RAW,
        "target": f"actorwire >= {TARGET_VS_RAW:g}x raw websockets + json + pandas",
        "meets_target": ratio >= TARGET_VS_RAW,
        "ratio_meaning": "rows/s from go to the callback's M-th row, actorwire / raw on the "
        "same gateway process, same run (medians of runs; higher is better)",
        "qipc": qipc if qipc is not None else "measured: qipc_rows_per_s",
        "runs": len(aw),
        "n": aw[0].n,
        "update_interval_s": UPDATE_INTERVAL,
        "upsert_batch_rows": BATCH,
        "updates_per_run": {s: round(median([r.updates for r in runs])) for s, runs in res.items()},
        "server_upsert_rows_per_s": round(
            median([r.server_rate for runs in res.values() for r in runs])
        ),
        "client_over_upsert_rate": kept_up,
        "server_bound": all(v >= SERVER_BOUND for v in kept_up.values()),
        "server_bound_meaning": "each side's rows/s over the server's upsert loop's rate, run "
        f"by run (median); when every side is >= {SERVER_BOUND:g}, the server set the pace "
        "and client_cpu_us_per_row compares the clients",
        "client_cpu_us_per_row": {
            side: round(median([r.cpu_seconds / r.n for r in runs]) * 1e6, 3)
            for side, runs in res.items()
        },
        "topic": f"{UPDATES_TOPIC!r}, {TABLE}; n keys loaded before the first run",
        "server": f"{GATEWAY}; update_interval {UPDATE_INTERVAL} s; each run, on go, "
        f"server.upsert of every one of the n keys with new values, {BATCH} distinct keys a "
        "batch (column dicts), as fast as it can: no key changes twice in a run, so every "
        "client receives exactly n rows whatever the interval cut",
        "variant": "GatewayClient(url, token) in a with block, subscribe('quotes', "
        "callback=cb); cb(df, subscription) adds len(df) (a pandas DataFrame an update, in "
        "the subscription's actor)",
        "raw_impl": "websockets.asyncio.client.connect on a thread of the bench process "
        "(asyncio.run; token as an additional Sec-WebSocket-Protocol header, no "
        "compression, max_size 16 MiB), the subscribe sent by hand, json.loads of each "
        "message, chunks joined by list.extend, cb(pandas.DataFrame(data)) per update",
        "timing": "from the bench's time.monotonic() just before it tells the server go to "
        "the callback's time.monotonic() when its DataFrames held n rows; connect and "
        "subscribe untimed",
        "actorwire_runs_rows_s": [round(r.rate) for r in aw],
        "raw_runs_rows_s": [round(r.rate) for r in raw],
        "paired_ratios_vs_raw": [round(a.rate / b.rate, 3) for a, b in zip(aw, raw, strict=True)],
        "isolation": "one gateway process for every run (a round of new values each run); "
        "every run a fresh client (actorwire: its own ActorSystem, closed after the run; "
        f"raw: a new thread and event loop); one untimed warm-up run a side of "
        f"{sizes.warm_n:,} rows first",
    }
    if QIPC in res:
        row["qipc_rows_per_s"] = round(rates[QIPC])
        row["qipc_ratio_vs_raw_json"] = _ratio(rates[QIPC], rates["raw"])
    return row


def _snap_row(sizes: Sizes, res: dict[str, list[Snap]], qipc: str | None) -> dict[str, Any]:
    secs = {side: median([s.seconds for s in runs]) for side, runs in res.items()}
    ratio = _ratio(secs["raw"], secs["actorwire"])
    row: dict[str, Any] = {
        "bench": "kdb_snap",
        "unit": "s",
        "seconds": round(secs["actorwire"], 3),
        "raw_websockets_seconds": round(secs["raw"], 3),
        "ratio_vs_raw": ratio,
        "ratio_meaning": "raw seconds / actorwire seconds for the same snap from the same "
        "gateway process, same run (medians of runs): higher is better, > 1 means actorwire "
        "is faster",
        "target": "report only",
        "meets_target": True,
        "qipc": qipc if qipc is not None else "measured: qipc_seconds",
        "runs": len(res["actorwire"]),
        "runs_why": "a 1,000,000-row snap takes 5-7 s, most of it the server's encoding, "
        "after about 12 s of loading the rows, so the full bench takes one run a side to "
        "stay near 90 s (--quick: 200,000 rows, 2 runs)",
        "rows": sizes.snap_rows,
        "rows_per_s": round(sizes.snap_rows / secs["actorwire"]),
        "raw_rows_per_s": round(sizes.snap_rows / secs["raw"]),
        "topic": f"{SNAP_TOPIC!r}, {TABLE}; loaded once before the runs",
        "server": f"{GATEWAY}; it builds and encodes the snapshot in every run, chunk by chunk",
        "variant": "GatewayClient(url, token) in a with block, client.snap('book') (a pandas "
        "DataFrame)",
        "raw_impl": "websockets.asyncio.client.connect (token header, no compression, max_size "
        "16 MiB), the snap sent by hand, json.loads of each chunk, columns joined by "
        "list.extend, pandas.DataFrame(columns)",
        "timing": "time.perf_counter() from just before the request to the DataFrame; "
        "connect untimed",
        "client_cpu_s": {
            side: round(median([s.cpu_seconds for s in runs]), 3) for side, runs in res.items()
        },
        "client_cpu_meaning": "the bench process's CPU seconds (time.process_time(), every "
        "thread) during the snap: the client's cost; the seconds are mostly the server's, "
        "which encodes chunk by chunk while the client decodes",
        "actorwire_runs_s": [round(s.seconds, 3) for s in res["actorwire"]],
        "raw_runs_s": [round(s.seconds, 3) for s in res["raw"]],
        "isolation": "one gateway process for every run; every run a fresh client; no "
        "warm-up snaps (kdb_updates' runs warmed the bench process)",
    }
    if QIPC in res:
        row["qipc_seconds"] = round(secs[QIPC], 3)
        row["qipc_ratio_raw_json_over_qipc"] = _ratio(secs["raw"], secs[QIPC])
    return row


def _updates(sizes: Sizes, timeout: float) -> dict[str, Any]:
    n = sizes.n
    with gateway_process("updates", n, timeout) as (server, url):
        rounds = Rounds(server, url)
        variants: dict[str, Callable[[], Run]] = {
            "actorwire": lambda: actorwire_updates(rounds, n, timeout),
            "raw": lambda: raw_updates(rounds, n, timeout),
        }
        qipc = _qipc(url, UPDATES_TOPIC)
        if qipc is None:
            variants[QIPC] = lambda: actorwire_updates(rounds, n, timeout, "qipc")
        actorwire_updates(rounds, sizes.warm_n, timeout)
        raw_updates(rounds, sizes.warm_n, timeout)
        if QIPC in variants:
            actorwire_updates(rounds, sizes.warm_n, timeout, "qipc")
        progress(f"kdb_updates: {sizes.runs} runs per side of {n:,} rows")
        res = interleave("kdb_updates", variants, sizes.runs, _describe)
    return _updates_row(sizes, res, qipc)


def _snap(sizes: Sizes, timeout: float) -> dict[str, Any]:
    rows_n = sizes.snap_rows
    with gateway_process("snap", rows_n, timeout) as (_, url):
        qipc = _qipc(url, SNAP_TOPIC)
        variants: dict[str, Callable[[], Snap | None]] = {
            "actorwire": lambda: actorwire_snap(url, rows_n, timeout),
            "raw": lambda: raw_snap(url, rows_n, timeout),
        }
        optional = _Optional(lambda: actorwire_snap(url, rows_n, timeout, "qipc"))
        if qipc is None:
            variants[QIPC] = optional
        progress(f"kdb_snap: {sizes.snap_runs} runs per side of {rows_n:,} rows")
        res = interleave("kdb_snap", variants, sizes.snap_runs, _describe_snap)
    qipc = qipc or optional.failure
    done = {
        side: [s for s in runs if s is not None]
        for side, runs in res.items()
        if not (side == QIPC and optional.failure)
    }
    if len(done["actorwire"]) != len(res["actorwire"]) or len(done["raw"]) != len(res["raw"]):
        raise BenchError("a json snap run gave no result")  # only the qipc side is optional
    return _snap_row(sizes, done, qipc)


def kdb_updates(cfg: Config) -> list[dict[str, Any]]:
    sizes = _sizes(cfg)
    rows_out = [_updates(sizes, cfg.timeout), _snap(sizes, cfg.timeout)]
    env = _env()
    for row in rows_out:
        row["env"] = env
    return rows_out


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "serve" or sys.argv[2] not in ("updates", "snap"):
        sys.exit("usage: python -m bench.kdb serve updates|snap N TIMEOUT")
    sys.exit(_serve(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
