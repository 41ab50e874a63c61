"""The platform journal: positions without holes, bounded in bytes and age, resume ranges."""

from __future__ import annotations

import pytest
from actorwire.adapters.keysquare import keysquare_pb2 as pb
from actorwire.adapters.keysquare.journal import Journal
from hypothesis import given
from hypothesis import strategies as st


def rec(i: int, size: int = 10) -> pb.Record:
    return pb.Record(header=pb.KeyHeader(id=f"r{i}"), data=b"x" * size)


def test_positions_follow_acceptance_and_since_gives_what_came_after() -> None:
    j = Journal(max_bytes=1 << 20, max_age=60.0)
    batch = [rec(i) for i in range(5)]
    j.append(batch, now=0.0)
    assert [r.header.pos for r in batch] == [1, 2, 3, 4, 5]
    assert (j.first, j.last) == (1, 5)
    assert [r.header.id for r in j.since(3)] == ["r3", "r4"]
    assert j.since(5) == [] and j.covers(0) and j.covers(5)


def test_the_oldest_records_go_when_the_bytes_are_full() -> None:
    one = rec(0).ByteSize()
    j = Journal(max_bytes=3 * (one + 2), max_age=60.0)  # room for three, with their pos
    j.append([rec(i) for i in range(5)], now=0.0)
    assert (j.first, j.last) == (3, 5) and j.evicted == 2 and j.bytes <= j.max_bytes
    assert not j.covers(1) and j.covers(2)
    with pytest.raises(ValueError, match="not all after 1"):
        j.since(1)


def test_records_older_than_the_window_go() -> None:
    j = Journal(max_bytes=1 << 20, max_age=10.0)
    j.append([rec(1)], now=0.0)
    j.append([rec(2)], now=5.0)
    j.expire(now=10.0)
    assert (j.first, j.last, len(j)) == (2, 2, 1)
    j.expire(now=100.0)
    assert (j.first, j.last, len(j)) == (3, 2, 0) and j.covers(2) and j.since(2) == []


def test_a_position_from_the_future_is_not_covered() -> None:
    j = Journal(max_bytes=1 << 20, max_age=10.0)
    j.append([rec(1)], now=0.0)
    assert not j.covers(7)  # a position of another run: resume cannot use it


@given(st.lists(st.integers(1, 200), max_size=100), st.integers(100, 3000))
def test_what_is_held_is_the_newest_and_within_the_bound(sizes: list[int], bound: int) -> None:
    j = Journal(max_bytes=bound, max_age=1e9)
    for i, size in enumerate(sizes):
        j.append([rec(i, size)], now=float(i))
        assert j.bytes <= bound
    held = j.since(j.first - 1)
    assert [r.header.pos for r in held] == list(range(j.first, j.last + 1))
    assert j.last == len(sizes)
