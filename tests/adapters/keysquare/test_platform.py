"""The sans-I/O platform: seqs, last-value cache, permissions, validation, edit, void,
fan-out; and the SQLite message store."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from actorwire.adapters.keysquare.config import AppConfig, PlatformConfig
from actorwire.adapters.keysquare.platform import Platform, PlatformError
from actorwire.adapters.keysquare.store import MessageStore

from .conftest import record, topic


@pytest.fixture
def platform(restricted_config: PlatformConfig) -> Platform:
    ticks = itertools.count(1000, 10)
    ids = (f"s{i}" for i in itertools.count(1))
    return Platform(restricted_config, clock=lambda: next(ticks), new_session_id=lambda: next(ids))


def app(platform: Platform, name: str = "demo") -> AppConfig:
    return platform.config.applications[name]


def refused(code: str, call: Callable[..., object], *args: object) -> str:
    with pytest.raises(PlatformError) as info:
        call(*args)
    assert info.value.code == code, info.value
    return info.value.message


def test_seq_per_topic_and_stamps(platform: Platform) -> None:
    demo = app(platform)
    first = platform.publish(demo, [record(id="A"), record(id="A"), record(id="B")]).records
    assert [r.header.seq for r in first] == [1, 2, 1]
    assert {r.header.timestamp_ns for r in first} == {1000}
    assert {r.header.publisher for r in first} == {"demo"}
    again = platform.publish(demo, [record(id="B"), record(id="A")]).records
    assert [r.header.seq for r in again] == [2, 3]


def test_last_value_cache_snapshot_sorted(platform: Platform) -> None:
    demo = app(platform)
    platform.publish(demo, [record(id="C", data={"bid": 1.0}), record(id="A")])
    platform.publish(demo, [record(id="C", data={"bid": 2.0}), record(id="B", group="a")])
    snap = platform.snapshot(demo, topic("Price"))
    assert [(r.header.group, r.header.id) for r in snap] == [("a", "B"), ("g", "A"), ("g", "C")]
    assert json.loads(snap[2].data) == {"bid": 2.0} and snap[2].header.seq == 2
    assert [r.header.id for r in platform.snapshot(demo, topic("Price", id="A"))] == ["A"]
    assert platform.record_count() == 3


def test_subscribe_cache_comes_in_acceptance_order(platform: Platform) -> None:
    demo = app(platform)
    platform.publish(demo, [record(id="C"), record(id="A"), record(id="B")])
    platform.publish(demo, [record(id="A")])
    sid = platform.register("demo", "demo-secret-key")
    cached = platform.subscribe(sid, 1, topic("Price"))
    assert [r.header.id for r in cached] == ["C", "B", "A"]
    assert [r.header.id for r in platform.snapshot(demo, topic("Price"))] == ["A", "B", "C"]


def test_empty_schema_and_source_are_resolved(platform: Platform) -> None:
    demo = app(platform)
    (rec,) = platform.publish(demo, [record(schema="", source="", id="X")]).records
    assert (rec.header.schema, rec.header.source) == ("markets", "demo")
    message = refused("INVALID", platform.publish, demo, [record("Trade", schema="")])
    assert "defined in schemas markets, refdata" in message


def test_unknown_type_names_close_matches(platform: Platform) -> None:
    demo = app(platform)
    message = refused("UNKNOWN_TYPE", platform.publish, demo, [record("Prices")])
    assert "unknown data type 'markets.Prices'" in message and "markets.Price" in message
    message = refused("UNKNOWN_TYPE", platform.snapshot, demo, topic("Instrumnt"))
    assert "close matches: Instrument" in message
    message = refused("UNKNOWN_TYPE", platform.snapshot, demo, topic("Price", schema="market"))
    assert "unknown schema 'market'" in message and "markets" in message
    message = refused("UNKNOWN_TYPE", platform.snapshot, demo, topic("Zzz"))
    assert "defined types: markets.Price" in message


def test_permissions(platform: Platform) -> None:
    reader, writer = app(platform, "reader"), app(platform, "writer")
    message = refused("PERMISSION_DENIED", platform.publish, reader, [record()])
    assert "'reader' may not publish markets.Price" in message
    refused("PERMISSION_DENIED", platform.publish, writer, [record("Trade")])
    platform.publish(writer, [record(id="P")])
    refused("PERMISSION_DENIED", platform.snapshot, writer, topic("Price"))
    refused("PERMISSION_DENIED", platform.snapshot, writer, topic())
    refused("PERMISSION_DENIED", platform.snapshot, reader, topic("Trade", schema="refdata"))
    assert [r.header.id for r in platform.snapshot(reader, topic("Price"))] == ["P"]
    # A wildcard pattern only yields the readable types.
    platform.publish(app(platform), [record("Instrument", schema="refdata", id="I")])
    assert [r.header.data_type for r in platform.snapshot(reader, topic())] == ["Price"]
    sid = platform.register("writer", "writer-secret-key")
    refused("PERMISSION_DENIED", platform.subscribe, sid, 1, topic("Price"), False)


@pytest.mark.parametrize(
    ("data", "code", "expected"),
    [
        ({"bid": "high"}, "INVALID", "Price.bid must be float, got str 'high'"),
        ({"volume": 1.5}, "INVALID", "Price.volume must be int"),
        ({"colour": "red"}, "INVALID", "Price has no field 'colour'"),
        (b"[1, 2]", "INVALID", "must be a JSON object, got list"),
        (b"{not json", "INVALID", "not valid JSON"),
        ({"symbol": "x" * 5000}, "TOO_LARGE", "over the platform limit of 4096"),
    ],
)
def test_validation_errors_name_the_problem(
    platform: Platform, data: dict[str, object] | bytes, code: str, expected: str
) -> None:
    demo = app(platform)
    message = refused(code, platform.publish, demo, [record(id="OK"), record(id="BAD", data=data)])
    assert expected in message and "record 1" in message and "'BAD'" in message
    assert platform.snapshot(demo, topic("Price")) == []  # one bad record refuses them all


def test_empty_id_is_invalid(platform: Platform) -> None:
    assert "id is required" in refused("INVALID", platform.publish, app(platform), [record(id="")])
    assert "data_type is required" in refused(
        "INVALID", platform.publish, app(platform), [record(data_type="")]
    )


def test_edit(platform: Platform) -> None:
    demo = app(platform)
    platform.publish(demo, [record(id="E", data={"bid": 1.0, "ask": 2.0})])
    key = topic("Price", schema="markets", source="src", group="g", id="E")
    (edited,) = platform.edit(demo, key, b'{"ask": 3.0}').records
    assert edited.header.seq == 2
    assert json.loads(edited.data) == {"bid": 1.0, "ask": 3.0}
    assert platform.snapshot(demo, topic("Price"))[0] == edited
    missing = topic("Price", schema="markets", source="src", group="g", id="NOPE")
    assert "no record to edit" in refused("NOT_FOUND", platform.edit, demo, missing, b"{}")
    assert "Price.ask must be float" in refused(
        "INVALID", platform.edit, demo, key, b'{"ask": "x"}'
    )
    refused("PERMISSION_DENIED", platform.edit, app(platform, "reader"), key, b"{}")


def test_voided_records(platform: Platform) -> None:
    demo = app(platform)
    sid = platform.register("demo", "demo-secret-key")
    platform.subscribe(sid, 1, topic("Price"))
    platform.publish(demo, [record(id="V", data={"bid": 5.0}), record(id="W")])
    (void,) = platform.publish(demo, [record(id="V", data=b"", voided=True)]).records
    assert void.header.voided and void.header.seq == 2 and json.loads(void.data) == {"bid": 5.0}
    assert platform.fanout([void]) == {sid: {1: [void]}}
    assert [r.header.id for r in platform.snapshot(demo, topic("Price"))] == ["W"]
    key = topic("Price", schema="markets", source="src", group="g", id="V")
    assert "voided" in refused("NOT_FOUND", platform.edit, demo, key, b"{}")
    (back,) = platform.publish(demo, [record(id="V", data={"bid": 6.0})]).records
    assert back.header.seq == 3 and not back.header.voided
    assert len(platform.snapshot(demo, topic("Price"))) == 2


def test_fanout(platform: Platform) -> None:
    demo = app(platform)
    s1 = platform.register("demo", "demo-secret-key")
    s2 = platform.register("reader", "reader-secret-key")
    platform.subscribe(s1, 1, topic("Price"))
    platform.subscribe(s1, 2, topic(id="B"))
    platform.subscribe(s2, 1, topic())
    platform.subscribe(s2, 5, topic("Trade", source="other"))
    recs = platform.publish(
        demo,
        [
            record(id="A"),
            record("Instrument", schema="refdata", id="B"),
            record(id="B"),
            record("Trade", id="T", source="other"),
        ],
    ).records
    out = platform.fanout(recs)
    ids = {
        s: {sub: [r.header.id for r in rs] for sub, rs in subs.items()} for s, subs in out.items()
    }
    assert ids == {
        s1: {1: ["A", "B"], 2: ["B", "B"]},
        s2: {1: ["A", "B", "T"], 5: ["T"]},  # reader may not read Instrument
    }
    assert platform.unsubscribe(s1, 2) and not platform.unsubscribe(s1, 2)
    assert set(platform.fanout(recs)[s1]) == {1}
    refused("INVALID", platform.subscribe, s1, 1, topic("Price"), False)
    platform.drop_session(s2)
    assert set(platform.fanout(recs)) == {s1}
    assert platform.session_count == 1


def test_subscribe_returns_cached_only_when_asked(platform: Platform) -> None:
    platform.publish(app(platform), [record(id="A")])
    sid = platform.register("demo", "demo-secret-key")
    assert len(platform.subscribe(sid, 1, topic("Price"), cached=True)) == 1
    assert platform.subscribe(sid, 2, topic("Price"), cached=False) == []
    refused("UNKNOWN_TYPE", platform.subscribe, sid, 3, topic("Nope"), False)
    refused("UNAUTHENTICATED", platform.subscribe, "nobody", 1, topic("Price"), True)


def test_register_and_schema(platform: Platform) -> None:
    message = refused("UNAUTHENTICATED", platform.register, "demo", "wrong")
    assert message == "registration refused for application 'demo'"
    refused("UNAUTHENTICATED", platform.register, "ghost", "x")
    reply = platform.schema_reply(app(platform, "writer"))
    assert reply.version == 1
    perms = {(t.schema, t.name): (t.can_read, t.can_publish) for t in reply.types}
    assert perms[("markets", "Price")] == (False, True)
    assert perms[("refdata", "Trade")] == (False, False)


def test_define_type_bumps_version(platform: Platform) -> None:
    assert platform.define_type("markets", "Quote", {"size": "int"}) == 2
    assert platform.define_type("markets", "Quote", {"size": "int"}) == 2  # unchanged
    assert platform.define_type("markets", "Quote", {"size": "int", "px": "float"}) == 3
    platform.publish(app(platform), [record("Quote", data={"px": 1.0})])
    with pytest.raises(ValueError, match="unknown field type 'double'"):
        platform.define_type("markets", "Bad", {"x": "double"})
    with pytest.raises(ValueError, match="bad schema"):
        platform.define_type("", "Bad", {})


def test_load_seeds_cache_and_seqs_continue(platform: Platform) -> None:
    stored = record(id="S")
    stored.header.seq = 41
    assert platform.load([stored]) == 1
    (rec,) = platform.publish(app(platform), [record(id="S")]).records
    assert rec.header.seq == 42
    assert platform.publish(app(platform), [record(id="S")]).to_store  # stored topics stay stored


def test_store_flag_selects_records_to_store(platform: Platform) -> None:
    demo = app(platform)
    assert platform.publish(demo, [record(id="X")]).to_store == []
    published = platform.publish(demo, [record(id="Y")], store=True)
    assert published.to_store == published.records
    assert len(platform.publish(demo, [record(id="X"), record(id="Y")]).to_store) == 1


def test_message_store_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    store = MessageStore(path)
    a, b = record(id="A"), record(id="B", voided=True)
    a.header.seq, b.header.seq = 3, 1
    assert store.save([a, b]) == 2
    older = record(id="A", data={"bid": 9.0})
    older.header.seq = 2
    store.save([older])  # a lower seq never overwrites
    store.close()
    store.close()
    again = MessageStore(path)
    try:
        loaded = again.load_all()
        assert loaded == [a, b] and len(again) == 2
        assert loaded[1].header.voided
    finally:
        again.close()
    with pytest.raises(RuntimeError, match="closed"):
        again.load_all()
    assert not MessageStore().persistent


def test_record_codec_round_trips_datetimes_bytes_and_refuses_non_objects() -> None:
    import datetime as dt

    from actorwire.adapters.keysquare.protocol import decode_data, encode_data

    naive = dt.datetime(2024, 1, 15, 10, 30)
    aware = dt.datetime(2024, 1, 15, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    out = decode_data(encode_data({"a": naive, "b": aware, "c": b"raw", "d": 1.5}))
    assert out == {
        "a": "2024-01-15T10:30:00+00:00",
        "b": "2024-01-15T10:30:00+02:00",
        "c": "raw",
        "d": 1.5,
    }
    with pytest.raises(ValueError, match="JSON object"):
        decode_data(b"[1, 2]")
    with pytest.raises(ValueError, match="not valid JSON"):
        decode_data(b"\xff{")
    with pytest.raises(TypeError, match="cannot be encoded"):
        encode_data({"x": object()})


def test_oversize_record_refused_when_request_size_is_given(platform: Platform) -> None:
    # The server passes the request's size: under the limit it skips per-record sizing,
    # over it every record is still checked.
    demo = app(platform)
    records = [record(id="OK"), record(id="BIG", data={"symbol": "x" * 5000})]
    total = sum(r.ByteSize() for r in records)
    message = refused("TOO_LARGE", platform.publish, demo, records, False, total)
    assert "record 1" in message and "'BIG'" in message
    assert platform.snapshot(demo, topic("Price")) == []
