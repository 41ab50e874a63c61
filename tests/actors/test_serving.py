"""The server side of the kit, sans-I/O: byte-bounded outboxes and the topic index."""

from __future__ import annotations

import pytest
from actorwire.actors.serving import Outbox, TopicIndex
from hypothesis import given
from hypothesis import strategies as st


def test_an_outbox_refuses_past_its_byte_bound_and_stays_refused() -> None:
    box = Outbox(max_bytes=10, stall_deadline=5.0)
    assert box.put(b"12345", 0.0) and box.put(b"1234", 0.0)
    assert box.bytes == 9
    assert not box.put(b"xx", 0.1)  # 11 bytes: the peer is too slow
    assert box.refused
    assert not box.put(b"", 0.2)  # nothing more, even what would fit
    assert box.dropped_frames == 2
    assert box.take(100, 1.0) == [b"12345", b"1234"] and box.bytes == 0


def test_take_hands_out_about_max_bytes_and_at_least_one_frame() -> None:
    box = Outbox(max_bytes=1000, stall_deadline=5.0)
    for frame in (b"a" * 300, b"b" * 300, b"c" * 300):
        box.put(frame, 0.0)
    assert [len(f) for f in box.take(650, 1.0)] == [300, 300]
    assert [len(f) for f in box.take(10, 1.0)] == [300]  # bigger than asked: still one
    assert box.take(10, 1.0) == [] and len(box) == 0


def test_a_reader_that_takes_nothing_is_stalled_after_the_deadline() -> None:
    box = Outbox(max_bytes=1000, stall_deadline=2.0)
    assert not box.stalled(100.0)  # nothing waits: never stalled
    box.put(b"x", 10.0)
    assert not box.stalled(11.9)
    assert box.stalled(12.0)
    box.put(b"y", 12.5)
    box.take(1, 12.5)  # it read one: the clock restarts for what still waits
    assert not box.stalled(14.0) and box.stalled(14.5)
    box.take(10, 15.0)
    assert not box.stalled(100.0)


def test_bad_outbox_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        Outbox(0, 1.0)
    with pytest.raises(ValueError, match="stall_deadline"):
        Outbox(10, 0)


def test_the_index_matches_exact_and_wildcard_subscribers_once() -> None:
    index: TopicIndex[str, str] = TopicIndex()
    index.add("c1", "EURUSD")
    index.add("c2", "GBPUSD")
    index.add("c3", None)
    index.add("c3", "EURUSD")  # a wildcard subscriber that also names the key
    assert sorted(index.match("EURUSD")) == ["c1", "c3"]
    assert sorted(index.match("USDJPY")) == ["c3"]
    index.remove_subscriber("c3")
    assert list(index.match("USDJPY")) == []
    assert list(index.match("EURUSD")) == ["c1"]
    index.remove("c1", "EURUSD")
    assert list(index.match("EURUSD")) == [] and len(index) == 1


@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["add", "remove", "drop"]),
            st.sampled_from(["a", "b", "c", "d"]),
            st.sampled_from(["k1", "k2", "k3", None]),
        ),
        max_size=60,
    )
)
def test_the_index_agrees_with_a_plain_scan(ops: list[tuple[str, str, str | None]]) -> None:
    index: TopicIndex[str, str] = TopicIndex()
    subs: set[tuple[str, str | None]] = set()
    for op, who, key in ops:
        if op == "add":
            index.add(who, key)
            subs.add((who, key))
        elif op == "remove":
            index.remove(who, key)
            subs.discard((who, key))
        else:
            index.remove_subscriber(who)
            subs = {s for s in subs if s[0] != who}
    for key in ("k1", "k2", "k3"):
        expected = {who for who, k in subs if k in (key, None)}
        got = list(index.match(key))
        assert len(got) == len(set(got)) and set(got) == expected
    assert len(index) == len(subs)
