"""The kdb adapter in pipelines: the ``kdb_upsert`` sink writing into a real embedded
gateway (rows reach a GatewayClient subscriber and ``snapshot``; bad records are counted
with their reason, the rest of the batch written), its refusals at build time (no embedded
gateway, unknown topic or columns), and a definition with an inline topic running
synthetic prices -> tumbling_window -> kdb_upsert."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from actorwire.adapters.kdb import GatewayClient, GatewayServer, parse_config, serve
from actorwire.adapters.kdb.pipeline import EmbeddedGateway, KdbUpsertSink, plugin
from actorwire.adapters.kdb.topics import format_timestamp
from actorwire.pipelines import DefinitionError, Pipeline, load_definition

from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(60)

TOKEN = "pipeline-token"
BARS = {
    "name": "bars",
    "keys": {"key": "symbol"},
    "values": {
        "open": "float",
        "high": "float",
        "low": "float",
        "close": "float",
        "vwap": "float",
        "volume": "long",
        "window_start": "timestamp",
    },
}
T0 = 1_700_000_000.0


def bar(key: str, close: float, n: int = 0) -> dict[str, Any]:
    return {
        "key": key,
        "window_start": T0 + n,
        "window_end": T0 + n + 1,
        "open": 100.0,
        "high": max(close, 100.0),
        "low": min(close, 100.0),
        "close": close,
        "volume": 10 + n,
        "vwap": (100.0 + close) / 2,
    }


@pytest.fixture
def gateway() -> Iterator[GatewayServer]:
    config = parse_config(
        {"gateway": {"tokens": [TOKEN], "update_interval": 0.05}, "topics": [BARS]}
    )
    server = serve(config=config)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pipelines() -> Iterator[list[Pipeline]]:
    made: list[Pipeline] = []
    yield made
    for p in made:
        p.stop(drain=False)


def upsert_pipeline(made: list[Pipeline], gateway: Any, **params: Any) -> Pipeline:
    p = Pipeline("kdb-upsert")
    params.setdefault("topic", "bars")
    p.source("inlet", name="in").to("kdb_upsert", name="kdb", gateway=gateway, **params)
    made.append(p)
    return p.start()


def rows_by_key(columns: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    names = list(columns)
    return {
        row["key"]: row
        for row in (
            dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)
        )
    }


def test_the_plugin_registers_the_sink_and_the_server_kind() -> None:
    made = plugin()
    assert made.sinks["kdb_upsert"] is KdbUpsertSink
    assert made.servers["kdb"].build is EmbeddedGateway


def test_upserts_reach_a_subscriber_and_the_snapshot(
    gateway: GatewayServer, pipelines: list[Pipeline]
) -> None:
    seen: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def on_update(update: dict[str, list[Any]], _sub: Any) -> None:
        with lock:
            seen.update(rows_by_key(update))

    with GatewayClient(gateway.url, TOKEN) as client:
        client.subscribe("bars", callback=on_update, return_type="dict")
        p = upsert_pipeline(pipelines, gateway)
        # One batch, the same key twice: the later row wins, as in one column dict.
        p.address("in").tell_many([bar("AAPL", 101.0), bar("MSFT", 99.0), bar("AAPL", 102.0, 1)])

        def arrived() -> bool:
            with lock:
                return seen.get("AAPL", {}).get("close") == 102.0 and "MSFT" in seen

        wait_until(arrived, timeout=10, what="the subscriber's update")
        p.stop()
    with lock:
        assert seen["MSFT"]["close"] == 99.0
        assert seen["AAPL"]["window_start"] == format_timestamp(int(T0 + 1) * 10**9)
    snap = rows_by_key(gateway.snapshot("bars"))
    assert sorted(snap) == ["AAPL", "MSFT"]
    assert snap["AAPL"]["volume"] == 11 and snap["AAPL"]["vwap"] == 101.0
    stats = p.stats()["kdb"]
    assert stats["processed"] == 3 and stats["failed"] == 0
    assert stats["sink_upserted"] >= 3 and stats["sink_batches"] >= 1


def test_a_bad_record_is_counted_with_its_reason_and_the_rest_written(
    gateway: GatewayServer, pipelines: list[Pipeline]
) -> None:
    p = upsert_pipeline(pipelines, gateway)
    lacking = bar("GOOG", 50.0)
    del lacking["close"]
    wrong = {**bar("AMZN", 70.0), "volume": 1.5}  # a float for a long column
    p.address("in").tell_many([bar("AAPL", 101.0), lacking, wrong, bar("MSFT", 99.0)])
    wait_until(lambda: p.stats()["kdb"]["received"] == 4, timeout=10, what="4 records handled")
    p.stop()
    stats = p.stats()["kdb"]
    assert stats["failed"] == 2 and stats["processed"] == 2
    assert sorted(rows_by_key(gateway.snapshot("bars"))) == ["AAPL", "MSFT"]
    assert p.system is not None
    reasons = [d.reason for d in p.system.dead_letters.recent() if d.recipient.endswith(".kdb")]
    assert len(reasons) == 2, reasons
    assert "record has no field(s) 'close' for topic 'bars'" in reasons[0]
    assert "column 'volume' must be a long" in reasons[1]


def test_fields_map_record_fields_to_columns_and_may_leave_value_columns_out(
    gateway: GatewayServer, pipelines: list[Pipeline]
) -> None:
    row = bar("AAPL", 101.0)
    del row["window_end"]
    row["window_start"] = int(T0) * 10**9  # the gateway's own form: ns
    gateway.upsert("bars", [row])
    p = upsert_pipeline(pipelines, gateway, fields={"symbol": "key", "last": "close"})
    p.address("in").tell_many([{"symbol": "AAPL", "last": 105.5, "other": "ignored"}])
    wait_until(
        lambda: rows_by_key(gateway.snapshot("bars"))["AAPL"]["close"] == 105.5,
        timeout=10,
        what="the close updated",
    )
    p.stop()
    assert rows_by_key(gateway.snapshot("bars"))["AAPL"]["open"] == 100.0  # kept


def test_the_sink_refuses_at_build_without_an_embedded_gateway(gateway: GatewayServer) -> None:
    with pytest.raises(ValueError, match="no publish") as no_gateway:
        KdbUpsertSink("bars")
    assert "server = " in str(no_gateway.value)
    with pytest.raises(ValueError, match=r"cannot write to url 'ws://h:8500/'.*no publish"):
        KdbUpsertSink("bars", gateway=gateway, url="ws://h:8500/")
    with pytest.raises(ValueError, match=r"topic 'trades' is not one of the gateway's topics"):
        KdbUpsertSink("trades", gateway=gateway)
    with pytest.raises(ValueError, match=r"lacks \(columns: key, open"):
        KdbUpsertSink("bars", gateway=gateway, fields=["key", "price"])
    with pytest.raises(ValueError, match="leaves out key column"):
        KdbUpsertSink("bars", gateway=gateway, fields=["close"])
    with pytest.raises(ValueError, match="time_unit must be one of s, ms, us, ns"):
        KdbUpsertSink("bars", gateway=gateway, time_unit="minutes")


def test_the_sink_refuses_to_start_while_its_embedded_gateway_is_not_running(
    pipelines: list[Pipeline],
) -> None:
    embedded = EmbeddedGateway("127.0.0.1", 0, {"topics": [BARS]}, None, Path("."))
    p = Pipeline("kdb-not-running")
    p.source("inlet", name="in").to("kdb_upsert", name="kdb", gateway=embedded, topic="bars")
    pipelines.append(p)
    with pytest.raises(Exception, match=r"embedded gateway EmbeddedGateway\(127.0.0.1:0\) is not"):
        p.start()


DEFINITION = """\
[pipeline]
name = "bars-to-kdb"

[servers.gw]
kind = "kdb"

[[servers.gw.config.topics]]        # the same as config = {{ topics = [ {{ ... }} ] }}
name = "bars"
keys = {{ key = "symbol" }}

[servers.gw.config.topics.values]
open = "float"
high = "float"
low = "float"
close = "float"
vwap = "float"
volume = "long"
window_start = "timestamp"

[[sources]]
name = "ticks"
kind = "synthetic_prices"
symbols = ["AAPL", "MSFT"]
rate = 4000
limit = 600
timestamps = "derived"

[[stages]]
name = "bars"
kind = "tumbling_window"
from = "ticks"
size = 0.05
key = "symbol"
time_field = "timestamp"
aggregations = ["ohlc", "vwap"]

[[sinks]]
name = "kdb"
kind = "kdb_upsert"
from = "bars"
server = "gw"
topic = "{topic}"

[[sinks]]
name = "record"
kind = "jsonl_file"
from = "bars"
path = "{path}"
"""


def test_a_definition_with_an_inline_topic_upserts_its_bars(tmp_path: Path) -> None:
    recorded = tmp_path / "bars.jsonl"
    p = load_definition(DEFINITION.format(topic="bars", path=recorded.as_posix()))
    p.start()
    try:
        embedded = p.servers["gw"].server  # type: ignore[attr-defined]
        assert embedded.config.tokens == ("demo-token",)  # the packaged default's gateway
        server = embedded.server
        assert isinstance(server, GatewayServer)
    finally:
        p.run(duration=20)  # the source ends after 600 records; run drains and returns
    bars = [json.loads(line) for line in recorded.read_text().splitlines()]
    assert len(bars) >= 4
    stats = p.stats()["kdb"]
    assert stats["failed"] == 0 and stats["processed"] == len(bars)
    latest = {b["key"]: b for b in bars}  # the topic is keyed on key: the last bar wins
    snap = rows_by_key(server.snapshot("bars"))
    assert sorted(snap) == ["AAPL", "MSFT"]
    for key, row in snap.items():
        want = latest[key]
        for column in ("open", "high", "low", "close", "vwap", "volume"):
            assert row[column] == want[column], (key, column)
        # A float's shortest text, in ns: 1700000000.15 s is ...20.150000000.
        ns = int(Decimal(repr(want["window_start"])) * 10**9)
        assert row["window_start"] == format_timestamp(ns)


def test_a_definition_naming_a_topic_the_gateway_lacks_is_refused_at_the_key_path(
    tmp_path: Path,
) -> None:
    text = DEFINITION.format(topic="trades", path=(tmp_path / "x.jsonl").as_posix())
    with pytest.raises(DefinitionError) as refused:
        load_definition(text)
    [error] = refused.value.errors
    assert error.path == "sinks[0].topic"
    assert "topic 'trades' is not one of the gateway's topics ('bars')" in error.message


def test_an_inline_config_without_tokens_takes_the_packaged_token() -> None:
    only_topics = EmbeddedGateway.parse({"topics": [BARS]}, "p.toml", None)
    assert only_topics.tokens == ("demo-token",) and only_topics.auth
    assert [t.name for t in only_topics.topics] == ["bars"]
    faster = EmbeddedGateway.parse({"gateway": {"update_interval": 0.1}}, "p.toml", None)
    assert faster.tokens == ("demo-token",) and faster.update_interval == 0.1
    own = EmbeddedGateway.parse({"gateway": {"tokens": ["mine"]}}, "p.toml", None)
    assert own.tokens == ("mine",)
    assert EmbeddedGateway.parse({"gateway": {"auth": False}}, "p.toml", None).tokens == ()
    with pytest.raises(ValueError, match=r"gateway\.tokn: unknown key"):
        EmbeddedGateway.parse({"gateway": {"tokn": ["x"]}}, "p.toml", None)
