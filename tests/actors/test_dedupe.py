"""DedupeWindow: an id is seen within the window, forgotten past its age or its byte bound."""

from __future__ import annotations

import pytest
from actorwire.actors.dedupe import ID_OVERHEAD, DedupeWindow
from hypothesis import given
from hypothesis import strategies as st


def test_an_id_added_is_seen_until_it_is_older_than_the_window() -> None:
    w = DedupeWindow(max_bytes=1 << 20, max_age=10.0)
    w.add("a", now=100.0)
    assert w.seen("a", now=109.9)
    assert not w.seen("b", now=109.9)
    assert not w.seen("a", now=110.0)
    assert len(w) == 0 and w.bytes == 0


def test_the_oldest_ids_go_first_when_the_bytes_are_full() -> None:
    w = DedupeWindow(max_bytes=3 * (1 + ID_OVERHEAD), max_age=60.0)
    for i, key in enumerate("abcd"):
        w.add(key, now=float(i))
    assert not w.seen("a", now=4.0) and all(w.seen(k, now=4.0) for k in "bcd")
    assert w.evicted == 1 and w.bytes <= w.max_bytes


def test_adding_an_id_again_renews_it() -> None:
    w = DedupeWindow(max_bytes=1 << 20, max_age=10.0)
    w.add("a", now=0.0)
    w.add("b", now=5.0)
    w.add("a", now=8.0)
    assert w.seen("a", now=15.0) and not w.seen("b", now=15.0)


@pytest.mark.parametrize(("max_bytes", "max_age"), [(0, 1.0), (True, 1.0), (10, 0)])
def test_bad_bounds_are_refused(max_bytes: int, max_age: float) -> None:
    with pytest.raises(ValueError, match="DedupeWindow"):
        DedupeWindow(max_bytes, max_age)


@given(st.lists(st.text(min_size=1, max_size=20), max_size=200), st.integers(200, 5000))
def test_the_byte_bound_always_holds(ids: list[str], max_bytes: int) -> None:
    w = DedupeWindow(max_bytes=max_bytes, max_age=1e9)
    for i, key in enumerate(ids):
        w.add(key, now=float(i))
        assert w.bytes <= max_bytes
        assert w.seen(key, now=float(i)) or len(key) + ID_OVERHEAD > max_bytes
