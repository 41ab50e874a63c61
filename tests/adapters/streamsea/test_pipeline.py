"""The ``streamsea_publish`` sink and the ``streamsea`` source: records published reach a
subscriber, refusals and outages are counted (never lost silently), schemas are given or
inferred, and a definition wires them to an embedded server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from actorwire.adapters.streamsea import FieldType, StreamSeaConnection, StreamSeaServer, serve
from actorwire.adapters.streamsea.pipeline import infer_schema, schema_from_table
from actorwire.pipelines import Pipeline, load_definition, make_sink

from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(30)


class Server:
    """The embedded server on 127.0.0.1, restartable on the same port."""

    def __init__(self) -> None:
        self.server: StreamSeaServer | None = serve(port=0)
        self.port = self.server.port

    @property
    def login(self) -> dict[str, Any]:
        return {
            "remote_host": "127.0.0.1",
            "remote_port": self.port,
            "client_id": "demo",
            "client_secret": "demo-secret",
        }

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.stop()

    def start(self) -> None:
        self.server = serve(port=self.port)


@pytest.fixture
def server() -> Iterator[Server]:
    server = Server()
    try:
        yield server
    finally:
        server.stop()


class Payloads:
    """A subscription callback's payloads, with a wait for a count."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.items: list[Any] = []

    def __call__(self, payload: Any) -> None:
        with self._cond:
            self.items.append(payload)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.items) >= count, timeout):
                pytest.fail(f"{len(self.items)} payloads in {timeout}s, wanted {count}")
            return list(self.items)


def publisher(server: Server, **params: Any) -> Pipeline:
    p = Pipeline("publish")
    p.source("inlet", name="in").to(
        "streamsea_publish", name="pub", **{"stream": "bars", **server.login, **params}
    )
    return p


BARS = [{"key": f"S{i}", "open": 1.0 + i, "close": 2.0, "volume": 10 * i} for i in range(5)]


def test_published_records_reach_a_subscriber(server: Server) -> None:
    payloads = Payloads()
    assert server.server is not None
    server.server.define(infer_schema("bars", 1, BARS[0]))  # a stream to subscribe to first
    p = publisher(server)
    with StreamSeaConnection(**server.login) as conn, p:
        conn.subscribe("bars", callback=payloads)
        p.address("in").tell_many(BARS)
        assert payloads.wait_for(5) == BARS
    assert p.stats()["pub"]["sink_published"] == 5
    assert p.stats()["pub"]["failed"] == 0


def test_a_schema_violation_fails_the_record_with_the_servers_reason(server: Server) -> None:
    p = publisher(server, schema={"key": "string", "close": "float", "volume": "integer"})
    records = [
        {"key": "A", "close": 1.5, "volume": 3},
        {"key": "B", "close": 1.5, "volume": 2.5},  # not an integer
        {"key": "C", "close": 2.5, "volume": 4},
    ]
    with p:
        p.address("in").tell_many(records)
        wait_until(
            lambda: p.stats()["pub"]["sink_published"] + p.stats()["pub"]["failed"] == 3,
            10,
            what="three records written",
        )
        system = p.system
        assert system is not None
        reasons = [d.reason for d in system.dead_letters.recent() if d.failed]
    stats = p.stats()["pub"]
    assert (stats["sink_published"], stats["sink_refused"], stats["failed"]) == (2, 1, 1)
    assert len(reasons) == 1 and "volume" in reasons[0] and "refused (400)" in reasons[0]
    assert server.server is not None
    schema = server.server.schema("bars")
    assert schema is not None and schema.json_serialize()["fields"][2]["type"] == "integer"


def test_an_unreachable_server_is_retried_then_counted_failed(server: Server) -> None:
    server.stop()
    p = publisher(server, timeout=0.3)
    with p:
        p.address("in").tell_many(BARS[:3])
        wait_until(lambda: p.stats()["pub"]["failed"] == 3, 10, what="three records failed")
    stats = p.stats()["pub"]
    assert stats["sink_unreachable"] == 3 and stats["sink_published"] == 0
    assert stats["sink_retries"] >= 1


def test_a_server_back_within_the_timeout_gets_the_record(server: Server) -> None:
    server.stop()
    p = publisher(server, timeout=10.0)
    with p:
        p.address("in").tell_many(BARS[:2])
        wait_until(lambda: p.stats()["pub"]["sink_retries"] >= 2, 10, what="retries")
        server.start()
        wait_until(lambda: p.stats()["pub"]["sink_published"] == 2, 10, what="both published")
    assert p.stats()["pub"]["failed"] == 0


def test_the_source_emits_each_payload(server: Server) -> None:
    assert server.server is not None
    server.server.define(infer_schema("bars", 1, BARS[0]))
    got = Payloads()
    p = Pipeline("subscribe")
    p.source("streamsea", name="sub", stream="bars", **server.login).to(got)
    with p:
        assert p.links() == {"sub": "CONNECTED"}
        for bar in BARS[:3]:
            server.server.publish("bars", bar)
        assert got.wait_for(3) == BARS[:3]
    assert p.stats()["sub"]["source_records"] == 3


def test_schemas_from_tables_and_records() -> None:
    table = {
        "key": "string",
        "count": "INTEGER",
        "side": {"type": "enum", "enum": ["buy", "sell"]},
        "at": {"when": "date"},
    }
    fields = schema_from_table("s", 2, table).json_serialize()["fields"]
    assert [f["type"] for f in fields] == ["string", "integer", "enum", "object"]
    assert fields[3]["fields"] == [{"name": "when", "type": "date"}]
    inferred = infer_schema("s", 1, {"a": 1, "b": "x", "c": [1.0], "d": [{"e": "y"}]})
    types = [f["type"] for f in inferred.json_serialize()["fields"]]
    assert types == [FieldType.FLOAT, FieldType.STRING, FieldType.FLOAT_ARRAY, "array<object>"]
    with pytest.raises(ValueError, match="flag is a bool: stream-sea has no boolean type"):
        infer_schema("s", 1, {"flag": True})
    with pytest.raises(ValueError, match=r"schema\.x: unknown field type 'double'"):
        schema_from_table("s", 1, {"x": "double"})


def test_sink_parameters_are_checked() -> None:
    login = {"remote_host": "h", "client_id": "c", "client_secret": "s3cr3t"}
    with pytest.raises(ValueError, match="streamsea_publish: remote_host must be a host name"):
        make_sink("streamsea_publish", stream="s", client_id="c", client_secret="x")
    with pytest.raises(ValueError, match="streamsea_publish: client_secret must be a non-empty"):
        make_sink("streamsea_publish", stream="s", remote_host="h", client_id="c")
    with pytest.raises(ValueError, match=r"streamsea_publish: schema\.x: unknown field type"):
        make_sink("streamsea_publish", stream="s", schema={"x": "double"}, **login)
    sink = make_sink("streamsea_publish", stream="s", **login)
    assert "s3cr3t" not in repr(sink)


# -- in a definition ---------------------------------------------------------------------------

DEFINITION = """
[pipeline]
name = "to-streams"

[servers.streams]
kind = "streamsea"

[[sources]]
name = "ticks"
kind = "synthetic_prices"
symbols = ["AAPL", "MSFT"]
rate = 400
limit = 40
seed = 7

[[sinks]]
name = "publish"
kind = "streamsea_publish"
from = "ticks"
server = "streams"
stream = "prices"
"""


def test_a_definition_publishes_to_an_embedded_server() -> None:
    p = load_definition(DEFINITION)
    p.run(duration=10.0)  # the source stops after 40 records
    stats = p.stats()["publish"]
    assert (stats["sink_published"], stats["failed"]) == (40, 0)
