"""JetStream streams and durable consumers from a definition, against a real nats-server:
created when missing, accepted when identical, every difference of a stream named by key
path and nothing changed, dedupe within the duplicate window, editable consumer settings
updated and the rest refused; definition tables checked with key paths."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

import nats
import pytest
from actorwire.adapters.nats.server import NatsServer
from actorwire.adapters.nats.streams import (
    ConsumerSpec,
    StreamMismatch,
    StreamSpec,
    consumer_problems,
    ensure_consumer,
    ensure_stream,
    parse_consumer,
    parse_stream,
    stream_problems,
)
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StreamConfig

pytestmark = pytest.mark.timeout(30)

T = TypeVar("T")


@pytest.fixture
def server() -> Iterator[NatsServer]:
    srv = NatsServer()
    try:
        yield srv.start()
    finally:
        srv.stop()


def with_js(url: str, work: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    """Run ``work`` with a JetStream context on a fresh connection, closed after."""

    async def run() -> T:
        nc = await nats.connect(url)
        try:
            return await work(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(run())


ORDERS = parse_stream({"name": "ORDERS", "subjects": ["orders.>"]}, "streams.ORDERS")


def events(log: io.StringIO) -> list[dict[str, Any]]:
    """Our structlog events (stdlib loggers such as asyncio's write plain lines)."""
    return [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]


def test_creates_a_missing_stream_and_accepts_it_again(
    server: NatsServer, json_log: io.StringIO
) -> None:
    async def work(js: JetStreamContext) -> StreamConfig:
        await ensure_stream(js, ORDERS, "streams.ORDERS")
        await ensure_stream(js, ORDERS, "streams.ORDERS")  # identical: accepted
        return (await js.stream_info("ORDERS")).config

    config = with_js(server.url, work)
    assert [e["event"] for e in events(json_log)].count("stream created") == 1
    assert config.subjects == ["orders.>"] and config.duplicate_window == 120.0
    assert config.retention == RetentionPolicy.LIMITS and config.max_bytes == -1
    assert stream_problems(ORDERS, config, "s") == []


def test_every_difference_is_named_and_the_stream_is_not_changed(server: NatsServer) -> None:
    spec = parse_stream(
        {"subjects": ["audit.>", "trail"], "max_bytes": 1 << 20, "duplicate_window": 30},
        "streams.AUDIT",
        name="AUDIT",
    )
    existing = StreamConfig(
        name="AUDIT",
        subjects=["audit.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        max_bytes=1000,
        duplicate_window=60.0,
    )

    async def work(js: JetStreamContext) -> tuple[StreamMismatch, StreamConfig]:
        await js.add_stream(existing)
        with pytest.raises(StreamMismatch) as caught:
            await ensure_stream(js, spec, "streams.AUDIT")
        return caught.value, (await js.stream_info("AUDIT")).config

    error, after = with_js(server.url, work)
    assert error.problems == (
        "streams.AUDIT.subjects: the stream has ['audit.>'], the definition says "
        "['audit.>', 'trail']",
        "streams.AUDIT.retention: the stream has workqueue, the definition says limits",
        "streams.AUDIT.max_bytes: the stream has 1000, the definition says 1048576",
        "streams.AUDIT.duplicate_window: the stream has 60, the definition says 30",
    )
    assert str(error) == "\n".join(error.problems)
    assert isinstance(error, ValueError)
    assert after.max_bytes == 1000 and after.subjects == ["audit.>"]  # untouched


def test_subjects_compare_as_sets() -> None:
    spec = parse_stream({"name": "S", "subjects": ["a", "b"]}, "s")
    config = spec.stream_config()
    config.subjects = ["b", "a"]
    assert stream_problems(spec, config, "s") == []
    config.storage = None  # nats' defaults when a field is absent
    config.retention = None
    assert stream_problems(spec, config, "s") == []
    memory = replace(spec, storage="memory", max_msgs=10, max_age=60.0)
    assert stream_problems(memory, config, "s") == [
        "s.storage: the stream has file, the definition says memory",
        "s.max_msgs: the stream has -1, the definition says 10",
        "s.max_age: the stream has 0, the definition says 60",
    ]


def test_the_duplicate_window_drops_a_repeated_message_id(server: NatsServer) -> None:
    spec = parse_stream(
        {"name": "DEDUPE", "subjects": ["dedupe.>"], "duplicate_window": 5}, "streams.DEDUPE"
    )

    async def work(js: JetStreamContext) -> tuple[Any, Any, int]:
        await ensure_stream(js, spec, "streams.DEDUPE")
        headers = {"Nats-Msg-Id": "order-1"}
        first = await js.publish("dedupe.a", b"one", headers=headers)
        again = await js.publish("dedupe.a", b"one", headers=headers)
        return first, again, (await js.stream_info("DEDUPE")).state.messages

    first, again, messages = with_js(server.url, work)
    assert not first.duplicate and again.duplicate is True
    assert again.seq == first.seq == 1
    assert messages == 1


def test_a_consumer_is_created_updated_and_refused(
    server: NatsServer, json_log: io.StringIO
) -> None:
    consumer = parse_consumer({"filter_subject": "orders.new"}, "consumers.c1", durable="c1")
    where = "streams.ORDERS.consumers.c1"

    async def work(js: JetStreamContext) -> list[Any]:
        await ensure_stream(js, ORDERS, "streams.ORDERS")
        await ensure_consumer(js, "ORDERS", consumer, where)
        created = (await js.consumer_info("ORDERS", "c1")).config
        await ensure_consumer(js, "ORDERS", consumer, where)  # identical: nothing to do
        changed = replace(consumer, ack_wait=5.0, max_deliver=4, filter_subject="orders.>")
        await ensure_consumer(js, "ORDERS", changed, where)
        updated = (await js.consumer_info("ORDERS", "c1")).config
        with pytest.raises(StreamMismatch) as caught:
            await ensure_consumer(js, "ORDERS", replace(changed, deliver_policy="new"), where)
        still = (await js.consumer_info("ORDERS", "c1")).config
        return [created, updated, caught.value, still]

    created, updated, error, still = with_js(server.url, work)
    assert created.durable_name == "c1" and created.ack_wait == 30.0
    assert created.max_ack_pending == 20000 and created.filter_subject == "orders.new"
    assert created.ack_policy == "explicit" and created.deliver_policy == "all"
    assert (updated.ack_wait, updated.max_deliver, updated.filter_subject) == (
        5.0,
        4,
        "orders.>",
    )
    logged = [e for e in events(json_log) if e["event"].startswith("consumer")]
    assert [e["event"] for e in logged] == ["consumer created", "consumer updated"]
    assert logged[1]["changes"] == {
        "ack_wait": "30 -> 5",
        "max_deliver": "-1 -> 4",
        "filter_subject": "orders.new -> orders.>",
    }
    assert error.problems == (
        f"{where}.deliver_policy: the consumer has all, the definition says new",
    )
    assert still.deliver_policy == "all" and still.ack_wait == 5.0


def test_consumer_problems_sorts_fixed_from_editable() -> None:
    spec = ConsumerSpec("c")
    config = replace(spec, max_ack_pending=10).consumer_config()
    config.ack_policy = None  # absent: nats' default, explicit
    fixed, editable = consumer_problems(spec, config, "w")
    assert fixed == [] and editable == {"max_ack_pending": (10, 20000)}


def test_parse_defaults() -> None:
    assert StreamSpec("ORDERS", ("orders.>",)) == ORDERS
    assert (ORDERS.retention, ORDERS.storage, ORDERS.max_bytes, ORDERS.max_msgs) == (
        "limits",
        "file",
        -1,
        -1,
    )
    assert (ORDERS.max_age, ORDERS.duplicate_window) == (0.0, 120.0)
    short = parse_stream({"name": "S", "subjects": ["s"], "max_age": 30}, "s")
    assert short.duplicate_window == 30.0  # the default window shrinks to max_age
    assert parse_consumer({"durable": "c"}, "c") == ConsumerSpec("c")
    c = ConsumerSpec("c")
    assert (c.ack_wait, c.max_ack_pending, c.max_deliver, c.deliver_policy) == (
        30.0,
        20000,
        -1,
        "all",
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ([], r"^streams\.S: must be a table, got an array$"),
        ({"subjects": ["a"]}, r"^streams\.S\.name: missing$"),
        ({"name": "A.B", "subjects": ["a"]}, r"^streams\.S\.name: must not hold .*'A\.B'"),
        ({"name": "S"}, r"^streams\.S\.subjects: missing"),
        ({"name": "S", "subjects": []}, r"^streams\.S\.subjects: must be a non-empty array"),
        ({"name": "S", "subjects": "a"}, r"^streams\.S\.subjects: must be a non-empty array"),
        ({"name": "S", "subjects": ["a", 3]}, r"^streams\.S\.subjects\[1\]: must be a non-empty"),
        ({"name": "S", "subjects": ["a..b"]}, r"^streams\.S\.subjects\[0\]: must be dot-sep"),
        ({"name": "S", "subjects": ["a", "a"]}, r"^streams\.S\.subjects\[1\]: 'a' is given twice"),
        (
            {"name": "S", "subjects": ["a"], "retention": "work"},
            r"^streams\.S\.retention: must be one of limits, interest, workqueue, got 'work' "
            r"\(did you mean 'workqueue'\?\)",
        ),
        (
            {"name": "S", "subjects": ["a"], "storage": 1},
            r"^streams\.S\.storage: must be one of file, memory, got 1$",
        ),
        (
            {"name": "S", "subjects": ["a"], "max_bytes": "1MB"},
            r"^streams\.S\.max_bytes: must be an integer \(-1 for no limit\), got str '1MB'",
        ),
        (
            {"name": "S", "subjects": ["a"], "max_msgs": 0},
            r"^streams\.S\.max_msgs: must be at least 1, or -1 for no limit, got 0",
        ),
        (
            {"name": "S", "subjects": ["a"], "max_age": -1},
            r"^streams\.S\.max_age: must be at least 0 \(0: for ever\), got -1",
        ),
        (
            {"name": "S", "subjects": ["a"], "duplicate_window": 0},
            r"^streams\.S\.duplicate_window: must be greater than 0, got 0",
        ),
        (
            {"name": "S", "subjects": ["a"], "max_age": 10, "duplicate_window": 20},
            r"^streams\.S\.duplicate_window: must be at most max_age \(10\), got 20",
        ),
        (
            {"name": "S", "subjects": ["a"], "max_byte": 5},
            r"^streams\.S\.max_byte: unknown key \(expected one of .*\) "
            r"\(did you mean 'max_bytes'\?\)",
        ),
    ],
)
def test_stream_parse_errors_name_the_key(table: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_stream(table, "streams.S")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, r"^c\.durable: missing$"),
        ({"durable": ""}, r"^c\.durable: must be a non-empty string"),
        ({"durable": "c", "ack_wait": "30s"}, r"^c\.ack_wait: must be a number of seconds"),
        ({"durable": "c", "ack_wait": 0}, r"^c\.ack_wait: must be greater than 0"),
        ({"durable": "c", "max_deliver": 0}, r"^c\.max_deliver: must be at least 1, or -1"),
        ({"durable": "c", "max_ack_pending": True}, r"^c\.max_ack_pending: must be an integer"),
        ({"durable": "c", "filter_subject": ""}, r"^c\.filter_subject: must be a non-empty"),
        (
            {"durable": "c", "deliver_policy": "last"},
            r"^c\.deliver_policy: must be one of all, new, got 'last'",
        ),
        ({"durable": "c", "ack_wiat": 1}, r"^c\.ack_wiat: unknown key .*'ack_wait'"),
    ],
)
def test_consumer_parse_errors_name_the_key(table: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_consumer(table, "c")
