"""The platform's memory is bounded in bytes: a session's outbound queue holds at most
``max_outbox_bytes``, and a session that falls behind by more, or that takes nothing for
``stall_deadline`` while data waits (however much it pings), is dropped, counted and logged.
Real gRPC on 127.0.0.1, driven by the raw KeyAccess client."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import grpc
import pytest
from actorwire.adapters.keysquare import keysquare_pb2 as pb
from actorwire.adapters.keysquare.config import (
    MAX_OUTBOX_BYTES,
    STALL_DEADLINE,
    load_config,
    with_session_limits,
)
from actorwire.adapters.keysquare.server import PlatformServer, serve

from tests.support.waiting import wait_until

from .conftest import WAIT, Client, record, topic, write_config

RECORD_LIMIT = 100_000
BUDGET = 2 << 20  # the least max_outbox_bytes allows with RECORD_LIMIT (2 x 1 MiB)
PAYLOAD = {"symbol": "x" * 60_000}  # a ~60 KB record

CONFIG = f"""
[platform]
name = "memory test platform"
heartbeat_interval = 1.0
heartbeat_deadline = 5.0
max_record_bytes = {RECORD_LIMIT}

[[applications]]
name = "demo"
api_key = "demo-secret-key"
read = ["*"]
publish = ["*"]

[[schemas]]
name = "markets"

[[schemas.types]]
name = "Price"
fields = {{ symbol = "string", bid = "float" }}
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path, CONFIG)


def opened(server: PlatformServer, clients: list[Client], read: bool = True) -> Client:
    made = Client(server)
    clients.append(made)
    made.open(read=read)
    if read:
        made.welcome()
    return made


def subscribe_without_reading(server: PlatformServer, client: Client, expected: int) -> None:
    """Subscribe on a stream nobody reads: the platform's subscription count shows it took."""
    client.send(
        pb.ClientMessage(subscribe=pb.Subscribe(sub_id=1, topic=topic("Price"), cached=False))
    )
    wait_until(lambda: server.subscriptions() == expected, timeout=WAIT, what="the subscription")


def start_reading(client: Client) -> None:
    """A client that has not read its stream starts now. A dropped session's end reaches it
    after what gRPC had already taken for it (the status follows the data)."""
    threading.Thread(target=client._read, daemon=True).start()


def log_events(buffer: io.StringIO, event: str) -> list[dict[str, object]]:
    lines = (json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{"))
    return [line for line in lines if line.get("event") == event]


def test_a_subscriber_that_never_reads_is_dropped_at_its_byte_budget_while_a_reader_gets_all(
    config_path: Path, clients: list[Client], json_log: io.StringIO
) -> None:
    with serve(port=0, config=config_path, max_outbox_bytes=BUDGET, stall_deadline=60) as srv:
        slow = opened(srv, clients, read=False)
        subscribe_without_reading(srv, slow, 1)
        fast = opened(srv, clients)
        assert fast.subscribe(1, topic("Price"), cached=False).status == "OK"
        pub = opened(srv, clients)
        sent: list[str] = []
        while srv.stats()["sessions_dropped_overflow"] == 0:
            assert len(sent) < 1000, "the session that never reads was never dropped"
            sent.append(f"P{len(sent)}")
            pub.publish_ok(record(id=sent[-1], data=PAYLOAD))
        for i in range(5):  # the platform carries on without it
            sent.append(f"after{i}")
            pub.publish_ok(record(id=sent[-1], data=PAYLOAD))
        deliveries = [fast.recv() for _ in sent]
        assert [r.header.id for d in deliveries for r in d.delivery.records] == sent
        # The queue of the session that never read reached its budget, never more.
        largest = max(d.ByteSize() for d in deliveries)  # what each subscriber was sent
        stats = srv.stats()
        assert BUDGET - largest < stats["peak_outbox_bytes"] <= BUDGET
        assert (stats["sessions_dropped_overflow"], stats["sessions_dropped_stalled"]) == (1, 0)
        assert stats["sessions_dropped_slow"] == 1
        wait_until(lambda: srv.sessions() == 2, timeout=WAIT, what="the slow session gone")
        # Reading at last, the client gets what gRPC held for it, in order, then the drop.
        start_reading(slow)
        assert slow.ended.wait(WAIT) and slow.error is not None
        assert slow.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"more than {BUDGET} bytes queued" in (slow.error.details() or "")
        got = []
        while not isinstance(item := slow.inbox.get_nowait(), grpc.RpcError):
            assert isinstance(item, pb.ServerMessage)
            if item.WhichOneof("body") == "delivery":
                got.extend(r.header.id for r in item.delivery.records)
        assert got and got == sent[: len(got)]
    (dropped,) = log_events(json_log, "session dropped: reading too slowly")
    assert str(dropped["peer"]).startswith("ipv4:127.0.0.1:")
    assert dropped["max_outbox_bytes"] == BUDGET


def test_a_client_that_pings_but_never_reads_is_dropped_after_the_stall_deadline(
    tmp_path: Path, clients: list[Client]
) -> None:
    # A session silent for 0.5 s is dropped: only its pings keep the pinger alive for 1 s.
    text = CONFIG.replace("heartbeat_interval = 1.0", "heartbeat_interval = 0.1")
    text = text.replace("heartbeat_deadline = 5.0", "heartbeat_deadline = 0.5")
    stall = 1.0
    budget = 256 << 20  # far more than the test sends: only the stall can drop it
    config = write_config(tmp_path, text)
    with serve(port=0, config=config, max_outbox_bytes=budget, stall_deadline=stall) as srv:
        pinger = opened(srv, clients, read=False)
        subscribe_without_reading(srv, pinger, 1)
        pub = opened(srv, clients)
        pings = 0

        def ping() -> None:
            nonlocal pings
            pings += 1
            pinger.send(pb.ClientMessage(ping=pb.Ping(n=pings)))

        first_publish = time.monotonic()
        # Until gRPC's own buffers are full and records wait in the platform's queue.
        published = 0
        while (stats := srv.stats())["queued_bytes"] < 200_000:
            if stats["sessions_dropped_stalled"]:
                break  # a slow machine: the stall came already
            assert published < 1000, "the platform never queued data for the pinger"
            published += 1
            ping()
            pub.publish_ok(record(id=str(published % 10), data=PAYLOAD))

        def pinging() -> bool:
            ping()  # the pinger keeps pinging, and the publisher too (a short heartbeat)
            pub.send(pb.ClientMessage(ping=pb.Ping(n=pings)))
            assert pub.expect("pong").n == pings
            return srv.stats()["sessions_dropped_stalled"] > 0

        wait_until(pinging, timeout=WAIT, interval=0.02, what="the pinger dropped as stalled")
        assert time.monotonic() - first_publish >= stall
        start_reading(pinger)
        assert pinger.ended.wait(WAIT) and pinger.error is not None
        assert pinger.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"took nothing for {stall:g}s" in (pinger.error.details() or "")
        stats = srv.stats()
        assert (stats["sessions_dropped_stalled"], stats["sessions_dropped_overflow"]) == (1, 0)
        assert stats["sessions_dropped_deadline"] == 0  # its pings kept it alive until then
        assert stats["peak_outbox_bytes"] < budget
        wait_until(lambda: srv.sessions() == 1, timeout=WAIT, what="the pinger's session gone")
        pub.publish_ok(record(id="still-here", data={"bid": 1.0}))


def test_peak_queued_bytes_stay_within_the_budget_plus_one_message_with_60kb_records(
    tmp_path: Path, clients: list[Client]
) -> None:
    # The limits from the config file this time (serve's keywords left at None).
    text = CONFIG.replace(
        f"max_record_bytes = {RECORD_LIMIT}",
        f"max_record_bytes = {RECORD_LIMIT}\nmax_outbox_bytes = {BUDGET}\nstall_deadline = 60.0",
    )
    with serve(port=0, config=write_config(tmp_path, text)) as srv:
        stalled = opened(srv, clients, read=False)
        subscribe_without_reading(srv, stalled, 1)
        reader = opened(srv, clients)
        reader.subscribe(1, topic("Price"), cached=False)
        pub = opened(srv, clients)
        largest = total = published = 0
        while total < 10 * BUDGET:  # ten budgets' worth for the stalled subscriber
            published += 1
            pub.publish_ok(record(id=str(published % 7), data=PAYLOAD))
            message = reader.recv()
            assert message.WhichOneof("body") == "delivery"
            largest = max(largest, message.ByteSize())  # what each subscriber was sent
            total += message.ByteSize()
        stats = srv.stats()
        assert BUDGET - largest < stats["peak_queued_bytes"] <= BUDGET + largest
        assert stats["peak_outbox_bytes"] <= BUDGET
        assert stats["sessions_dropped_overflow"] == 1
        # What waited for the dropped session is released.
        wait_until(lambda: srv.stats()["queued_bytes"] == 0, timeout=WAIT, what="queues empty")


def test_a_cached_snapshot_larger_than_the_budget_reaches_a_reading_subscriber(
    config_path: Path, clients: list[Client]
) -> None:
    with serve(port=0, config=config_path, max_outbox_bytes=BUDGET, stall_deadline=60) as srv:
        pub = opened(srv, clients)
        topics = 3 * BUDGET // 60_000  # a cache of about three budgets
        for i in range(topics):
            pub.publish_ok(record(id=f"K{i:03d}", data=PAYLOAD))
        sub = opened(srv, clients)
        assert sub.subscribe(1, topic("Price")).status == "OK"
        pub.publish_ok(record(id="K000", data={"bid": 2.0}))  # live, after the snapshot
        ids = [r.header.id for r in sub.snapshot_deliveries(1)]
        assert ids == [f"K{i:03d}" for i in range(topics)]
        (live,) = sub.expect("delivery").records
        assert (live.header.id, live.header.seq) == ("K000", 2)
        stats = srv.stats()
        assert stats["sessions_dropped_slow"] == 0
        assert stats["peak_outbox_bytes"] <= BUDGET


# -- configuration -----------------------------------------------------------------------------


def test_session_limits_default_and_scale_with_the_record_limit(tmp_path: Path) -> None:
    packaged = load_config(None)
    assert (packaged.max_outbox_bytes, packaged.stall_deadline) == (32 << 20, 10.0)
    assert (MAX_OUTBOX_BYTES, STALL_DEADLINE) == (32 << 20, 10.0)
    big_records = CONFIG.replace(
        f"max_record_bytes = {RECORD_LIMIT}", "max_record_bytes = 20000000"
    )
    assert load_config(write_config(tmp_path, big_records)).max_outbox_bytes == 40_000_000
    set_here = CONFIG.replace(
        f"max_record_bytes = {RECORD_LIMIT}",
        f"max_record_bytes = {RECORD_LIMIT}\nmax_outbox_bytes = {BUDGET}\nstall_deadline = 2",
    )
    cfg = load_config(write_config(tmp_path, set_here, "set.toml"))
    assert (cfg.max_outbox_bytes, cfg.stall_deadline) == (BUDGET, 2.0)
    changed = with_session_limits(cfg, max_outbox_bytes=3 << 20, stall_deadline=0.5)
    assert (changed.max_outbox_bytes, changed.stall_deadline) == (3 << 20, 0.5)
    assert with_session_limits(cfg) is cfg


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("max_outbox_bytes = 1000", "platform.max_outbox_bytes: must be an integer of at least"),
        ("max_outbox_bytes = 1.5", "platform.max_outbox_bytes: must be an integer"),
        ("stall_deadline = 0", "platform.stall_deadline: must be greater than 0"),
    ],
)
def test_bad_session_limits_in_the_config_name_the_key(
    tmp_path: Path, setting: str, message: str
) -> None:
    text = CONFIG.replace(f"max_record_bytes = {RECORD_LIMIT}", setting)
    with pytest.raises(ValueError, match=message):
        load_config(write_config(tmp_path, text))


def test_bad_session_limits_to_serve_are_refused_before_it_starts(config_path: Path) -> None:
    with pytest.raises(ValueError, match=rf"max_outbox_bytes .*at least {BUDGET}.*got 1024"):
        serve(port=0, config=config_path, max_outbox_bytes=1024)
    with pytest.raises(ValueError, match="stall_deadline must be seconds > 0, got -1"):
        serve(port=0, config=config_path, stall_deadline=-1)
