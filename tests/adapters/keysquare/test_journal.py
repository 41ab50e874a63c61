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


# -- persisted with a store file ----------------------------------------------------------


def test_a_store_file_gives_back_the_epoch_journal_and_ids_it_was_written() -> None:
    import tempfile
    from pathlib import Path

    from actorwire.adapters.keysquare.store import MessageStore

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.db"
        store = MessageStore(path)
        assert store.restore(since=0.0).epoch is None  # a new file
        store.start_epoch(77)
        j = Journal(max_bytes=1 << 20, max_age=60.0)
        batch = [rec(i) for i in range(6)]
        j.append(batch, now=100.0)
        store.write(epoch=77, journal=batch[:2], at=100.0, first_pos=1, publish_ids=["a", "b"])
        store.write(epoch=77, journal=batch[2:4], at=100.0, first_pos=2)
        # The platform's journal now starts at 3: the first request's row goes.
        store.write(
            epoch=77, journal=batch[4:], at=101.0, first_pos=3, publish_ids=["c"], ids_before=0.5
        )
        store.close()
        again = MessageStore(path)
        state = again.restore(since=100.5)
        again.close()
    assert state.epoch == 77 and state.last_pos == 6
    assert [(r.header.pos, r.header.id, at) for r, at in state.journal] == [
        (3, "r2", 100.0),
        (4, "r3", 100.0),
        (5, "r4", 101.0),
        (6, "r5", 101.0),
    ]
    assert state.publish_ids == [("c", 101.0)]  # those applied since 100.5
    restored = Journal(max_bytes=1 << 20, max_age=60.0)
    restored.restore(state.journal, state.last_pos, now=102.0)
    assert (restored.first, restored.last) == (3, 6)
    assert [r.header.id for r in restored.since(4)] == ["r4", "r5"]
    restored.append([rec(9)], now=103.0)
    assert restored.last == 7  # positions go on


def test_an_in_memory_store_keeps_no_journal() -> None:
    from actorwire.adapters.keysquare.store import MessageStore

    store = MessageStore()
    batch = [rec(0)]
    Journal(1 << 20, 60.0).append(batch, now=0.0)
    store.write(epoch=1, journal=batch, at=0.0, first_pos=1, publish_ids=["x"])
    state = store.restore(since=0.0)
    assert state.epoch is None and state.journal == [] and state.publish_ids == []


def test_restoring_a_journal_checks_its_positions_and_bounds() -> None:
    j = Journal(max_bytes=1 << 20, max_age=10.0)
    holes = [rec(1), rec(2)]
    holes[0].header.pos, holes[1].header.pos = 3, 5
    with pytest.raises(ValueError, match="consecutive positions"):
        j.restore([(holes[0], 0.0), (holes[1], 0.0)], last=5, now=0.0)
    old = rec(1)
    old.header.pos = 4
    j.restore([(old, 0.0)], last=4, now=20.0)  # older than max_age: gone at once
    assert (j.first, j.last, len(j)) == (5, 4, 0) and j.covers(4) and not j.covers(3)
    with pytest.raises(RuntimeError, match="restored before"):
        j.restore([], last=4, now=20.0)
    # Entries that stop short of the newest position cover nothing (no holes are made).
    k = Journal(max_bytes=1 << 20, max_age=10.0)
    k.restore([(old, 0.0)], last=9, now=1.0)
    assert (k.first, k.last, len(k)) == (10, 9, 0)
