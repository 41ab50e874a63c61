"""Exactly-once publish: every publish carries an id and the platform applies an id once
within its dedupe window, so a resend after a lost ack and a user's retry are applied once."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from actorwire.adapters.keysquare import (
    KeyMessage,
    KeySession,
    PublishTimeout,
    SubscriptionType,
    serve,
)
from actorwire.adapters.keysquare import server as server_module
from actorwire.adapters.keysquare.config import PlatformConfig
from actorwire.adapters.keysquare.platform import INVALID, Platform, PlatformError

from .conftest import record, topic

FAST = {"timeout": 5, "heartbeat_interval": 0.2, "heartbeat_deadline": 1.0}


@pytest.fixture
def platform(restricted_config: PlatformConfig) -> Platform:
    ticks = itertools.count(10**12, 10**9)  # a second a call
    return Platform(restricted_config, clock=lambda: next(ticks), dedupe_window_seconds=30)


def demo(platform: Platform) -> Any:
    return platform.config.applications["demo"]


def test_a_publish_id_is_applied_once(platform: Platform) -> None:
    first = platform.publish(demo(platform), [record(id="A")], publish_ids=["p1"])
    assert [r.header.seq for r in first.records] == [1] and first.duplicates == 0
    again = platform.publish(
        demo(platform), [record(id="A"), record(id="B")], publish_ids=["p1", "p2"]
    )
    assert [(r.header.id, r.header.seq) for r in again.records] == [("B", 1)]
    assert again.duplicates == 1
    assert platform.snapshot(demo(platform), topic("Price"))[0].header.seq == 1


def test_the_same_id_twice_in_one_request_is_applied_once(platform: Platform) -> None:
    published = platform.publish(
        demo(platform), [record(id="A"), record(id="A")], publish_ids=["same", "same"]
    )
    assert len(published.records) == 1 and published.duplicates == 1


def test_a_refused_publish_does_not_use_up_its_ids(platform: Platform) -> None:
    with pytest.raises(PlatformError):
        platform.publish(demo(platform), [record(id="A"), record("Nope")], publish_ids=["x", "y"])
    assert len(platform.publish(demo(platform), [record(id="A")], publish_ids=["x"]).records) == 1


def test_an_id_older_than_the_window_is_applied_again(platform: Platform) -> None:
    platform.publish(demo(platform), [record(id="A")], publish_ids=["old"])
    for i in range(31):  # each call moves the clock a second
        platform.publish(demo(platform), [record(id=f"T{i}")])
    assert len(platform.publish(demo(platform), [record(id="A")], publish_ids=["old"]).records) == 1


def test_ids_must_match_the_records(platform: Platform) -> None:
    with pytest.raises(PlatformError) as info:
        platform.publish(demo(platform), [record(id="A")], publish_ids=["a", "b"])
    assert info.value.code == INVALID and "one per record" in info.value.message


def test_an_edit_id_is_applied_once(platform: Platform) -> None:
    platform.publish(demo(platform), [record(id="A", data={"bid": 1.0})])
    key = topic("Price", "markets", source="src", group="g", id="A")
    first = platform.edit(demo(platform), key, b'{"bid": 2.0}', publish_id="e1")
    again = platform.edit(demo(platform), key, b'{"bid": 3.0}', publish_id="e1")
    assert len(first.records) == 1 and again.records == [] and again.duplicates == 1
    assert platform.snapshot(demo(platform), topic("Price"))[0].header.seq == 2


class Seen:
    def __init__(self) -> None:
        self.messages: list[KeyMessage] = []
        self.cond = threading.Condition()

    def __call__(self, message: KeyMessage) -> None:
        with self.cond:
            self.messages.append(message)
            self.cond.notify_all()

    def ids(self) -> list[str]:
        with self.cond:
            return [m.header.id for m in self.messages]


@pytest.fixture
def platform_server() -> Iterator[Any]:
    server = serve(port=0, store_path=":memory:")
    try:
        yield server
    finally:
        server.stop()


def test_a_publish_whose_ack_is_lost_with_its_connection_is_applied_once(
    platform_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"127.0.0.1:{platform_server.port}"
    cut = threading.Event()
    send = server_module.PlatformServer._send

    def lose_the_first_ack(self: Any, stream: Any, message: Any) -> None:
        # The publish was applied (and fanned out); its ack dies with the connection.
        if (
            not cut.is_set()
            and message.WhichOneof("body") == "ack"
            and getattr(stream, "lose_ack", False)
        ):
            cut.set()
            stream.kill(grpc.StatusCode.UNAVAILABLE, "cut after the publish was applied")
            return
        send(self, stream, message)

    monkeypatch.setattr(server_module.PlatformServer, "_send", lose_the_first_ack)
    seen = Seen()
    with KeySession("demo", "demo-key", url, **FAST) as sub:
        sub.subscribe("Price", callback=seen, subscription_type=SubscriptionType.LIVE_ONLY)
        with KeySession("demo", "demo-key", url, **FAST) as pub:

            def mark() -> None:
                list(platform_server._streams.values())[-1].lose_ack = True

            platform_server._on_loop(mark)
            ack = pub.publish("Price", "ONCE", {"bid": 1.0}, timeout=8)
            assert cut.is_set()
            assert ack["status"] == "OK" and ack["duplicates"] == 1  # the resend was a repeat
            pub.publish("Price", "AFTER", {"bid": 2.0})
            with seen.cond:
                assert seen.cond.wait_for(lambda: "AFTER" in seen.ids(), 5)
            assert seen.ids() == ["ONCE", "AFTER"]


def test_a_retry_with_the_same_publish_id_is_applied_once(platform_server: Any) -> None:
    url = f"127.0.0.1:{platform_server.port}"
    seen = Seen()
    with KeySession("demo", "demo-key", url, **FAST) as ks:
        ks.subscribe("Price", callback=seen, subscription_type=SubscriptionType.LIVE_ONLY)
        assert ks.publish("Price", "R", {"bid": 1.0}, publish_id="order-17")["status"] == "OK"
        retry = ks.publish("Price", "R", {"bid": 1.0}, publish_id="order-17")
        assert retry == {
            "status": "OK",
            "request_id": retry["request_id"],
            "count": 1,
            "duplicates": 1,
        }
        many = [("M1", {"bid": 1.0}), ("M2", {"bid": 2.0})]
        assert ks.publish_many("Price", many, publish_id="batch-1")["count"] == 2
        assert ks.publish_many("Price", many, publish_id="batch-1")["count"] == 2
        ks.publish("Price", "END", {"bid": 0.0})
        with seen.cond:
            assert seen.cond.wait_for(lambda: "END" in seen.ids(), 5)
        assert seen.ids() == ["R", "M1", "M2", "END"]
        with pytest.raises(ValueError, match="publish_id must be a non-empty string"):
            ks.publish("Price", "R", {"bid": 1.0}, publish_id="")


def test_a_publish_timeout_names_the_id_to_retry_with(platform_server: Any) -> None:
    url = f"127.0.0.1:{platform_server.port}"
    with KeySession("demo", "demo-key", url, **FAST) as ks:
        platform_server.stop()  # no platform: no ack
        with pytest.raises(PublishTimeout) as info:
            ks.publish("Price", "T", {"bid": 1.0}, timeout=0.5, publish_id="retry-me")
        assert isinstance(info.value, TimeoutError)
        assert info.value.publish_id == "retry-me"
        assert "Retry with publish_id='retry-me'" in str(info.value)
