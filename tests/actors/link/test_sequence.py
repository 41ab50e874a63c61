"""SequenceTracker: in-order delivery, duplicate drops, gap recovery, escalation."""

from __future__ import annotations

import dataclasses
import random
from collections import deque
from collections.abc import Hashable, Sequence

import pytest
from actorwire.actors.link.sequence import (
    Action,
    Deliver,
    Escalate,
    RequestRecovery,
    SequenceTracker,
)
from hypothesis import given, settings
from hypothesis import strategies as st

S = "BTC-USD"


def items_of(actions: Sequence[Action]) -> list[object]:
    """Everything delivered by ``actions``, in order."""
    return [item for a in actions if isinstance(a, Deliver) for item in a.items]


def feed(tracker: SequenceTracker, seqs: Sequence[int], now: float = 0.0) -> list[Action]:
    """Receive ``seqs`` one by one on stream S (item = seq) and collect every action."""
    out: list[Action] = []
    for seq in seqs:
        out.extend(tracker.receive(S, seq, seq, now))
    return out


class TestInOrder:
    def test_in_order_frames_are_delivered_one_by_one(self) -> None:
        t = SequenceTracker()
        for seq in range(5):
            assert t.receive(S, seq, f"m{seq}", 0.0) == [Deliver(S, [f"m{seq}"])]
        assert t.expected(S) == 5
        assert t.delivered == 5
        assert t.held(S) == 0
        assert not t.recovering(S)

    def test_first_seq_seen_starts_an_unknown_stream(self) -> None:
        t = SequenceTracker()
        assert t.receive(S, 1000, "x", 0.0) == [Deliver(S, ["x"])]
        assert t.expected(S) == 1001
        assert t.receive(S, 999, "old", 0.0) == []

    def test_expect_sets_the_start_of_an_unknown_stream(self) -> None:
        t = SequenceTracker()
        assert t.expect(S, 10) == []
        assert t.expected(S) == 10
        assert t.receive(S, 9, "old", 0.0) == []
        assert t.receive(S, 10, "a", 0.0) == [Deliver(S, ["a"])]

    def test_streams_are_independent(self) -> None:
        t = SequenceTracker()
        t.receive("a", 0, "a0", 0.0)
        t.receive("b", 50, "b50", 0.0)
        assert t.receive("a", 2, "a2", 0.0) == [RequestRecovery("a", 1, 1)]
        assert t.receive("b", 51, "b51", 0.0) == [Deliver("b", ["b51"])]
        assert t.recovering("a")
        assert not t.recovering("b")
        assert sorted(t.streams(), key=str) == ["a", "b"]


class TestDuplicates:
    def test_already_delivered_frames_are_dropped_and_counted(self) -> None:
        t = SequenceTracker()
        feed(t, [0, 1, 2])
        assert feed(t, [1, 0, 2]) == []
        assert t.duplicates == 3
        assert t.delivered == 3

    def test_a_b_line_feed_delivers_each_frame_once(self) -> None:
        t = SequenceTracker()
        out = feed(t, [seq for seq in range(50) for _ in ("A", "B")])
        assert items_of(out) == list(range(50))
        assert t.duplicates == 50
        assert t.gaps == 0

    def test_already_held_frames_are_dropped_and_counted(self) -> None:
        t = SequenceTracker()
        feed(t, [0, 5])
        assert t.receive(S, 5, "again", 0.0) == []
        assert t.duplicates == 1
        assert t.held(S) == 1
        # the first copy is the one delivered
        assert feed(t, [1, 2, 3, 4]) == [
            Deliver(S, [1]),
            Deliver(S, [2]),
            Deliver(S, [3]),
            Deliver(S, [4, 5]),
        ]


class TestReorderAndGaps:
    def test_reordered_frames_are_held_and_released_in_order(self) -> None:
        t = SequenceTracker()
        feed(t, [0])
        assert t.receive(S, 3, 3, 0.0) == [RequestRecovery(S, 1, 2)]
        assert t.receive(S, 2, 2, 0.0) == []
        assert t.held(S) == 2
        assert t.receive(S, 1, 1, 0.0) == [Deliver(S, [1, 2, 3])]
        assert t.held(S) == 0
        assert t.expected(S) == 4
        assert not t.recovering(S)
        assert t.next_deadline() is None

    def test_gap_requests_exactly_the_missing_range(self) -> None:
        t = SequenceTracker(recovery_timeout=5.0)
        feed(t, [0, 1, 2])
        assert t.receive(S, 10, 10, 100.0) == [RequestRecovery(S, 3, 9)]
        assert t.recovering(S)
        assert t.next_deadline() == 105.0
        assert t.gaps == 1

    def test_no_second_request_while_recovery_is_outstanding(self) -> None:
        t = SequenceTracker()
        feed(t, [0, 5])
        assert feed(t, [8, 7, 3]) == []
        assert t.gaps == 1
        assert t.held(S) == 4

    def test_replay_closes_the_gap_and_clears_recovery(self) -> None:
        t = SequenceTracker()
        assert feed(t, [0, 4]) == [Deliver(S, [0]), RequestRecovery(S, 1, 3)]
        assert feed(t, [1, 2, 3]) == [Deliver(S, [1]), Deliver(S, [2]), Deliver(S, [3, 4])]
        assert not t.recovering(S)
        assert t.next_deadline() is None
        assert t.expected(S) == 5

    def test_out_of_order_replay_inside_requested_range_asks_nothing_more(self) -> None:
        t = SequenceTracker()
        feed(t, [0, 10])  # requests 1..9
        assert feed(t, [7, 3, 9, 1, 2]) == [Deliver(S, [1]), Deliver(S, [2, 3])]
        assert t.gaps == 1
        assert feed(t, [8, 6, 5, 4]) == [Deliver(S, [4, 5, 6, 7, 8, 9, 10])]
        assert not t.recovering(S)

    def test_partial_replay_emits_the_remaining_range(self) -> None:
        t = SequenceTracker(recovery_timeout=5.0)
        assert t.receive(S, 0, 0, 0.0) == [Deliver(S, [0])]
        assert t.receive(S, 3, 3, 0.0) == [RequestRecovery(S, 1, 2)]
        assert t.receive(S, 10, 10, 1.0) == []  # recovery outstanding: no second request
        # the replay of 1..2 closes the first gap; 4..9 in front of 10 is still missing
        assert t.receive(S, 1, 1, 2.0) == [Deliver(S, [1])]
        assert t.receive(S, 2, 2, 2.0) == [Deliver(S, [2, 3]), RequestRecovery(S, 4, 9)]
        assert t.recovering(S)
        # partial progress does not restart the clock
        assert t.next_deadline() == 5.0
        assert t.receive(S, 4, 4, 3.0) == [Deliver(S, [4])]
        assert t.next_deadline() == 5.0
        assert [type(a) for a in t.poll(5.0)] == [Escalate]
        assert t.expected(S) == 5

    def test_new_gap_after_a_newly_held_frame_is_requested_exactly(self) -> None:
        t = SequenceTracker()
        feed(t, [0, 2])  # requests 1..1
        feed(t, [5, 9])  # held beyond the request, not requested yet
        assert t.receive(S, 1, 1, 0.0) == [Deliver(S, [1, 2]), RequestRecovery(S, 3, 4)]
        assert feed(t, [4, 3]) == [Deliver(S, [3, 4, 5]), RequestRecovery(S, 6, 8)]
        assert feed(t, [6, 7, 8]) == [Deliver(S, [6]), Deliver(S, [7]), Deliver(S, [8, 9])]
        assert t.gaps == 3
        assert not t.recovering(S)


class TestOverflow:
    def test_overflow_escalates_drops_held_and_keeps_expected(self) -> None:
        t = SequenceTracker(max_held=3)
        feed(t, [0, 2, 3, 4])
        assert t.held(S) == 3
        actions = t.receive(S, 5, 5, 0.0)
        assert len(actions) == 1
        esc = actions[0]
        assert isinstance(esc, Escalate)
        assert esc.stream == S
        assert esc.reason.startswith("hold buffer full")
        assert "max_held=3" in esc.reason
        assert t.expected(S) == 1
        assert t.held(S) == 0
        assert not t.recovering(S)
        assert t.next_deadline() is None
        assert t.escalations == 1
        # a replay from expected() loses nothing
        assert items_of(feed(t, [1, 2, 3, 4, 5, 6])) == [1, 2, 3, 4, 5, 6]

    def test_held_max_records_the_high_water_mark(self) -> None:
        t = SequenceTracker()
        feed(t, [0, 4, 3, 2])
        feed(t, [1])
        assert t.held_max == 3
        assert t.held(S) == 0

    def test_zero_max_held_escalates_on_any_early_frame(self) -> None:
        t = SequenceTracker(max_held=0)
        feed(t, [0])
        assert [type(a) for a in t.receive(S, 2, 2, 0.0)] == [Escalate]
        assert t.expected(S) == 1


class TestTimeout:
    def test_recovery_timeout_escalates_via_poll(self) -> None:
        t = SequenceTracker(recovery_timeout=5.0)
        feed(t, [0])
        t.receive(S, 2, 2, 1.0)
        assert t.next_deadline() == 6.0
        assert t.poll(5.999) == []
        actions = t.poll(6.0)
        assert len(actions) == 1
        esc = actions[0]
        assert isinstance(esc, Escalate)
        assert esc.stream == S
        assert esc.reason.startswith("recovery timed out")
        assert "seq 1" in esc.reason
        assert t.expected(S) == 1
        assert t.held(S) == 0
        assert not t.recovering(S)
        assert t.next_deadline() is None
        assert t.poll(100.0) == []
        assert t.escalations == 1

    def test_poll_escalates_only_expired_streams_earliest_first(self) -> None:
        t = SequenceTracker(recovery_timeout=2.0)
        for stream, now in (("a", 0.0), ("b", 1.0), ("c", 3.0)):
            t.receive(stream, 0, 0, now)
            t.receive(stream, 5, 5, now)
        assert t.next_deadline() == 2.0
        escalated = t.poll(3.5)
        assert [a.stream for a in escalated] == ["a", "b"]
        assert t.recovering("c")
        assert t.next_deadline() == 5.0

    def test_resolved_recovery_is_not_escalated(self) -> None:
        t = SequenceTracker(recovery_timeout=1.0)
        feed(t, [0, 2])
        feed(t, [1])
        assert t.poll(50.0) == []

    def test_new_recovery_after_escalation_gets_a_fresh_deadline(self) -> None:
        t = SequenceTracker(recovery_timeout=1.0)
        feed(t, [0])
        t.receive(S, 3, 3, 0.0)
        t.poll(1.0)
        assert t.receive(S, 4, 4, 10.0) == [RequestRecovery(S, 1, 3)]
        assert t.next_deadline() == 11.0


class TestExpectAndForget:
    def test_expect_resets_recovery_and_drops_frames_below(self) -> None:
        t = SequenceTracker()
        feed(t, [0, 3, 4])
        assert t.recovering(S)
        assert t.expect(S, 20) == []
        assert t.expected(S) == 20
        assert t.held(S) == 0
        assert not t.recovering(S)
        assert t.next_deadline() is None
        assert t.receive(S, 4, 4, 0.0) == []
        assert t.receive(S, 20, 20, 0.0) == [Deliver(S, [20])]

    def test_expect_releases_buffered_frames_from_the_snapshot_point(self) -> None:
        t = SequenceTracker()
        feed(t, [0])
        feed(t, [5, 6, 7, 9])  # live updates buffered while a snapshot is fetched
        assert t.expect(S, 5, now=1.0) == [Deliver(S, [5, 6, 7]), RequestRecovery(S, 8, 8)]
        assert t.expected(S) == 8
        assert t.recovering(S)
        assert t.next_deadline() == 6.0

    def test_expect_without_now_times_recovery_from_latest_seen_time(self) -> None:
        t = SequenceTracker(recovery_timeout=5.0)
        feed(t, [0])
        t.receive(S, 5, 5, 40.0)
        t.receive(S, 7, 7, 41.0)
        assert t.expect(S, 5) == [Deliver(S, [5]), RequestRecovery(S, 6, 6)]
        assert t.next_deadline() == 45.0

    def test_expect_may_move_backwards(self) -> None:
        t = SequenceTracker()
        feed(t, [0, 1, 2])
        t.expect(S, 1)
        assert t.receive(S, 1, "again", 0.0) == [Deliver(S, ["again"])]

    def test_forget_drops_the_stream(self) -> None:
        t = SequenceTracker()
        feed(t, [0, 5])
        t.forget(S)
        assert t.expected(S) is None
        assert t.held(S) == 0
        assert not t.recovering(S)
        assert t.streams() == []
        assert t.next_deadline() is None
        assert t.receive(S, 42, 42, 0.0) == [Deliver(S, [42])]
        t.forget("never-seen")  # no error


class TestReceiveMany:
    def test_in_order_batch_is_one_deliver(self) -> None:
        t = SequenceTracker()
        frames = [(i, f"m{i}") for i in range(100)]
        assert t.receive_many(S, frames, 0.0) == [Deliver(S, [f"m{i}" for i in range(100)])]
        assert t.delivered == 100
        assert t.expected(S) == 100

    def test_only_consecutive_delivers_are_merged(self) -> None:
        t = SequenceTracker()
        frames = [(0, 0), (1, 1), (3, 3), (2, 2), (4, 4), (4, 4)]
        assert t.receive_many(S, frames, 0.0) == [
            Deliver(S, [0, 1]),
            RequestRecovery(S, 2, 2),
            Deliver(S, [2, 3, 4]),
        ]
        assert t.duplicates == 1

    def test_empty_batch(self) -> None:
        assert SequenceTracker().receive_many(S, [], 0.0) == []

    @given(
        seqs=st.lists(st.integers(min_value=0, max_value=30), max_size=60),
        max_held=st.integers(min_value=0, max_value=8),
    )
    def test_same_as_receive_one_by_one(self, seqs: list[int], max_held: int) -> None:
        one, many = SequenceTracker(max_held=max_held), SequenceTracker(max_held=max_held)
        singles: list[Action] = []
        for seq in seqs:
            singles.extend(one.receive(S, seq, seq, 0.0))
        merged: list[Action] = []
        for action in singles:
            if isinstance(action, Deliver) and merged and isinstance(merged[-1], Deliver):
                merged[-1] = Deliver(S, merged[-1].items + action.items)
            else:
                merged.append(action)
        assert many.receive_many(S, [(s, s) for s in seqs], 0.0) == merged
        assert many.stats() == one.stats()
        assert many.expected(S) == one.expected(S)


class TestStatsAndValidation:
    def test_stats_dict(self) -> None:
        t = SequenceTracker(max_held=2)
        feed(t, [0, 0, 2, 3, 4])
        assert t.stats() == {
            "delivered": 1,
            "duplicates": 1,
            "gaps": 1,
            "escalations": 1,
            "held_max": 2,
        }

    @pytest.mark.parametrize(
        ("kwargs", "exc", "needle"),
        [
            ({"max_held": -1}, ValueError, "max_held must be >= 0, got -1"),
            ({"max_held": 1.5}, TypeError, "max_held must be an int, got 1.5"),
            ({"max_held": True}, TypeError, "max_held must be an int, got True"),
            ({"recovery_timeout": 0}, ValueError, "recovery_timeout must be a finite number > 0"),
            ({"recovery_timeout": -1.0}, ValueError, "got -1.0"),
            ({"recovery_timeout": float("nan")}, ValueError, "got nan"),
        ],
    )
    def test_bad_constructor_arguments(
        self, kwargs: dict[str, object], exc: type[Exception], needle: str
    ) -> None:
        with pytest.raises(exc) as exc_info:
            SequenceTracker(**kwargs)  # type: ignore[arg-type]
        assert needle in str(exc_info.value)

    def test_bad_seq(self) -> None:
        t = SequenceTracker()
        with pytest.raises(TypeError, match="seq must be an int, got '1'"):
            t.receive(S, "1", "x", 0.0)  # type: ignore[arg-type]
        feed(t, [0])
        with pytest.raises(TypeError, match=r"seq must be an int, got 3\.0"):
            t.receive(S, 3.0, "x", 0.0)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="seq must be an int, got None"):
            t.expect(S, None)  # type: ignore[arg-type]

    def test_bad_now(self) -> None:
        t = SequenceTracker()
        with pytest.raises(ValueError, match="now must be finite, got nan"):
            t.poll(float("nan"))
        with pytest.raises(TypeError, match="now must be a number of seconds, got 'x'"):
            t.poll("x")  # type: ignore[arg-type]

    def test_bad_now_is_reported_when_a_recovery_starts(self) -> None:
        t = SequenceTracker()
        feed(t, [0])
        with pytest.raises(ValueError, match="now must be finite, got inf"):
            t.receive(S, 5, 5, float("inf"))

    def test_actions_are_frozen_and_slotted(self) -> None:
        for action in (Deliver(S, []), RequestRecovery(S, 1, 2), Escalate(S, "why")):
            assert not hasattr(action, "__dict__")
            with pytest.raises(dataclasses.FrozenInstanceError):
                action.stream = "other"  # type: ignore[misc]


# -- the end-to-end property: whatever the transport does, every item arrives once, in order --


def lossy_feed(rnd: random.Random, n: int, window: int, dup: float, drop: float) -> list[int]:
    """range(n) with random drops (never the last, so a gap is always detectable), duplicates
    and reordering within ``window`` positions."""
    seqs: list[int] = []
    for seq in range(n):
        if seq < n - 1 and rnd.random() < drop:
            continue
        seqs.append(seq)
        if rnd.random() < dup:
            seqs.append(seq)
    keyed = sorted(enumerate(seqs), key=lambda pair: pair[0] + rnd.random() * (window + 1))
    return [seq for _, seq in keyed]


@settings(max_examples=300, deadline=None)
@given(
    rnd=st.randoms(use_true_random=False),
    sizes=st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=3),
    window=st.integers(min_value=0, max_value=10),
    dup=st.sampled_from([0.0, 0.1, 0.4]),
    drop=st.sampled_from([0.0, 0.05, 0.3]),
    replay_loss=st.sampled_from([0.0, 0.2]),
    max_held=st.sampled_from([0, 1, 3, 10, 10_000]),
    batch=st.integers(min_value=1, max_value=8),
)
def test_every_item_delivered_exactly_once_in_order(
    rnd: random.Random,
    sizes: list[int],
    window: int,
    dup: float,
    drop: float,
    replay_loss: float,
    max_held: int,
    batch: int,
) -> None:
    tracker = SequenceTracker(max_held=max_held, recovery_timeout=2.0)
    streams = [f"s{i}" for i in range(len(sizes))]
    sizes_by_stream = dict(zip(streams, sizes, strict=True))
    # interleave the lossy per-stream feeds at random, keeping each stream's own order
    per_stream = {
        s: deque(lossy_feed(rnd, n, window, dup, drop)) for s, n in sizes_by_stream.items()
    }
    queue: deque[tuple[Hashable, int]] = deque()
    while any(per_stream.values()):
        s = rnd.choice([s for s, q in per_stream.items() if q])
        queue.append((s, per_stream[s].popleft()))
    for s in streams:
        tracker.expect(s, 0)

    delivered: dict[Hashable, list[int]] = {s: [] for s in streams}
    now = 0.0

    def handle(actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Deliver):
                delivered[action.stream].extend(action.items)
            elif isinstance(action, RequestRecovery):
                assert action.first <= action.last
                replay = [
                    (action.stream, seq)
                    for seq in range(action.first, action.last + 1)
                    if rnd.random() >= replay_loss
                ]
                if rnd.random() < 0.5:
                    rnd.shuffle(replay)
                if rnd.random() < 0.5:
                    queue.extendleft(reversed(replay))
                else:
                    queue.extend(replay)
            else:
                assert isinstance(action, Escalate)
                start = tracker.expected(action.stream)
                assert start is not None
                queue.extend(
                    (action.stream, seq) for seq in range(start, sizes_by_stream[action.stream])
                )

    steps = 0
    while True:
        steps += 1
        assert steps < 100_000, "replays did not converge"
        if not queue:
            deadline = tracker.next_deadline()
            if deadline is None:
                break
            now = max(now, deadline)
            handle(tracker.poll(now))
            continue
        now += rnd.random() * 0.3
        handle(tracker.poll(now))
        if not queue:
            continue
        stream, seq = queue.popleft()
        if batch > 1:
            frames = [(seq, seq)]
            while queue and len(frames) < batch and queue[0][0] == stream:
                frames.append((queue[0][1], queue[0][1]))
                queue.popleft()
            handle(tracker.receive_many(stream, frames, now))
        else:
            handle(tracker.receive(stream, seq, seq, now))

    for s in streams:
        assert delivered[s] == list(range(sizes_by_stream[s]))
        assert tracker.held(s) == 0
        assert not tracker.recovering(s)
    assert tracker.delivered == sum(sizes)
