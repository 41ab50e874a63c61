"""The embedded platform over real gRPC on 127.0.0.1, driven by a raw KeyAccess client."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import grpc
import pytest
from actorwire.adapters.keysquare import keysquare_pb2 as pb
from actorwire.adapters.keysquare.config import PlatformConfig, load_config
from actorwire.adapters.keysquare.server import PlatformServer, serve

from tests.support.waiting import wait_until

from .conftest import RESTRICTED_TOML, WAIT, Client, record, topic, write_config

DEFAULT_KEY = "demo-key"  # the packaged default_config.toml


def client(
    server: PlatformServer, clients: list[Client], app: str = "demo", key: str | None = None
) -> Client:
    made = Client(server, app, key)
    clients.append(made)
    return made


def opened(
    server: PlatformServer, clients: list[Client], app: str = "demo", key: str | None = None
) -> Client:
    made = client(server, clients, app, key).open()
    made.welcome()
    return made


# -- register, schema, snapshot ---------------------------------------------------------------


def test_register_ok_and_refused_without_echoing_the_key(
    server: PlatformServer, clients: list[Client]
) -> None:
    ok = client(server, clients)
    assert len(ok.session_id) == 32
    assert (ok.reply.heartbeat_interval, ok.reply.heartbeat_deadline) == (1.0, 5.0)
    assert ok.reply.platform.startswith("test platform")
    for app, key in (("demo", "wrong-key-123"), ("ghost", "ghost-key-456")):
        with pytest.raises(grpc.RpcError) as info:
            ok.stub.Register(pb.RegisterRequest(application_name=app, api_key=key), timeout=WAIT)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert info.value.details() == f"registration refused for application '{app}'"
        assert key not in (info.value.details() or "") + str(info.value.debug_error_string())
    assert server.sessions() == 1
    assert server.stats()["registrations_refused"] == 2


def test_schema_download(server: PlatformServer, clients: list[Client]) -> None:
    reader = client(server, clients, "reader")
    reply = reader.stub.GetSchema(pb.SchemaRequest(session_id=reader.session_id), timeout=WAIT)
    assert reply.version == 1
    types = {(t.schema, t.name): t for t in reply.types}
    assert set(types) == {
        ("markets", "Price"),
        ("markets", "Trade"),
        ("refdata", "Instrument"),
        ("refdata", "Trade"),
    }
    price = types[("markets", "Price")]
    assert [(f.name, f.type) for f in price.fields][:2] == [("symbol", "string"), ("bid", "float")]
    assert (price.can_read, price.can_publish) == (True, False)
    assert not types[("refdata", "Trade")].can_read
    with pytest.raises(grpc.RpcError) as info:
        reader.stub.GetSchema(pb.SchemaRequest(session_id="nope"), timeout=WAIT)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_snapshot_errors(server: PlatformServer, clients: list[Client]) -> None:
    reader = client(server, clients, "reader")
    cases = [
        (reader.session_id, topic("Prise"), grpc.StatusCode.NOT_FOUND, "close matches"),
        (reader.session_id, topic("Instrument"), grpc.StatusCode.PERMISSION_DENIED, "reader"),
        ("nope", topic("Price"), grpc.StatusCode.UNAUTHENTICATED, "unknown session"),
    ]
    for sid, pattern, code, text in cases:
        with pytest.raises(grpc.RpcError) as info:
            list(reader.stub.Snapshot(pb.SnapshotRequest(session_id=sid, topic=pattern)))
        assert info.value.code() == code
        assert text in (info.value.details() or "")


def test_snapshot_streams_100k_records_in_batches(tmp_path: Path, clients: list[Client]) -> None:
    cfg = load_config(None)
    with serve(port=0, config=cfg) as srv:
        pub = opened(srv, clients, key=DEFAULT_KEY)
        for start in range(0, 100_000, 20_000):
            recs = [
                record(id=f"{i:06d}", data={"bid": float(i)}) for i in range(start, start + 20_000)
            ]
            assert pub.publish_ok(*recs).count == 20_000
        batches = list(
            pub.stub.Snapshot(
                pb.SnapshotRequest(session_id=pub.session_id, topic=topic("Price")), timeout=30
            )
        )
        assert sum(len(b.records) for b in batches) == 100_000
        assert max(len(b.records) for b in batches) <= 1000
        assert batches[0].records[0].header.id == "000000"
        assert batches[-1].records[-1].header.id == "099999"


# -- the Session stream ------------------------------------------------------------------------


def test_publish_ack_and_errors(server: PlatformServer, clients: list[Client]) -> None:
    demo = opened(server, clients)
    ack = demo.publish_ok(record(id="A", data={"bid": 1.0}), record(id="B"))
    assert ack.count == 2
    bad = [
        (record("Prise"), "UNKNOWN_TYPE", "close matches"),
        (record(data={"bid": "x"}), "INVALID", "Price.bid"),
        (record(data=b"\xff{"), "INVALID", "not valid JSON"),
        (record(data={"symbol": "s" * 5000}), "TOO_LARGE", "4096"),
        (record(id=""), "INVALID", "id is required"),
    ]
    for rec, code, text in bad:
        request_id = demo.publish(rec)
        ack = demo.expect("ack")
        assert (ack.request_id, ack.status, ack.code) == (request_id, "ERROR", code)
        assert text in ack.message
    writer = opened(server, clients, "writer")
    writer.publish(record("Trade"))
    ack = writer.expect("ack")
    assert ack.code == "PERMISSION_DENIED" and "'writer' may not publish" in ack.message
    demo.send(pb.ClientMessage(ping=pb.Ping(n=7)))
    assert demo.expect("pong").n == 7


def test_subscribe_cached_then_live_in_order(server: PlatformServer, clients: list[Client]) -> None:
    pub = opened(server, clients)
    pub.publish_ok(*[record(id=f"K{i:04d}") for i in range(2500)])
    sub = opened(server, clients)
    assert sub.subscribe(1, topic("Price")).status == "OK"
    sizes = []
    while True:
        delivery = sub.expect("delivery")
        sizes.append(len(delivery.records))
        if delivery.snapshot_done:
            break
    assert sizes == [1000, 1000, 500]
    pub.publish_ok(record(id="K0001"))
    live = sub.expect("delivery")
    assert not live.snapshot_done
    assert [(r.header.id, r.header.seq) for r in live.records] == [("K0001", 2)]
    # Empty cache: one Delivery with snapshot_done and no records.
    assert sub.subscribe(2, topic("Trade", schema="markets")).status == "OK"
    empty = sub.expect("delivery")
    assert (empty.sub_id, len(empty.records), empty.snapshot_done) == (2, 0, True)
    # cached=false: the reply, then nothing until a live update (the pong comes next).
    assert sub.subscribe(3, topic("Price"), cached=False).status == "OK"
    sub.send(pb.ClientMessage(ping=pb.Ping(n=1)))
    assert sub.expect("pong").n == 1


def test_no_live_update_is_lost_or_reordered_around_the_snapshot(
    server: PlatformServer, clients: list[Client]
) -> None:
    pub = opened(server, clients)
    sub = opened(server, clients)
    total = 400
    pub.publish_ok(record(id="X"))
    started = threading.Event()

    def publish_many() -> None:
        for _ in range(total - 1):
            pub.publish(record(id="X"))
            started.set()

    thread = threading.Thread(target=publish_many)
    thread.start()
    assert started.wait(WAIT)
    assert sub.subscribe(1, topic("Price", id="X")).status == "OK"
    seqs = [r.header.seq for r in sub.snapshot_deliveries(1)]
    while seqs[-1] < total:
        seqs.extend(r.header.seq for r in sub.expect("delivery").records)
    thread.join()
    assert seqs == list(range(seqs[0], total + 1))


def test_two_sessions_fan_out_one_delivery_per_publish(
    server: PlatformServer, clients: list[Client]
) -> None:
    a, b = opened(server, clients), opened(server, clients, "reader")
    pub = opened(server, clients)
    a.subscribe(1, topic("Price"), cached=False)
    b.subscribe(9, topic("Price"), cached=False)
    pub.publish_ok(record(id="1"), record(id="2"), record("Trade", id="t"), record(id="3"))
    for session, sub_id in ((a, 1), (b, 9)):
        delivery = session.expect("delivery")
        assert delivery.sub_id == sub_id
        assert [r.header.id for r in delivery.records] == ["1", "2", "3"]
        assert all(r.header.publisher == "demo" for r in delivery.records)


def test_unsubscribe_stops_delivery(server: PlatformServer, clients: list[Client]) -> None:
    demo = opened(server, clients)
    demo.subscribe(1, topic("Price"), cached=False)
    demo.publish(record(id="A"))
    assert demo.expect("delivery").sub_id == 1  # deliveries come before the publisher's ack
    assert demo.expect("ack").status == "OK"
    demo.send(pb.ClientMessage(unsubscribe=pb.Unsubscribe(sub_id=1)))
    demo.publish(record(id="B"))
    assert demo.expect("ack").status == "OK"  # and no Delivery before it


def test_edit_reaches_subscribers(server: PlatformServer, clients: list[Client]) -> None:
    pub, sub = opened(server, clients), opened(server, clients, "reader")
    pub.publish_ok(record(id="E", data={"bid": 1.0, "ask": 2.0}))
    sub.subscribe(1, topic("Price"), cached=False)
    key = topic("Price", schema="markets", source="src", group="g", id="E")
    pub.send(pb.ClientMessage(edit=pb.Edit(request_id=5, key=key, patch=b'{"bid": 1.5}')))
    ack = pub.expect("ack")
    assert (ack.request_id, ack.status, ack.count) == (5, "OK", 1)
    (rec,) = sub.expect("delivery").records
    assert json.loads(rec.data) == {"bid": 1.5, "ask": 2.0} and rec.header.seq == 2
    key.id = "missing"
    pub.send(pb.ClientMessage(edit=pb.Edit(request_id=6, key=key, patch=b"{}")))
    ack = pub.expect("ack")
    assert (ack.request_id, ack.code) == (6, "NOT_FOUND")


def test_voided_record_reaches_subscribers(server: PlatformServer, clients: list[Client]) -> None:
    pub, sub = opened(server, clients), opened(server, clients)
    pub.publish_ok(record(id="V", data={"bid": 1.0}))
    sub.subscribe(1, topic("Price"), cached=False)
    pub.publish_ok(record(id="V", data=b"", voided=True))
    (rec,) = sub.expect("delivery").records
    assert rec.header.voided and json.loads(rec.data) == {"bid": 1.0}
    sub.subscribe(2, topic("Price"))
    assert sub.snapshot_deliveries(2) == []


def test_subscribe_errors(server: PlatformServer, clients: list[Client]) -> None:
    reader = opened(server, clients, "reader")
    reply = reader.subscribe(1, topic("Instrument"))
    assert (reply.status, reply.code) == ("ERROR", "PERMISSION_DENIED")
    reply = reader.subscribe(2, topic("Prise"))
    assert (reply.status, reply.code) == ("ERROR", "UNKNOWN_TYPE")
    assert "close matches" in reply.message
    assert reader.subscribe(3, topic("Price"), cached=False).status == "OK"
    reply = reader.subscribe(3, topic("Price"), cached=False)
    assert (reply.status, reply.code) == ("ERROR", "INVALID")


def test_malformed_requests_get_errors_while_others_keep_working(
    server: PlatformServer, clients: list[Client]
) -> None:
    good_pub, good_sub = opened(server, clients), opened(server, clients)
    good_sub.subscribe(1, topic("Price"), cached=False)
    bad = opened(server, clients)
    bad.send(pb.ClientMessage())
    ack = bad.expect("ack")
    assert (ack.status, ack.code) == ("ERROR", "INVALID") and "no body" in ack.message
    bad.send(pb.ClientMessage(hello=pb.Hello(session_id=bad.session_id)))
    assert "only allowed as the first" in bad.expect("ack").message
    bad.publish(record(data=b"not json"))
    assert bad.expect("ack").code == "INVALID"
    # Streams that never say Hello properly are refused.
    for first in (
        pb.ClientMessage(ping=pb.Ping(n=1)),
        pb.ClientMessage(hello=pb.Hello(session_id="made-up")),
    ):
        intruder = client(server, clients).open(hello=first)
        assert intruder.ended.wait(WAIT)
        assert intruder.error is not None
        assert intruder.error.code() == grpc.StatusCode.UNAUTHENTICATED
    good_pub.publish_ok(record(id="fine"))
    assert [r.header.id for r in good_sub.expect("delivery").records] == ["fine"]
    bad.send(pb.ClientMessage(ping=pb.Ping(n=3)))
    assert bad.expect("pong").n == 3
    assert server.stats()["bad_messages"] >= 3


def test_define_type_pushes_schema_changed(server: PlatformServer, clients: list[Client]) -> None:
    a, b = opened(server, clients), opened(server, clients, "reader")
    assert server.define_type("markets", "Quote", {"symbol": "string", "size": "int"}) == 2
    for session in (a, b):
        assert session.expect("schema_changed").version == 2
    schema = a.stub.GetSchema(pb.SchemaRequest(session_id=a.session_id), timeout=WAIT)
    assert schema.version == 2 and any(t.name == "Quote" for t in schema.types)
    assert a.publish_ok(record("Quote", data={"size": 3})).count == 1
    with pytest.raises(ValueError, match="unknown field type"):
        server.define_type("markets", "Bad", {"x": "double"})


def test_client_closing_its_stream_ends_the_session(
    server: PlatformServer, clients: list[Client]
) -> None:
    demo = opened(server, clients)
    assert server.sessions() == 1
    demo.half_close()
    assert demo.ended.wait(WAIT) and demo.error is None
    wait_until(lambda: server.sessions() == 0, timeout=WAIT)


# -- liveness, slow consumers, restart ----------------------------------------------------------


def test_heartbeat_deadline_drops_a_silent_session(tmp_path: Path, clients: list[Client]) -> None:
    text = RESTRICTED_TOML.replace("heartbeat_interval = 1.0", "heartbeat_interval = 0.1")
    text = text.replace("heartbeat_deadline = 5.0", "heartbeat_deadline = 0.4")
    with serve(port=0, config=write_config(tmp_path, text)) as srv:
        silent, chatty = opened(srv, clients), opened(srv, clients)
        silent.subscribe(1, topic("Price"), cached=False)
        n = 0
        while not silent.ended.is_set():  # the chatty session pings at its interval
            n += 1
            chatty.send(pb.ClientMessage(ping=pb.Ping(n=n)))
            assert chatty.expect("pong").n == n
            assert n < 200, "the silent session was never dropped"
            silent.ended.wait(0.1)
        assert silent.error is not None
        assert silent.error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "heartbeat deadline" in (silent.error.details() or "")
        assert srv.sessions() == 1
        assert srv.stats()["sessions_dropped_deadline"] == 1
        with pytest.raises(grpc.RpcError) as info:
            silent.stub.GetSchema(pb.SchemaRequest(session_id=silent.session_id), timeout=WAIT)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        chatty.publish_ok(record(id="still-here"))


def test_slow_consumer_is_dropped_without_blocking_publishers(clients: list[Client]) -> None:
    with serve(port=0, config=load_config(None), outbound_limit=50) as srv:
        slow = client(srv, clients, key=DEFAULT_KEY)
        slow.open(read=False)  # never reads its stream
        slow.send(pb.ClientMessage(subscribe=pb.Subscribe(sub_id=1, topic=topic("Price"))))
        pub = opened(srv, clients, key=DEFAULT_KEY)
        fast = opened(srv, clients, key=DEFAULT_KEY)
        fast.subscribe(1, topic("Price"), cached=False)
        payload = {"symbol": "x" * 60_000}
        sent = 0
        while srv.stats()["sessions_dropped_overflow"] == 0:
            sent += 1
            assert sent < 2000, "the slow session was never dropped"
            pub.publish_ok(record(id=f"P{sent}", data=payload))
            assert fast.expect("delivery").records[0].header.id == f"P{sent}"
        pub.publish_ok(record(id="after"))
        assert fast.expect("delivery").records[0].header.id == "after"
        wait_until(lambda: srv.sessions() == 2, timeout=WAIT)


def test_store_survives_restart_and_seqs_continue(tmp_path: Path, clients: list[Client]) -> None:
    store = tmp_path / "store.sqlite"
    config: PlatformConfig = load_config(None)
    with serve(port=0, config=config, store_path=store) as srv:
        pub = opened(srv, clients, key=DEFAULT_KEY)
        pub.publish_ok(record(id="S", data={"bid": 1.0}), store=True)
        pub.publish_ok(record(id="S", data={"bid": 2.0}))  # a stored topic stays stored
        pub.publish_ok(record(id="T", data={"bid": 9.0}))  # never stored
    with serve(port=0, config=config, store_path=store) as srv:
        pub = opened(srv, clients, key=DEFAULT_KEY)
        snap = list(
            pub.stub.Snapshot(pb.SnapshotRequest(session_id=pub.session_id, topic=topic("Price")))
        )
        (rec,) = [r for batch in snap for r in batch.records]
        assert (rec.header.id, rec.header.seq, json.loads(rec.data)) == ("S", 2, {"bid": 2.0})
        sub = opened(srv, clients, key=DEFAULT_KEY)
        sub.subscribe(1, topic("Price"), cached=False)
        pub.publish_ok(record(id="S", data={"bid": 3.0}))
        assert sub.expect("delivery").records[0].header.seq == 3


def test_serve_handle(restricted_config: PlatformConfig, clients: list[Client]) -> None:
    srv = serve(port=0, config=restricted_config)
    assert srv.host == "127.0.0.1" and srv.port > 0
    demo = opened(srv, clients)
    srv.stop()
    srv.stop()  # idempotent
    assert demo.ended.wait(WAIT)
    assert demo.error is not None and demo.error.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(RuntimeError, match="not running"):
        srv.define_type("m", "T", {})
    with pytest.raises(OSError, match="cannot listen"):
        serve(host="256.0.0.1", port=0, config=restricted_config)
