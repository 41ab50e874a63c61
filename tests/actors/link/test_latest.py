"""LatestFilter: per key only a newer order passes; older and repeated ones are counted."""

from __future__ import annotations

from actorwire.actors.link import LatestFilter
from hypothesis import given
from hypothesis import strategies as st


def test_only_newer_orders_pass_per_key_and_stale_ones_are_counted() -> None:
    f = LatestFilter()
    assert [f.accept("A", n) for n in (1, 2, 2, 1, 5, 3, 6)] == [
        True,
        True,
        False,
        False,
        True,
        False,
        True,
    ]
    assert f.accept("B", 1)  # keys are independent
    assert f.stale == 3
    f.forget("A")
    assert f.accept("A", 1)  # a forgotten key starts again


def test_epoch_and_seq_pairs_order_a_new_epoch_first() -> None:
    f = LatestFilter()
    assert f.accept("T", (1, 900))
    assert f.accept("T", (2, 1))  # the platform restarted: a new epoch supersedes
    assert not f.accept("T", (1, 901))


@given(st.lists(st.tuples(st.sampled_from("ABC"), st.integers(0, 50)), max_size=200))
def test_what_passes_is_strictly_increasing_per_key(frames: list[tuple[str, int]]) -> None:
    f = LatestFilter()
    passed: dict[str, list[int]] = {}
    for key, order in frames:
        if f.accept(key, order):
            passed.setdefault(key, []).append(order)
    for orders in passed.values():
        assert orders == sorted(set(orders))
    assert f.stale == len(frames) - sum(len(v) for v in passed.values())
