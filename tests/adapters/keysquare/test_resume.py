"""Resume, not re-snapshot: a subscription that comes back gets what it missed from the
platform's journal, in order and once; only what fell out of the journal is a gap."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from actorwire.adapters.keysquare.config import PlatformConfig
from actorwire.adapters.keysquare.platform import Platform

from .conftest import record, topic


def make(config: PlatformConfig, **kw: Any) -> Platform:
    ticks = itertools.count(10**12, 10**9)  # a second a call
    ids = (f"s{i}" for i in itertools.count(1))
    return Platform(config, clock=lambda: next(ticks), new_session_id=lambda: next(ids), **kw)


def session(platform: Platform) -> str:
    return platform.register("demo", "demo-secret-key")


@pytest.fixture
def platform(restricted_config: PlatformConfig) -> Platform:
    return make(restricted_config)


def test_positions_are_stamped_in_acceptance_order(platform: Platform) -> None:
    demo = platform.config.applications["demo"]
    a = platform.publish(demo, [record(id="A"), record(id="B")]).records
    b = platform.publish(demo, [record(id="A")]).records
    assert [r.header.pos for r in a + b] == [1, 2, 3]
    assert platform.position == (platform.epoch, 3)


def test_a_subscription_back_within_the_journal_gets_every_record_since_in_order(
    platform: Platform,
) -> None:
    demo = platform.config.applications["demo"]
    platform.publish(demo, [record(id="A")])
    epoch, pos = platform.position
    platform.publish(demo, [record(id="A"), record(id="B"), record("Trade", id="T")])
    platform.publish(demo, [record(id="A")])
    back = platform.resume(session(platform), 1, topic("Price"), True, epoch, pos)
    assert back.gap is None and not back.snapshot
    # Every update of A, not just its latest, and nothing of another type.
    assert [(r.header.id, r.header.seq) for r in back.records] == [("A", 2), ("B", 1), ("A", 3)]


def test_a_subscription_back_after_the_journal_moved_on_is_told_of_its_gap(
    restricted_config: PlatformConfig,
) -> None:
    one = record(id="A").ByteSize() + 8
    platform = make(restricted_config, journal_bytes=3 * one)
    demo = platform.config.applications["demo"]
    platform.publish(demo, [record(id="A")])
    epoch, pos = platform.position
    platform.publish(demo, [record(id=f"X{i}") for i in range(6)])  # the journal keeps 3
    back = platform.resume(session(platform), 1, topic("Price"), True, epoch, pos)
    assert back.snapshot and back.gap is not None
    assert back.gap.missed == platform.journal.first - 1 - pos > 0
    assert "no longer holds" in back.gap.reason
    assert sorted(r.header.id for r in back.records) == ["A"] + [f"X{i}" for i in range(6)]


def test_a_subscription_back_after_a_restart_gets_the_new_runs_records_and_a_gap(
    restricted_config: PlatformConfig,
) -> None:
    old = make(restricted_config, epoch=1)
    demo = old.config.applications["demo"]
    old.publish(demo, [record(id="A")])
    epoch, pos = old.position
    new = make(restricted_config, epoch=2)  # restarted without a store
    new.publish(demo, [record(id="A"), record(id="B")])
    back = new.resume(session(new), 1, topic("Price"), True, epoch, pos)
    assert not back.snapshot and [r.header.id for r in back.records] == ["A", "B"]
    assert back.gap is not None and back.gap.missed == 0 and "restarted" in back.gap.reason


def test_a_live_only_subscription_resumes_too(platform: Platform) -> None:
    demo = platform.config.applications["demo"]
    epoch, pos = platform.position
    platform.publish(demo, [record(id="A")])
    back = platform.resume(session(platform), 1, topic("Price"), False, epoch, pos)
    assert [r.header.id for r in back.records] == ["A"] and back.gap is None


# -- through the real platform --------------------------------------------------------------

import threading  # noqa: E402

import grpc  # noqa: E402
from actorwire.actors import Backoff  # noqa: E402
from actorwire.adapters.keysquare import Gap, KeyMessage, KeySession, SubscriptionType, serve  # noqa: E402

FAST = {"timeout": 5, "heartbeat_interval": 0.2, "heartbeat_deadline": 1.0}
AWAY = Backoff(min=2.0, max=2.0, factor=1.0, jitter=0.0)


class Seen:
    def __init__(self) -> None:
        self.messages: list[KeyMessage] = []
        self.gaps: list[Gap] = []
        self.cond = threading.Condition()

    def __call__(self, message: KeyMessage) -> None:
        with self.cond:
            self.messages.append(message)
            self.cond.notify_all()

    def gap(self, gap: Gap) -> None:
        with self.cond:
            self.gaps.append(gap)
            self.cond.notify_all()

    def wait(self, predicate: Any, timeout: float = 10.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self), timeout), (
                [(m.header.id, m.header.seq) for m in self.messages],
                self.gaps,
            )


def _cut(server: Any, app_session: str) -> None:
    def cut() -> None:
        for stream in list(server._streams.values()):
            if stream.session_id == app_session:
                stream.kill(grpc.StatusCode.UNAVAILABLE, "cut by the test")

    server._on_loop(cut)


@pytest.mark.parametrize("kind", [SubscriptionType.CACHED_AND_LIVE, SubscriptionType.LIVE_ONLY])
def test_every_update_published_while_a_subscriber_was_away_reaches_it_once(
    kind: SubscriptionType,
) -> None:
    server = serve(port=0, store_path=":memory:")
    url = f"127.0.0.1:{server.port}"
    seen = Seen()
    try:
        with (
            KeySession("demo", "demo-key", url, **FAST) as sub,
            KeySession("demo", "demo-key", url, **FAST) as pub,
        ):
            sub.subscribe("Price", callback=seen, subscription_type=kind, gap_callback=seen.gap)
            pub.publish("Price", "AAPL", {"bid": 0.0})
            seen.wait(lambda s: len(s.messages) == 1)
            session_id = sub.get_session_data()["session_id"]
            _cut(server, session_id)
            for i in range(1, 51):  # one topic, updated while the subscriber is away
                pub.publish("Price", "AAPL", {"bid": float(i)})
            seen.wait(lambda s: len(s.messages) >= 51)
            pub.publish("Price", "AAPL", {"bid": 99.0})
            seen.wait(lambda s: s.messages[-1].data["bid"] == 99.0)
            assert [m.data["bid"] for m in seen.messages] == [float(i) for i in range(51)] + [99.0]
            assert seen.gaps == []
            assert server.stats()["resumed"] >= 1
    finally:
        server.stop()


def test_a_restarted_platform_replays_its_new_run_and_reports_the_gap() -> None:
    server = serve(port=0, store_path=":memory:")
    port = server.port
    url = f"127.0.0.1:{port}"
    seen = Seen()
    try:
        with (
            KeySession("demo", "demo-key", url, **FAST) as sub,
            KeySession("demo", "demo-key", url, **FAST) as pub,
        ):
            sub.subscribe(
                "Price",
                callback=seen,
                subscription_type=SubscriptionType.LIVE_ONLY,
                gap_callback=seen.gap,
            )
            pub.publish("Price", "AAPL", {"bid": 0.0})
            seen.wait(lambda s: len(s.messages) == 1)
            server.stop()
            server = serve(port=port, store_path=":memory:")
            for i in range(1, 21):  # acknowledged by the new run, maybe before sub is back
                pub.publish("Price", "AAPL", {"bid": float(i)}, timeout=10)
            seen.wait(lambda s: len(s.messages) >= 21 and s.gaps)
            assert [m.data["bid"] for m in seen.messages] == [float(i) for i in range(21)]
            (gap,) = seen.gaps
            assert gap.data_type == "Price" and gap.missed is None and "restarted" in gap.reason
    finally:
        server.stop()


def test_a_resend_applied_again_by_a_platform_restarted_without_a_store_reaches_no_one_twice() -> (
    None
):
    # The ack of a publish dies with the platform after the record was delivered; the
    # publisher sends it again with the same id, and the new run (its dedupe window lost
    # with the old one) applies it again: subscribers drop it by its publish id.
    server = serve(port=0, store_path=":memory:")
    port = server.port
    url = f"127.0.0.1:{port}"
    seen = Seen()
    try:
        with (
            KeySession("demo", "demo-key", url, **FAST) as sub,
            KeySession("demo", "demo-key", url, **FAST) as pub,
        ):
            sub.subscribe(
                "Price",
                callback=seen,
                subscription_type=SubscriptionType.LIVE_ONLY,
                gap_callback=seen.gap,
            )
            pub.publish("Price", "AAPL", {"bid": 1.0}, publish_id="order-1")
            seen.wait(lambda s: len(s.messages) == 1)
            server.stop()
            server = serve(port=port, store_path=":memory:")
            ack = pub.publish("Price", "AAPL", {"bid": 1.0}, publish_id="order-1", timeout=10)
            assert ack["status"] == "OK" and ack.get("duplicates", 0) == 0  # applied again
            pub.publish("Price", "AAPL", {"bid": 2.0}, publish_id="order-2")
            seen.wait(lambda s: s.messages[-1].data["bid"] == 2.0)
            assert [m.data["bid"] for m in seen.messages] == [1.0, 2.0]
            assert sub.get_session_data()["redelivered"] == 1
    finally:
        server.stop()


def test_a_platform_restarted_on_its_store_resumes_every_subscription_and_dedupes_resends(
    tmp_path: Any,
) -> None:
    store = tmp_path / "platform.db"
    server = serve(port=0, store_path=store)
    port = server.port
    url = f"127.0.0.1:{port}"
    seen = Seen()
    try:
        with (
            KeySession("demo", "demo-key", url, **FAST) as sub,
            KeySession("demo", "demo-key", url, **FAST) as pub,
        ):
            sub.subscribe(
                "Price",
                callback=seen,
                subscription_type=SubscriptionType.LIVE_ONLY,
                gap_callback=seen.gap,
            )
            pub.publish("Price", "AAPL", {"bid": 0.0}, publish_id="p0")
            seen.wait(lambda s: len(s.messages) == 1)
            epoch = seen.messages[0].header.epoch
            _cut(server, sub.get_session_data()["session_id"])
            for i in range(1, 21):  # the subscriber is away; then the platform stops
                pub.publish("Price", f"T{i % 3}", {"bid": float(i)}, publish_id=f"p{i}")
            server.stop()
            server = serve(port=port, store_path=store)
            again = pub.publish("Price", "T1", {"bid": 1.0}, publish_id="p1", timeout=10)
            assert again["duplicates"] == 1  # the store kept the dedupe window
            pub.publish("Price", "AAPL", {"bid": 21.0}, publish_id="p21")
            seen.wait(lambda s: s.messages[-1].data["bid"] == 21.0)
            assert [m.data["bid"] for m in seen.messages] == [float(i) for i in range(22)]
            assert seen.gaps == []
            assert {m.header.epoch for m in seen.messages} == {epoch}  # the same run goes on
            # A topic's seq keeps rising across the restart.
            aapl = [m.header.seq for m in seen.messages if m.header.id == "AAPL"]
            assert aapl == sorted(aapl) and len(set(aapl)) == len(aapl)
    finally:
        server.stop()


def test_an_outage_longer_than_the_journal_reports_a_gap_of_exactly_what_was_missed() -> None:
    import dataclasses

    from actorwire.adapters.keysquare.config import load_config

    one = 120  # bytes a small Price record takes in the journal, about
    config = dataclasses.replace(load_config(None), journal_bytes=20 * one)
    server = serve(port=0, config=config, store_path=":memory:")
    url = f"127.0.0.1:{server.port}"
    seen = Seen()
    try:
        with (
            # Cut off, the subscriber redials after 2 s: 200 records pass meanwhile, far
            # more than the journal holds.
            KeySession("demo", "demo-key", url, **{**FAST, "backoff": AWAY}) as sub,
            KeySession("demo", "demo-key", url, **FAST) as pub,
        ):
            sub.subscribe(
                "Price",
                callback=seen,
                subscription_type=SubscriptionType.LIVE_ONLY,
                gap_callback=seen.gap,
            )
            pub.publish("Price", "AAPL", {"bid": 0.0})
            seen.wait(lambda s: len(s.messages) == 1)
            _cut(server, sub.get_session_data()["session_id"])
            for i in range(1, 201):
                pub.publish("Price", f"T{i % 7}", {"bid": float(i)})
            assert not seen.gaps and len(seen.messages) == 1  # still away
            pub.publish("Price", "AAPL", {"bid": 201.0})
            seen.wait(lambda s: s.messages[-1].data["bid"] == 201.0 and s.gaps)
            (gap,) = seen.gaps
            got = [m.data["bid"] for m in seen.messages]
            assert len(got) == len(set(got)) and got == sorted(got)
            assert 0 < gap.missed < 200
            # Every record is delivered or counted in the gap, none both.
            assert len(got) + gap.missed == 202
            assert got[1] == float(gap.missed + 1)  # the first record after the gap
            assert gap.data_type == "Price" and "no longer holds" in gap.reason
    finally:
        server.stop()


def test_the_journal_and_dedupe_window_come_from_the_platform_config() -> None:
    import tomllib

    from actorwire.adapters.keysquare.config import parse_config

    text = (
        "[platform]\njournal_bytes = 100000\njournal_seconds = 5.0\n"
        "dedupe_window_bytes = 50000\ndedupe_window_seconds = 7.0\n"
    )
    server = serve(port=0, store_path=":memory:", config=parse_config(tomllib.loads(text)))
    try:
        platform = server._platform
        assert (platform.journal.max_bytes, platform.journal.max_age) == (100000, 5.0)
        assert (platform.dedupe.max_bytes, platform.dedupe.max_age) == (50000, 7.0)
    finally:
        server.stop()
