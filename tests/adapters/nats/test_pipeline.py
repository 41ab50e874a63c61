"""The nats pipeline stages against a real nats-server: the JetStream sink (Nats-Msg-Id from
id_fields, async acks) and the durable source (acknowledged only once what came of a message
is accepted downstream), redelivery after a killed consumer, bad messages, stream and
acknowledgement checks at start, a server killed and restarted mid-stream, core NATS."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import nats
import orjson
import pytest
from actorwire.adapters.nats.server import NatsServer, serve
from actorwire.pipelines import Pipeline
from actorwire.pipelines.windows import Windowing
from nats.js.api import ConsumerInfo, StreamConfig

from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0
START = 1_700_000_000.0
"""synthetic_prices' default start_time: with rate=None a record's timestamp is START + i/1000."""
STREAM = {"name": "PRICES", "subjects": ["prices.>"]}
SUBJECT = "prices.{symbol}"
IDS = ["symbol", "timestamp"]


@pytest.fixture
def server() -> Iterator[NatsServer]:
    srv = serve("127.0.0.1", 0)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def make_pipeline() -> Iterator[Callable[[str], Pipeline]]:
    """Pipelines that are always stopped after the test (without draining: fast)."""
    made: list[Pipeline] = []

    def make(name: str) -> Pipeline:
        pipeline = Pipeline(name)
        made.append(pipeline)
        return pipeline

    try:
        yield make
    finally:
        for pipeline in reversed(made):
            pipeline.stop(drain=False)


class Collector:
    """A callback sink's function: keeps every record; ``gate`` blocks the call that would
    take the ``block_at``-th record until it is set."""

    def __init__(self, block_at: int | None = None) -> None:
        self._cond = threading.Condition()
        self.records: list[dict[str, Any]] = []
        self.block_at = block_at
        self.gate = threading.Event()

    def __call__(self, record: dict[str, Any]) -> None:
        with self._cond:
            self.records.append(record)
            self._cond.notify_all()
            n = len(self.records)
        if n == self.block_at:
            assert self.gate.wait(WAIT), "the test never released the sink"

    def __len__(self) -> int:
        with self._cond:
            return len(self.records)

    def wait_for(self, count: int, timeout: float = WAIT) -> list[dict[str, Any]]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.records) >= count, timeout)
            got = list(self.records)
        assert ok, f"expected {count} records within {timeout}s, got {len(got)}"
        return got


# -- nats-py beside the pipelines -------------------------------------------------------------


async def _with_nc(url: str, work: Callable[[Any], Any]) -> Any:
    nc = await nats.connect(url, allow_reconnect=False)
    try:
        return await work(nc)
    finally:
        await nc.close()


async def _with_js(url: str, work: Callable[[Any], Any]) -> Any:
    return await _with_nc(url, lambda nc: work(nc.jetstream()))


def consumer(url: str, durable: str, stream: str = "PRICES") -> ConsumerInfo:
    info: ConsumerInfo = asyncio.run(_with_js(url, lambda js: js.consumer_info(stream, durable)))
    return info


def floor_of(info: ConsumerInfo) -> int:
    """The stream sequence every message up to which is acknowledged."""
    return info.ack_floor.stream_seq if info.ack_floor else 0


def ack_floor(url: str, durable: str, stream: str = "PRICES") -> int:
    return floor_of(consumer(url, durable, stream))


def stored(url: str, stream: str = "PRICES") -> int:
    info = asyncio.run(_with_js(url, lambda js: js.stream_info(stream)))
    return int(info.state.messages)


def publish(url: str, subject: str, payloads: list[bytes]) -> None:
    """Publish to a stream, each acked, with no Nats-Msg-Id."""

    async def work(js: Any) -> None:
        for data in payloads:
            await js.publish(subject, data)

    asyncio.run(_with_js(url, work))


def add_stream(url: str, **config: Any) -> None:
    asyncio.run(_with_js(url, lambda js: js.add_stream(StreamConfig(**config))))


def stored_messages(url: str, stream: str = "PRICES") -> list[tuple[str, dict[str, Any]]]:
    """Every message as (Nats-Msg-Id, record), read through an ephemeral pull consumer."""

    async def work(js: Any) -> list[tuple[str, dict[str, Any]]]:
        info = await js.stream_info(stream)
        sub = await js.pull_subscribe("", stream=stream)
        out: list[tuple[str, dict[str, Any]]] = []
        while len(out) < info.state.messages:
            for msg in await sub.fetch(500, timeout=5):
                out.append(((msg.headers or {}).get("Nats-Msg-Id", ""), orjson.loads(msg.data)))
                await msg.ack()
        await sub.unsubscribe()
        return out

    got: list[tuple[str, dict[str, Any]]] = asyncio.run(_with_js(url, work))
    return got


def stored_ids(url: str, stream: str = "PRICES") -> list[str]:
    return [msg_id for msg_id, _ in stored_messages(url, stream)]


def record(symbol: str, i: int) -> bytes:
    return orjson.dumps({"symbol": symbol, "timestamp": START + i * 0.001})


def publish_prices(url: str, n: int, name: str = "pub") -> Pipeline:
    """Run a pipeline publishing ``n`` synthetic prices to PRICES (created if missing)."""
    p = Pipeline(name)
    p.source("synthetic_prices", timestamps="derived", rate=None, limit=n).to(
        "nats", url=url, subject=SUBJECT, id_fields=IDS, stream=STREAM
    )
    p.run()
    return p


def expected(n: int, rate: float = 1000.0) -> list[tuple[str, float]]:
    """(symbol, timestamp) of the first ``n`` synthetic prices at ``rate`` (1000: rate=None),
    computed as synthetic_prices does."""
    symbols = ("AAPL", "MSFT", "GOOG")
    interval = 1.0 / rate
    return [(symbols[i % 3], START + i * interval) for i in range(n)]


def key(records: list[dict[str, Any]]) -> list[tuple[str, float]]:
    return [(r["symbol"], r["timestamp"]) for r in records]


def source_stats(p: Pipeline) -> dict[str, int]:
    return p.stats()["nats"]


def watch(seconds: float, check: Callable[[], Any]) -> None:
    """Run ``check`` every 20 ms for ``seconds``: for what must not happen (no event to wait
    on), an invariant watched over a stretch of time."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        check()
        time.sleep(0.02)  # a sampling interval, not a wait for a condition


# -- 1, 2: round trip, dedupe -----------------------------------------------------------------


@pytest.mark.timeout(30)
def test_sink_stream_source_round_trip(
    server: NatsServer, make_pipeline: Callable[[str], Pipeline]
) -> None:
    n = 500
    pub = publish_prices(server.url, n)
    sink = pub.stats()["nats"]
    assert sink["received"] == n and sink["failed"] == 0
    assert sink["sink_published"] == n and sink["sink_duplicates"] == 0
    assert sink["sink_unacknowledged"] == 0
    assert stored(server.url) == n

    got = Collector()
    p = make_pipeline("sub")
    p.source("nats", url=server.url, stream="PRICES", durable="reader").to(got)
    p.start()
    assert key(got.wait_for(n)) == expected(n)  # exactly these, in order
    wait_until(lambda: ack_floor(server.url, "reader") == n, WAIT, 0.02, "ack floor at n")
    info = consumer(server.url, "reader")
    assert info.num_ack_pending == 0 and info.num_pending == 0
    stats = wait_until(
        lambda: (s := source_stats(p))["source_acked"] == n and s, WAIT, 0.02, "acked stat"
    )
    assert stats["source_received"] == n and stats["source_unacknowledged"] == 0
    assert stats["source_redelivered"] == 0 and stats["source_bad"] == 0
    assert p.links() == {"nats": "CONNECTED"}
    assert len(got) == n


@pytest.mark.timeout(30)
def test_the_same_records_twice_are_stored_once(server: NatsServer) -> None:
    n = 300
    first = publish_prices(server.url, n, "pub1")
    assert first.stats()["nats"]["sink_duplicates"] == 0
    second = publish_prices(server.url, n, "pub2")  # same seed: the same ids
    again = second.stats()["nats"]
    assert again["sink_published"] == n and again["sink_duplicates"] == n
    assert stored(server.url) == n
    assert sorted(stored_ids(server.url)) == sorted(f"{s}|{t}" for s, t in expected(n))


# -- 3: acknowledged only once accepted downstream --------------------------------------------


@pytest.mark.timeout(30)
def test_nothing_is_acked_past_what_a_blocked_sink_accepted(
    server: NatsServer, make_pipeline: Callable[[str], Pipeline]
) -> None:
    n, accepted, every = 200, 57, 10
    publish_prices(server.url, n)
    sink = Collector(block_at=accepted + 1)  # takes `accepted`, then blocks on the next
    p = make_pipeline("slow")
    p.source(
        "nats", url=server.url, stream="PRICES", durable="slow", ack_every=every, ack_interval=0.05
    ).then(lambda r: {**r, "seen": True}).to(sink)
    try:
        p.start()
        sink.wait_for(accepted + 1)
        # Every barrier before the blocked record is done: the floor reaches the last one,
        # which is at most `every` records before it.
        wait_until(
            lambda: ack_floor(server.url, "slow") > accepted - every,
            WAIT,
            0.02,
            "the accepted records acked",
        )
        wait_until(lambda: source_stats(p)["source_received"] == n, WAIT, 0.02, "all fetched")
        watch(0.6, lambda: ack_floor(server.url, "slow") <= accepted or pytest.fail("acked"))
        info = consumer(server.url, "slow")
        assert floor_of(info) <= accepted
        assert info.num_ack_pending == n - floor_of(info)
    finally:
        sink.gate.set()
    wait_until(lambda: ack_floor(server.url, "slow") == n, WAIT, 0.02, "ack floor at n")
    assert key(sink.wait_for(n)) == expected(n)
    assert all(r["seen"] for r in sink.records)


def window_of(n: int, size: float) -> tuple[int, int]:
    """(records in the windows that close by themselves, records in the last window) for the
    first ``n`` synthetic prices in tumbling windows of ``size`` seconds."""
    w = Windowing(size)
    idx = [w.first_open(t) for _, t in expected(n)]
    closed = sum(1 for i in idx if i < idx[-1])
    return closed, n - closed


@pytest.mark.timeout(30)
def test_an_open_windows_records_stay_unacked_until_it_closes(
    server: NatsServer, make_pipeline: Callable[[str], Pipeline]
) -> None:
    n, every = 300, 10  # every divides n: the closing record is in an ack group of its own
    publish_prices(server.url, n)
    closed, last = window_of(n, 0.125)
    assert closed > 0 and last > 0
    rows = Collector()
    p = make_pipeline("bars")
    p.source(
        "nats", url=server.url, stream="PRICES", durable="bars", ack_every=every, ack_interval=0.05
    ).then(
        "tumbling_window", size=0.125, key="symbol", time_field="timestamp", aggregations="count"
    ).to(rows)
    p.start()
    wait_until(lambda: source_stats(p)["source_received"] == n, WAIT, 0.02, "all fetched")
    wait_until(lambda: sum(r["count"] for r in rows.records) == closed, WAIT, 0.02, "rows")
    wait_until(
        lambda: ack_floor(server.url, "bars") > closed - every,
        WAIT,
        0.02,
        "the closed windows acked",
    )
    # The open window's records are not acknowledged, over many ack intervals.
    watch(0.5, lambda: ack_floor(server.url, "bars") <= closed or pytest.fail("acked"))
    info = consumer(server.url, "bars")
    assert info.num_ack_pending == n - floor_of(info)
    # A later record closes the last window (and opens one of its own).
    publish(server.url, "prices.AAPL", [record("AAPL", 20_000)])
    wait_until(lambda: sum(r["count"] for r in rows.records) == n, WAIT, 0.02, "last rows")
    wait_until(lambda: ack_floor(server.url, "bars") == n, WAIT, 0.02, "ack floor at n")
    assert consumer(server.url, "bars").num_ack_pending == 1  # the new window's record


@pytest.mark.timeout(30)
def test_a_quiet_open_window_is_not_fed_its_records_again_after_ack_wait(
    server: NatsServer, make_pipeline: Callable[[str], Pipeline]
) -> None:
    """An event-time window stays open until a later record comes, however long that takes;
    the messages it holds must not come round again (and be counted twice) meanwhile."""
    n = 100  # all in one window of 0.25 s (a binary fraction: exact window bounds)
    publish_prices(server.url, n)
    rows = Collector()
    p = make_pipeline("quiet")
    p.source(
        "nats",
        url=server.url,
        stream="PRICES",
        durable="quiet",
        ack_every=10,
        ack_interval=0.05,
        ack_wait=0.5,  # over the window's 0.25 s plus two ack intervals: accepted at start
    ).then(
        "tumbling_window", size=0.25, key="symbol", time_field="timestamp", aggregations="count"
    ).to(rows)
    p.start()
    wait_until(lambda: source_stats(p)["source_received"] >= n, WAIT, 0.02, "all fetched")
    most = [n]
    watch(2.0, lambda: most.append(source_stats(p)["source_received"]))  # four ack_waits
    publish(server.url, "prices.AAPL", [record("AAPL", 5_000)])
    got = rows.wait_for(3)  # one row per symbol
    assert (max(most), sum(r["count"] for r in got)) == (n, n)


@pytest.mark.timeout(30)
def test_an_ack_wait_under_a_windows_idle_timeout_is_refused(
    server: NatsServer, make_pipeline: Callable[[str], Pipeline]
) -> None:
    p = make_pipeline("idle")
    p.source("nats", url=server.url, stream=STREAM, durable="idle", ack_wait=3.0).then(
        "tumbling_window", size=1.0, key="symbol", time_field="timestamp", idle_timeout=5.0
    ).to(lambda r: None)
    with pytest.raises(ValueError, match="ack_wait"):
        p.start()


# -- 4: a killed consumer's messages come again at once ---------------------------------------


@pytest.mark.timeout(30)
def test_a_killed_consumers_unacked_messages_come_again_at_once(
    server: NatsServer, make_pipeline: Callable[[str], Pipeline]
) -> None:
    n = 300  # all in one 10 s window, so none is acknowledged before it closes

    def consuming(name: str, rows: Collector) -> Pipeline:
        p = make_pipeline(name)
        # ack_every divides n: the last barrier goes out with the n-th record, so the
        # record that closes the window starts an ack group of its own.
        p.source(
            "nats", url=server.url, stream="PRICES", durable="keep", ack_wait=30, ack_every=100
        ).then(
            "tumbling_window", size=10, key="symbol", time_field="timestamp", aggregations="count"
        ).to(rows)
        return p

    publish_prices(server.url, n)
    first = consuming("first", Collector()).start()
    wait_until(lambda: source_stats(first)["source_received"] == n, WAIT, 0.02, "all fetched")
    first.stop(drain=False)  # the process dies: what the window held is gone
    info = consumer(server.url, "keep")
    assert info.num_ack_pending == n and floor_of(info) == 0

    rows = Collector()
    t0 = time.monotonic()
    second = consuming("second", rows).start()
    wait_until(lambda: source_stats(second)["source_received"] == n, 5.0, 0.02, "redelivered")
    assert time.monotonic() - t0 < 5.0  # at once, not after ack_wait (30 s)
    publish(server.url, "prices.AAPL", [record("AAPL", 30_000)])  # closes the window
    got = rows.wait_for(3)
    assert sorted((r["key"], r["count"]) for r in got) == [
        ("AAPL", 100),
        ("GOOG", 100),
        ("MSFT", 100),
    ]
    wait_until(lambda: ack_floor(server.url, "keep") == n, WAIT, 0.02, "ack floor at n")
    assert consumer(server.url, "keep").num_ack_pending == 1  # the closing record's window
    assert source_stats(second)["source_redelivered"] == 0


@pytest.mark.timeout(30)
def test_a_recomputed_bar_already_published_is_dropped_by_its_msg_id(
    server: NatsServer, make_pipeline: Callable[[str], Pipeline]
) -> None:
    n, every = 300, 7
    closed, _ = window_of(n, 0.125)  # 250 in two windows that close, 50 in the last
    floor = closed // every * every  # the last barrier a closed window releases: 245
    bars = {"name": "BARS", "subjects": ["bars.>"]}

    def barring(name: str) -> Pipeline:
        p = make_pipeline(name)
        # ack_interval well over the time the records take to come: barriers by count only.
        p.source(
            "nats", url=server.url, stream="PRICES", durable="bars", ack_every=every, ack_interval=1
        ).then(
            "tumbling_window",
            size=0.125,
            key="symbol",
            time_field="timestamp",
            aggregations="count",
        ).to(
            "nats",
            url=server.url,
            subject="bars.{key}",
            id_fields=["key", "window_start"],
            stream=bars,
        )
        return p

    publish_prices(server.url, n)
    first = barring("bars1").start()
    wait_until(lambda: stored(server.url, "BARS") == 6, WAIT, 0.02, "two windows' bars")
    wait_until(lambda: ack_floor(server.url, "bars") == floor, WAIT, 0.02, "ack floor")
    first.stop(drain=False)  # killed: records floor+1..n come again, the last window's too
    second = barring("bars2").start()
    wait_until(lambda: source_stats(second)["source_received"] == n - floor, WAIT, 0.02)
    publish(server.url, "prices.AAPL", [record("AAPL", 20_000)])  # closes the last window
    wait_until(lambda: stored(server.url, "BARS") == 9, WAIT, 0.02, "the last window's bars")
    # The second window, recomputed from its last few records, was published again under
    # the same ids: JetStream kept the complete bars.
    recomputed = {s for s, _ in expected(n)[floor:closed]}
    assert len(recomputed) == 3
    # The sink's counters reach the stats a moment after the acks (a stats period).
    sink = wait_until(
        lambda: (s := second.stats()["nats-2"])["sink_published"] == 6 and s, WAIT, 0.02
    )
    assert sink["sink_duplicates"] == len(recomputed)
    stored_bars = stored_messages(server.url, "BARS")
    assert sum(r["count"] for _, r in stored_bars) == n
    assert sorted(i for i, _ in stored_bars) == sorted(
        f"{r['key']}|{r['window_start']}" for _, r in stored_bars
    )
    assert stored(server.url, "BARS") == 9


# -- 5: a message that does not decode --------------------------------------------------------


@pytest.mark.timeout(30)
def test_a_message_that_is_not_json_is_counted_logged_and_terminated(
    server: NatsServer, make_pipeline: Callable[[str], Pipeline], json_log: io.StringIO
) -> None:
    add_stream(server.url, name="PRICES", subjects=["prices.>"])
    good = [record("AAPL", i) for i in range(10)]
    publish(server.url, "prices.AAPL", [*good[:5], b"\xffnot json", *good[5:]])
    got = Collector()
    p = make_pipeline("bad")
    p.source(
        "nats", url=server.url, stream="PRICES", durable="bad", ack_wait=1.0, ack_interval=0.05
    ).to(got)
    p.start()
    assert [r["timestamp"] for r in got.wait_for(10)] == [START + i * 0.001 for i in range(10)]
    wait_until(lambda: ack_floor(server.url, "bad") == 11, WAIT, 0.02, "ack floor past all")
    info = consumer(server.url, "bad")
    assert info.num_ack_pending == 0 and info.num_redelivered == 0
    wait_until(lambda: source_stats(p)["source_acked"] == 10, WAIT, 0.02, "acked stat")
    assert source_stats(p)["source_bad"] == 1
    events = [json.loads(x) for x in json_log.getvalue().splitlines() if x.startswith("{")]
    bad = [e for e in events if "does not decode" in e.get("event", "")]
    assert len(bad) == 1 and bad[0]["seq"] == 6 and bad[0]["stream"] == "PRICES"
    assert len(got) == 10


# -- 6, 7, 10: refused at start or at build ---------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("role", ["sink", "source"])
def test_a_stream_that_differs_stops_the_start_with_the_key_path(
    server: NatsServer, role: str
) -> None:
    add_stream(server.url, name="PRICES", subjects=["prices.>"], max_bytes=1 << 20)
    table = {**STREAM, "max_bytes": 2 << 20}
    p = Pipeline(f"mismatch-{role}")
    if role == "sink":
        p.source("synthetic_prices", rate=None, limit=10).to(
            "nats", url=server.url, subject=SUBJECT, id_fields=IDS, stream=table
        )
    else:
        p.source("nats", url=server.url, stream=table, durable="d").to(lambda r: None)
    try:
        # The stage fails to start; the pipeline's start raises with the stage's reason.
        with pytest.raises(
            RuntimeError,
            match=r"stream\.max_bytes: the stream has 1048576, the definition says 2097152",
        ):
            p.start()
    finally:
        p.stop(drain=False)
    assert stored(server.url) == 0  # nothing published to, nor changed in, the stream


@pytest.mark.parametrize(
    ("stage", "source_params", "words"),
    [
        (
            ("tumbling_window", {"size": 1.0, "key": "symbol"}),
            {},
            r"stage 'held' \(tumbling_window\) behind the nats source .* set time_field",
        ),
        (
            ("tumbling_window", {"size": 5.0, "key": "symbol", "time_field": "timestamp"}),
            {"ack_wait": 3.0},
            r"ack_wait \(3 s\) must exceed the longest a record waits downstream \(5 s",
        ),
        (
            ("conflate", {"interval": 0.5, "key": "symbol"}),
            {},
            r"stage 'held' \(conflate\) behind the nats source .* holds records",
        ),
    ],
    ids=["processing-time-window", "ack-wait-under-window", "conflate"],
)
def test_what_would_lose_data_behind_the_source_is_refused_at_start(
    stage: tuple[str, dict[str, Any]], source_params: dict[str, Any], words: str
) -> None:
    kind, params = stage
    p = Pipeline("refused")
    p.source("nats", url="nats://127.0.0.1:1", stream="PRICES", durable="d", **source_params).then(
        kind, name="held", **params
    ).to(lambda r: None)
    with pytest.raises(ValueError, match=words):
        p.start()
    assert p.system is None  # refused before anything started


def test_bad_parameters_are_refused_when_the_stage_is_added() -> None:
    p = Pipeline("params")
    with pytest.raises(ValueError, match=r"nats source: url must be a NATS server URL.*'nope'"):
        p.source("nats", url="nope", stream="PRICES", durable="d")
    with pytest.raises(ValueError, match=r"nats sink: url must be .*'http://x:1'"):
        p.source("synthetic_prices", limit=1).to(
            "nats", url="http://x:1", subject="a", id_fields=["symbol"]
        )
    with pytest.raises(TypeError, match=r"unknown parameter 'duarble' \(did you mean 'durable'"):
        p.source("nats", url="nats://127.0.0.1:4222", stream="PRICES", duarble="d")
    with pytest.raises(ValueError, match=r"id_fields must name the fields"):
        p.source("synthetic_prices", limit=1).to("nats", url="127.0.0.1:4222", subject="a")
    with pytest.raises(ValueError, match=r"durable must be a consumer name .*'a\.b'"):
        p.source("nats", url="nats://127.0.0.1:4222", stream="PRICES", durable="a.b")
    with pytest.raises(ValueError, match=r"nats_core source: url must be .*'nope'"):
        p.source("nats_core", url="nope", subject="a")


# -- 8: the server killed and restarted mid-stream --------------------------------------------


@pytest.mark.timeout(45)
def test_a_server_killed_and_restarted_mid_stream_loses_and_repeats_nothing(
    server: NatsServer, make_pipeline: Callable[[str], Pipeline]
) -> None:
    n = 3000
    got = Collector()
    sub = make_pipeline("sub")
    sub.source(
        "nats",
        url=server.url,
        stream=STREAM,
        durable="live",
        ack_wait=2.0,
        ack_interval=0.05,
    ).to(got)
    pub = make_pipeline("pub")
    pub.source("synthetic_prices", timestamps="derived", rate=2000, seed=0, limit=n).to(
        "nats", url=server.url, subject=SUBJECT, id_fields=IDS, stream=STREAM, timeout=1.0
    )
    sub.start()
    pub.start()
    got.wait_for(300)
    server.kill()
    wait_until(lambda: pub.links() == {"nats": "RECONNECTING"}, WAIT, 0.01, "sink reconnecting")
    wait_until(lambda: sub.links() == {"nats": "RECONNECTING"}, WAIT, 0.01, "source reconnecting")
    server.restart()
    wait_until(lambda: pub.links() == {"nats": "CONNECTED"}, WAIT, 0.01, "sink connected")
    wait_until(lambda: sub.links() == {"nats": "CONNECTED"}, WAIT, 0.01, "source connected")
    assert pub.stats()["nats"]["sink_reconnects"] == 1
    assert source_stats(sub)["source_reconnects"] == 1
    wait_until(lambda: pub.done, 20, 0.02, "every record produced")
    assert pub.stop(drain=True, timeout=20)  # every publish acknowledged
    sink = pub.stats()["nats"]
    assert sink["received"] == n and sink["failed"] == 0 and sink["sink_unacknowledged"] == 0
    assert stored(server.url) == n
    ids = stored_ids(server.url)
    assert len(ids) == len(set(ids)) == n
    assert set(ids) == {f"{s}|{t}" for s, t in expected(n, 2000)}
    got.wait_for(n, 20)
    wait_until(lambda: ack_floor(server.url, "live") == n, 20, 0.05, "ack floor at n")
    seen = key(got.records)
    assert len(seen) == len(set(seen)) == n  # each once: redeliveries dropped


@pytest.mark.timeout(30)
def test_the_reconnect_count_is_still_readable_after_stop(
    server: NatsServer, make_pipeline: Callable[[str], Pipeline]
) -> None:
    p = make_pipeline("counted")
    p.source("nats_core", url=server.url, subject="x").to(lambda r: None)
    p.start()
    wait_until(lambda: p.links() == {"nats_core": "CONNECTED"}, WAIT, 0.01, "connected")
    server.kill()
    wait_until(lambda: p.links() == {"nats_core": "RECONNECTING"}, WAIT, 0.01, "reconnecting")
    server.restart()
    wait_until(lambda: p.links() == {"nats_core": "CONNECTED"}, WAIT, 0.01, "back")
    assert p.stats()["nats_core"]["source_reconnects"] == 1
    p.stop()
    assert p.stats()["nats_core"]["source_reconnects"] == 1


# -- 9: core NATS ----------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_core_nats_round_trip(server: NatsServer, make_pipeline: Callable[[str], Pipeline]) -> None:
    # Core NATS has no durability: only what is published while the source is subscribed
    # reaches it, so the test waits for a probe to come through before publishing.
    n = 200
    got = Collector()
    sub = make_pipeline("core-sub")
    sub.source("nats_core", url=server.url, subject="core.>").to(got)
    sub.start()

    async def probe(nc: Any) -> None:
        await nc.publish("core.probe", b'{"probe": true}')
        await nc.flush()

    def probed() -> bool:
        asyncio.run(_with_nc(server.url, probe))
        return len(got) > 0

    wait_until(probed, WAIT, 0.05, "the core subscription")
    pub = make_pipeline("core-pub")
    pub.source("synthetic_prices", timestamps="derived", rate=None, limit=n).to(
        "nats_core", url=server.url, subject="core.{symbol}"
    )
    pub.run()
    assert pub.stats()["nats_core"]["sink_published"] == n

    def data() -> list[dict[str, Any]]:
        return [r for r in list(got.records) if "probe" not in r]

    wait_until(lambda: len(data()) >= n, WAIT, 0.02, "the published records")
    assert key(data()) == expected(n)  # each once, in order
    stats = sub.stats()["nats_core"]
    assert stats["source_received"] >= n and stats["source_bad"] == 0
    assert sub.links() == {"nats_core": "CONNECTED"}
