"""stream-sea's stream logs and consumer groups, sans-I/O, with a fake clock: logs bounded in
bytes, seq sets as runs, competing members and fan-out, backlogs kept for the next member,
new groups and afterSeq, orphans inherited, claimed, redelivered after the grace or lost,
budgets, limits and forgetting; live members taken over by their client from a new
connection (half-open) and when they are not; the records for a store and groups restored
from them, whichever member comes back first; and, with hypothesis, exactly once for a group
whose dropped members come back within the grace (also through half-open connections and
restarts on a store), each member's seqs increasing."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import pytest
from actorwire.adapters.streamsea.groups import (
    DELIVERY_OVERHEAD,
    ENTRY_OVERHEAD,
    REDELIVER_TAG,
    Dispatch,
    Groups,
    LimitError,
    Record,
    SeqSet,
    StreamLog,
    default_group,
)
from hypothesis import event, given, settings
from hypothesis import strategies as st

EPOCH = "epoch-1"
BIG = 10**12
"""A budget that never runs out."""
S = "boiler"
G = default_group("demo")


def payload(n: int) -> str:
    return f'{{"n":{n}}}'


def groups(**kwargs: Any) -> Groups:
    out = Groups(EPOCH, **kwargs)
    out.open_stream(S, pinned=True)
    return out


def info(g: Groups, group: str = G) -> dict[str, object]:
    out = g.group_info(S, group)
    assert out is not None, f"no group {group!r}"
    return out


def seqs(out: list[Dispatch], member: Hashable | None = None) -> list[int]:
    return [d.seq for d in out if member is None or d.member == member]


def publish(g: Groups, n: int = 1) -> list[Dispatch]:
    out: list[Dispatch] = []
    for _ in range(n):
        seq, dispatched = g.append(S, payload(g.logs[S].last_seq + 1))
        assert seq == g.logs[S].last_seq
        out += dispatched
    return out


def join(
    g: Groups,
    member: str,
    *,
    group: str = G,
    after: int | None = None,
    budget: int = BIG,
    now: float = 0.0,
    epoch: str = EPOCH,
    solo: bool = False,
    client: str = "demo",
) -> tuple[int, list[Dispatch]]:
    return g.join(
        member,
        S,
        group,
        client=client,
        budget=budget,
        now=now,
        after_seq=after,
        epoch=epoch,
        solo=solo,
    )


# --------------------------------------------------------------------------- StreamLog


def test_a_log_numbers_from_one_and_drops_the_oldest_past_its_bytes() -> None:
    size = len(payload(1)) + ENTRY_OVERHEAD
    log = StreamLog(S, max_bytes=3 * size)
    assert (log.first_seq, log.last_seq, len(log)) == (1, 0, 0)
    assert [log.append(payload(n)) for n in range(1, 4)] == [1, 2, 3]
    assert (log.first_seq, log.bytes, log.dropped) == (1, 3 * size, 0)
    assert log.first_after_append(len(payload(4))) == 2
    assert log.append(payload(4)) == 4
    assert (log.first_seq, log.last_seq, log.bytes, log.dropped) == (2, 4, 3 * size, 1)
    assert log.get(1) is None and not log.holds(1)
    assert log.get(2) == payload(2) and log.holds(4) and log.get(5) is None
    assert list(log.after(2)) == [(3, payload(3)), (4, payload(4))]
    assert list(log.after(0)) == [(n, payload(n)) for n in (2, 3, 4)]


def test_a_log_keeps_its_newest_entry_whatever_its_size() -> None:
    log = StreamLog(S, max_bytes=100)
    log.append("x" * 10)
    big = "y" * 500
    assert log.first_after_append(len(big)) == 2
    assert log.append(big) == 2
    assert (log.first_seq, log.last_seq, log.get(2)) == (2, 2, big)


def test_a_log_restored_from_a_store_continues_its_numbering() -> None:
    log = StreamLog(S, max_bytes=1 << 20, start_after=41)
    assert (log.first_seq, log.last_seq) == (42, 41)
    assert log.append("{}") == 42


def test_a_long_log_compacts_and_stays_bounded() -> None:
    log = StreamLog(S, max_bytes=100 * (ENTRY_OVERHEAD + 8))
    for n in range(20_000):
        log.append(f"{n:08d}")
    assert len(log) == 100 and log.first_seq == 19_901 and log.get(20_000) == "00019999"
    assert len(log._entries) < 10_000  # the dropped head was cut away


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_a_log_refuses_a_bad_bound(bad: object) -> None:
    with pytest.raises(ValueError, match="max_bytes must be an int >= 1"):
        StreamLog(S, max_bytes=bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- SeqSet


def test_consecutive_seqs_are_one_run_and_a_stride_is_one_run_too() -> None:
    one = SeqSet(range(1, 10_001))
    assert (one.runs, len(one), one.min(), one.max()) == (1, 10_000, 1, 10_000)
    strided = SeqSet(range(3, 3000, 3))
    assert strided.runs == 1 and 6 in strided and 7 not in strided
    assert strided.describe() == "3-2997/3 (999 seqs)"


def test_seq_set_operations() -> None:
    s = SeqSet([5, 7, 9, 2, 20, 21, 22])
    assert list(s) == [2, 5, 7, 9, 20, 21, 22]
    assert list(s.above(7)) == [9, 20, 21, 22]
    assert list(s.above(0)) == list(s)
    removed = s.prune_below(8)
    assert list(removed) == [2, 5, 7] and list(s) == [9, 20, 21, 22] and len(s) == 4
    assert s.pop_min() == 9 and s.pop_min() == 20 and len(s) == 2
    other = SeqSet([30])
    s.update(other)
    assert list(s) == [21, 22, 30] and 30 in s and "x" not in s
    s.clear()
    assert not s and s.describe() == "none"
    with pytest.raises(ValueError, match="empty"):
        s.pop_min()


# --------------------------------------------------------------------------- groups


def test_one_member_gets_every_message_in_order_with_seqs_from_one() -> None:
    g = groups()
    start, out = join(g, "a")
    assert (start, out) == (0, [])
    out = publish(g, 3)
    assert out == [Dispatch("a", n, payload(n)) for n in (1, 2, 3)]
    assert g.member_info("a") == {
        "stream": S,
        "group": G,
        "joined_after": 0,
        "unconfirmed": 3,
        "pending": 0,
        "claimant": False,
        "budget": BIG - 3 * (len(payload(1)) + DELIVERY_OVERHEAD + len(S)),
    }


def test_members_of_one_group_compete_round_robin() -> None:
    g = groups()
    join(g, "a")
    join(g, "b")
    out = publish(g, 6)
    assert seqs(out, "a") == [1, 3, 5] and seqs(out, "b") == [2, 4, 6]


def test_groups_fan_out_each_gets_every_message() -> None:
    g = groups()
    join(g, "a", group="11111111-1111-1111-1111-111111111111")
    join(g, "b", group="22222222-2222-2222-2222-222222222222")
    out = publish(g, 3)
    assert seqs(out, "a") == [1, 2, 3] and seqs(out, "b") == [1, 2, 3]


def test_a_new_group_starts_at_the_log_end_or_after_a_resumable_after_seq() -> None:
    g = groups()
    publish(g, 5)
    assert join(g, "a", group="g1") == (5, [])
    start, out = join(g, "b", group="g2", after=2)
    assert start == 2 and seqs(out) == [3, 4, 5]
    assert join(g, "c", group="g3", after=2, epoch="another epoch") == (5, [])
    assert join(g, "d", group="g4", after=5) == (5, [])
    assert join(g, "e", group="g5", after=9) == (5, [])  # beyond the log: new messages only


def test_a_new_group_whose_after_seq_fell_out_of_the_log_starts_at_the_end() -> None:
    g = groups(max_log_bytes=3 * (len(payload(1)) + ENTRY_OVERHEAD))
    publish(g, 6)
    assert g.logs[S].first_seq == 4
    assert join(g, "a", group="g1", after=2)[0] == 6
    start, out = join(g, "b", group="g2", after=3)  # the log holds 4, the seq after it
    assert start == 3 and seqs(out) == [4, 5, 6]


def test_a_groups_backlog_waits_for_the_member_that_comes_back() -> None:
    g = groups()
    join(g, "a")
    publish(g, 2)
    g.leave("a", now=1.0)
    assert publish(g, 3) == []  # no member: it waits in the log
    start, out = join(g, "a2", after=2, now=2.0)
    assert start == 2 and seqs(out) == [3, 4, 5]
    assert g.stats()["inherited"] == 1 and g.stats()["redelivered"] == 0


def test_a_member_that_comes_back_inherits_what_it_missed_first() -> None:
    g = groups()
    join(g, "a")
    publish(g, 5)
    g.leave("a", now=1.0)  # dropped: it got 1 and 2 only (its afterSeq says so)
    publish(g, 2)
    start, out = join(g, "a2", after=2, now=2.0)
    assert start == 2
    assert out == [Dispatch("a2", n, payload(n)) for n in (3, 4, 5, 6, 7)]
    assert info(g)["orphans"] == 0


def test_a_competing_member_inherits_its_own_seqs_and_the_others_keep_theirs() -> None:
    g = groups()
    join(g, "a")
    join(g, "b")
    publish(g, 6)  # a: 1 3 5, b: 2 4 6
    g.leave("a", now=1.0)  # a got 1 only
    out = publish(g, 2)
    assert seqs(out, "b") == [7, 8]
    start, out = join(g, "a2", after=1, now=2.0)
    assert start == 1 and seqs(out, "a2") == [3, 5]
    assert seqs(publish(g, 2)) == [9, 10]


def test_an_orphan_not_claimed_within_the_grace_goes_to_the_live_members_flagged() -> None:
    g = groups(rejoin_grace=10.0)
    join(g, "a")
    join(g, "b")
    publish(g, 4)  # a: 1 3, b: 2 4
    g.leave("a", now=100.0)
    assert g.tick(109.9) == []
    assert g.next_deadline() == 110.0
    out = g.tick(110.0)
    assert out == [Dispatch("b", 1, payload(1), True), Dispatch("b", 3, payload(3), True)]
    assert g.stats()["redelivered"] == 2 and g.stats()["orphans"] == 0
    notices = g.take_notices()
    assert [(n.event, n.seqs, n.size) for n in notices] == [("redelivering", "1-3/2 (2 seqs)", 2)]
    assert "within 10 s" in notices[0].reason and g.take_notices() == []


def test_without_live_members_an_expired_orphan_stays_for_the_member_that_comes_back() -> None:
    g = groups(rejoin_grace=1.0)
    join(g, "a")
    publish(g, 3)
    g.leave("a", now=0.0)
    assert g.tick(50.0) == []
    start, out = join(g, "a2", after=1, now=60.0)
    assert start == 1 and out == [Dispatch("a2", n, payload(n)) for n in (2, 3)]


def test_a_late_stranger_gets_an_expired_orphan_redelivered() -> None:
    g = groups(rejoin_grace=1.0)
    join(g, "a")
    publish(g, 3)
    g.leave("a", now=0.0)
    start, out = join(g, "b", now=60.0)  # a 0.7.0 client: no afterSeq
    assert start == 3
    assert out == [Dispatch("b", n, payload(n), True) for n in (1, 2, 3)]


def test_orphan_seqs_that_fell_out_of_the_log_are_lost_counted_and_noticed() -> None:
    g = groups(max_log_bytes=3 * (len(payload(1)) + ENTRY_OVERHEAD), rejoin_grace=1.0)
    join(g, "a")
    join(g, "b")
    publish(g, 2)  # a: 1, b: 2
    g.leave("a", now=0.0)
    publish(g, 3)  # b: 3 4 5; the log holds 3..5
    assert g.tick(5.0) == []
    assert g.stats()["lost"] == 1
    lost = [n for n in g.take_notices() if n.event == "lost"]
    assert [(n.seqs, n.size) for n in lost] == [("1", 1)]


def test_a_clean_leave_leaves_no_orphan_and_nothing_is_redelivered() -> None:
    g = groups(rejoin_grace=1.0)
    join(g, "a")
    join(g, "b")
    publish(g, 4)
    g.leave("a", now=0.0, clean=True)
    assert g.stats()["orphans"] == 0
    assert g.tick(10.0) == [] and g.stats()["redelivered"] == 0


def test_the_start_seq_says_when_something_after_after_seq_is_lost() -> None:
    g = groups(max_log_bytes=3 * (len(payload(1)) + ENTRY_OVERHEAD))
    join(g, "a")
    publish(g, 3)
    g.leave("a", now=0.0)  # got 1 only; 2 and 3 are an orphan's
    publish(g, 2)  # 4 5: the log holds 3..5
    start, out = join(g, "a2", after=1, now=1.0)
    assert start == 2 and seqs(out) == [3, 4, 5]  # 2 is gone: the client can tell
    assert g.stats()["lost"] == 1


def test_a_member_resuming_in_a_group_that_has_everything_after_its_seq_starts_there() -> None:
    g = groups(rejoin_grace=1.0)
    join(g, "a")
    join(g, "b")
    publish(g, 4)
    g.leave("a", now=0.0)
    g.tick(5.0)  # a's orphan went to b
    start, out = join(g, "a2", after=1, now=6.0)
    assert start == 1 and out == []  # the group had everything after 1
    start, _ = join(g, "c", after=1, epoch="old", now=6.0)
    assert start == 4  # another epoch: the group's cursor


def test_two_members_with_one_after_seq_wait_until_the_choice_is_forced() -> None:
    g = groups()
    join(g, "a")
    join(g, "b")
    publish(g, 4)  # a: 1 3, b: 2 4
    g.leave("a", now=0.0)  # a got 1
    g.leave("b", now=0.0)  # b got nothing: its afterSeq is the 0 it joined after
    start, out = join(g, "b2", after=0, now=1.0)  # both orphans joined after 0: unclear
    assert (start, out) == (0, [])
    assert info(g)["claimants"] == 1
    assert publish(g, 1) == []  # a claimant takes nothing until it knows its orphan
    start, out = join(g, "a2", after=1, now=1.0)  # 1 is a's: b2's orphan is b's
    assert start == 1
    assert seqs(out, "a2") == [3] and seqs(out, "b2") == [2, 4, 5]


def test_an_after_seq_that_is_one_orphans_seq_and_anothers_start_is_not_guessed() -> None:
    g = groups()
    join(g, "a")
    publish(g, 3)  # a: 1 2 3
    join(g, "b")  # b joined after 3
    assert seqs(publish(g, 2), "b") == [5]  # a: 4
    g.leave("a", now=0.0)  # a got 4
    g.leave("b", now=0.0)  # b got nothing: 3, its start, is also one of a's seqs
    assert join(g, "b2", after=3, now=1.0) == (3, [])  # a's orphan or b's: it waits
    start, out = join(g, "a2", after=4, now=1.0)
    assert start == 4
    assert seqs(out, "a2") == [] and seqs(out, "b2") == [5]  # 4 was a's and a had it


def test_claimants_as_many_as_the_orphans_share_them_out() -> None:
    g = groups()
    join(g, "a")
    join(g, "b")
    publish(g, 2)
    g.leave("a", now=0.0)
    g.leave("b", now=0.0)  # neither got anything
    assert join(g, "x", after=0, now=1.0)[1] == []
    start, out = join(g, "y", after=0, now=1.0)
    assert start == 0 and sorted(seqs(out)) == [1, 2]
    assert g.stats()["claimants"] == 0 and g.stats()["orphans"] == 0


def test_the_grace_ends_a_claim_at_least_once() -> None:
    g = groups(rejoin_grace=5.0)
    join(g, "a")
    join(g, "b")
    publish(g, 2)
    g.leave("a", now=0.0)
    g.leave("b", now=0.0)
    join(g, "x", after=0, now=1.0)
    out = g.tick(5.0)
    assert sorted(d.seq for d in out) == [1, 2] and all(d.redelivered for d in out)
    assert g.stats()["claimants"] == 0


def test_a_member_out_of_budget_is_skipped_and_paced_from_the_log() -> None:
    g = groups()
    cost = len(payload(1)) + DELIVERY_OVERHEAD + len(S)
    join(g, "a", budget=2 * cost)
    out = publish(g, 5)
    assert seqs(out) == [1, 2] and g.budget("a") == 0
    assert info(g)["cursor"] == 2
    out = g.set_budget("a", 2 * cost)
    assert seqs(out) == [3, 4]
    assert seqs(g.set_budget("a", BIG)) == [5]
    assert g.set_budget("nobody", 5) == [] and g.budget("nobody") == 0


def test_a_busy_member_leaves_the_next_message_to_a_free_one() -> None:
    g = groups()
    join(g, "a", budget=1)
    join(g, "b")
    out = publish(g, 4)
    assert seqs(out, "a") == [1] and seqs(out, "b") == [2, 3, 4]


def test_a_group_that_falls_behind_the_log_loses_what_fell_out_and_says_so() -> None:
    g = groups(max_log_bytes=3 * (len(payload(1)) + ENTRY_OVERHEAD))
    join(g, "a", budget=1)
    publish(g, 6)  # a took 1; 2..3 fell out before it had room
    out = g.set_budget("a", BIG)
    assert seqs(out) == [4, 5, 6]
    assert g.stats()["lost"] == 2
    assert info(g)["max_lost"] == 3


def test_max_streams_and_max_groups() -> None:
    g = Groups(EPOCH, max_streams=1, max_groups=2)
    g.open_stream(S, pinned=True)
    with pytest.raises(LimitError, match="at most 1 streams"):
        g.open_stream("other")
    with pytest.raises(LimitError, match="at most 1 streams"):
        g.join("x", "other", "g", client="demo", budget=BIG, now=0.0)
    join(g, "a", group="g1")
    join(g, "b", group="g2")
    with pytest.raises(LimitError, match="2 groups with live members"):
        join(g, "c", group="g3")
    g.leave("a", now=1.0)
    join(g, "c", group="g3", now=2.0)  # g1 was idle: evicted
    assert g.group_info(S, "g1") is None and g.stats()["groups_forgotten"] == 1


def test_idle_groups_are_forgotten_after_the_ttl_or_when_their_backlog_falls_out() -> None:
    g = groups(group_ttl=60.0, max_log_bytes=3 * (len(payload(1)) + ENTRY_OVERHEAD))
    join(g, "a", group="g1")
    join(g, "b", group="g2")
    g.leave("a", now=0.0, clean=True)
    g.tick(59.0)
    assert g.group_info(S, "g1") is not None
    g.tick(60.0)
    assert g.group_info(S, "g1") is None
    g.leave("b", now=61.0, clean=True)
    publish(g, 5)
    g.tick(62.0)
    assert g.group_info(S, "g2") is None
    assert [n.event for n in g.take_notices()] == ["group_forgotten", "group_forgotten"]


def test_a_solo_group_goes_with_its_member_and_a_subscribed_log_with_its_last_group() -> None:
    g = Groups(EPOCH)
    g.join("a", "undefined", "fanout:1", client="demo", budget=BIG, now=0.0, solo=True)
    assert "undefined" in g.logs and not g.logs["undefined"].pinned
    g.leave("a", now=1.0)
    assert g.stats()["groups"] == 0 and "undefined" not in g.logs
    assert g.stats()["groups_forgotten"] == 0  # a fan-out subscription's group is its own


def test_joining_twice_is_refused_and_leaving_twice_is_harmless() -> None:
    g = groups()
    join(g, "a")
    with pytest.raises(ValueError, match="joined already"):
        join(g, "a")
    assert g.leave("a", now=0.0) == [] and g.leave("a", now=0.0) == []


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_groups must be an int >= 1"):
        Groups(EPOCH, max_groups=0)
    with pytest.raises(ValueError, match="rejoin_grace must be a number of seconds > 0"):
        Groups(EPOCH, rejoin_grace=float("nan"))


# --------------------------------------------------------------------------- takeover


def test_a_join_from_the_same_client_takes_over_the_live_member_that_had_its_after_seq() -> None:
    g = groups()
    join(g, "a", group="fan")
    publish(g, 5)  # all five went to a; its client got 1 to 3 before its connection went quiet
    start, out = join(g, "a2", group="fan", after=3, now=1.0)
    assert start == 3 and out == [Dispatch("a2", n, payload(n)) for n in (4, 5)]
    assert g.take_superseded() == ["a"] and g.take_superseded() == []
    assert g.member_info("a") is None and info(g, "fan")["orphans"] == 0
    assert (g.stats()["taken_over"], g.stats()["inherited"]) == (1, 1)
    assert g.leave("a", now=5.0) == []  # the old connection's end, later: nothing left of it
    assert seqs(publish(g, 1)) == [6] and info(g, "fan")["orphans"] == 0


def test_a_join_takes_over_a_member_by_its_joined_after_when_its_client_got_nothing() -> None:
    g = groups()
    publish(g, 5)
    assert join(g, "a", group="fan")[0] == 5
    publish(g, 2)  # 6 and 7 went to a and never reached its client
    start, out = join(g, "a2", group="fan", after=5, now=1.0)
    assert start == 5 and seqs(out) == [6, 7] and g.take_superseded() == ["a"]


def test_a_takeover_in_a_competing_group_leaves_the_other_members_alone() -> None:
    g = groups()
    join(g, "a", client="x")
    join(g, "b", client="y")
    publish(g, 6)  # a: 1 3 5, b: 2 4 6; a's client got 1 and 3
    start, out = join(g, "a2", after=3, client="x", now=1.0)
    assert start == 3 and out == [Dispatch("a2", 5, payload(5))]
    assert g.take_superseded() == ["a"] and g.member_info("b") is not None
    assert sorted(seqs(publish(g, 2))) == [7, 8]


@pytest.mark.parametrize(
    ("why", "client", "after"),
    [
        ("another client", "y", 3),
        ("a seq it never had", "x", 4),
        ("another epoch", "x", None),
    ],
)
def test_a_join_that_matches_no_live_member_changes_nothing(
    why: str, client: str, after: int | None
) -> None:
    g = groups()
    join(g, "a", client="x")
    join(g, "b", client="y")
    publish(g, 4)  # a: 1 3, b: 2 4
    epoch = "old" if after is None else EPOCH
    start, out = join(g, "c", after=3 if after is None else after, client=client, epoch=epoch)
    assert g.take_superseded() == [] and g.stats()["taken_over"] == 0, why
    assert g.member_info("a") is not None and out == []
    assert start == (4 if after is None else after)  # rule 5 alone: the group had all after it


def test_a_seq_sent_flagged_redelivered_is_not_a_members_own() -> None:
    g = groups(rejoin_grace=1.0)
    join(g, "a")
    join(g, "b")
    publish(g, 2)  # a: 1, b: 2
    g.leave("a", now=0.0)
    assert g.tick(1.0) == [Dispatch("b", 1, payload(1), True)]
    start, _ = join(g, "a2", after=1, now=2.0)  # a's client, back late, with the seq it had
    assert start == 1 and g.take_superseded() == [] and g.member_info("b") is not None


def test_an_expired_orphans_joined_after_is_not_taken_for_a_live_members_own() -> None:
    g = groups(rejoin_grace=1.0)
    join(g, "b")
    publish(g, 1)  # b: 1
    join(g, "a")  # a joined after 1, b's seq
    g.leave("a", now=0.0)  # a got nothing
    g.tick(1.0)  # a's orphan expired (empty)
    start, _ = join(g, "a2", after=1, now=2.0)  # a's client, back late
    assert start == 1 and g.take_superseded() == [] and g.member_info("b") is not None


def test_an_orphan_of_that_client_consistent_with_the_join_leaves_the_choice_to_rule_5() -> None:
    g = groups()
    join(g, "a")
    publish(g, 2)  # a: 1 2
    g.leave("a", now=0.0)  # dropped, its client got 1 and 2
    start, out = join(g, "b", after=2, now=1.0)  # inherits a's orphan, nothing above 2
    assert start == 2 and out == []
    publish(g, 1)  # b: 3
    g.leave("b", now=2.0)  # b's client got nothing: its orphan holds 3, joined after 2
    start, out = join(g, "c", after=2, now=3.0)
    assert start == 2 and seqs(out) == [3] and g.stats()["taken_over"] == 0


def test_a_join_that_matches_several_live_members_takes_none_over() -> None:
    g = groups()
    join(g, "a")
    join(g, "b")
    start, _ = join(g, "c", after=0, now=1.0)  # a's or b's client: both joined after 0
    assert start == 0 and g.take_superseded() == [] and g.stats()["members"] == 3


def test_a_member_sent_nothing_yet_is_taken_over_and_a_claimant_never() -> None:
    g = groups()
    join(g, "a", client="x")
    start, out = join(g, "a2", after=0, client="x", now=1.0)
    assert (start, out) == (0, []) and g.take_superseded() == ["a"]
    join(g, "b", client="y")
    publish(g, 2)  # a2: 1, b: 2
    g.leave("a2", now=2.0)
    g.leave("b", now=2.0)  # neither client got anything: both orphans joined after 0
    join(g, "c", after=0, client="x", now=3.0)  # x's or y's: a claimant
    assert info(g)["claimants"] == 1
    join(g, "c2", after=0, client="x", now=4.0)  # c's own client, or another instance
    assert g.take_superseded() == [] and g.stats()["taken_over"] == 1


# --------------------------------------------------------------------------- a store


class Store:
    """The rows a store keeps of the groups (groups.py rule 9), written from the records as
    the server's SQL writes them: groups by gid, members by (gid, tag), and the tag of each
    seq dispatched by (stream, seq, gid)."""

    def __init__(self) -> None:
        self.groups: dict[int, tuple[int, str, str, int]] = {}
        self.members: dict[tuple[int, int], tuple[int, int, int, str]] = {}
        self.sent: dict[tuple[str, int, int], int] = {}

    def write(self, records: list[Record]) -> None:
        for kind, args in records:
            if kind == "group":
                gid = int(args[0])
                self.groups[gid] = (gid, str(args[1]), str(args[2]), int(args[3]))
            elif kind == "member":
                gid, tag = int(args[0]), int(args[1])
                self.members[(gid, tag)] = (gid, tag, int(args[2]), str(args[3]))
            elif kind == "sent":
                self.sent[(str(args[0]), int(args[1]), int(args[2]))] = int(args[3])
            elif kind == "gone":
                self.members.pop((int(args[0]), int(args[1])), None)
            elif kind == "retag":
                new, stream, low, high, gid, old = args
                span = range(int(low), int(high) + 1)
                for key, tag in self.sent.items():
                    if (key[0], key[2], tag) == (stream, gid, old) and key[1] in span:
                        self.sent[key] = int(new)
            else:
                assert kind == "forget", kind
                gid, low, high = int(args[0]), int(args[2]), int(args[3])
                self.drop(gid)
                self.sent = {
                    key: tag
                    for key, tag in self.sent.items()
                    if key[2] != gid or not low <= key[1] <= high
                }

    def drop(self, gid: int) -> None:
        self.groups.pop(gid, None)
        self.members = {key: row for key, row in self.members.items() if key[0] != gid}

    def restart(self, old: Groups, now: float) -> Groups:
        """A new Groups from the logs and these rows, as a server started on the store."""
        new = Groups(
            EPOCH,
            max_log_bytes=old.max_log_bytes,
            rejoin_grace=old.rejoin_grace,
            group_ttl=old.group_ttl,
            journal=True,
        )
        for name, log in old.logs.items():
            if log.pinned:
                kept = new.open_stream(name, pinned=True, start_after=log.first_seq - 1)
                for _, text in log.after(0):
                    kept.append(text)
        firsts = {name: log.first_seq for name, log in new.logs.items()}
        self.sent = {k: t for k, t in self.sent.items() if k[1] >= firsts.get(k[0], k[1] + 1)}
        rows = [(stream, seq, gid, tag) for (stream, seq, gid), tag in sorted(self.sent.items())]
        for gid in new.restore(self.groups.values(), self.members.values(), rows, now):
            self.drop(gid)
        return new


def journaled(**kwargs: Any) -> tuple[Groups, Store]:
    return groups(journal=True, **kwargs), Store()


def test_without_a_journal_there_are_no_records() -> None:
    g = groups()
    join(g, "a")
    publish(g, 2)
    g.leave("a", now=0.0)
    assert g.take_records() == []


def test_the_records_of_a_join_a_dispatch_an_inheritance_and_a_clean_leave() -> None:
    g, _ = journaled()
    join(g, "a", group="g1")
    [(_, (gid, *_)), (_, (_, tag, _, _))] = records = g.take_records()
    assert records == [
        Record("group", (gid, S, "g1", 0)),
        Record("member", (gid, tag, 0, "demo")),
    ]
    publish(g, 3)
    assert g.take_records() == [Record("sent", (S, n, gid, tag)) for n in (1, 2, 3)]
    g.leave("a", now=0.0)
    assert g.take_records() == []  # a drop writes nothing: the rows are its orphan
    join(g, "a2", group="g1", after=1, now=1.0)
    new = tag + 1
    assert g.take_records() == [
        Record("retag", (new, S, 2, 3, gid, tag)),
        Record("gone", (gid, tag)),
        Record("member", (gid, new, 1, "demo")),
        Record("sent", (S, 2, gid, new)),
        Record("sent", (S, 3, gid, new)),
    ]
    g.leave("a2", now=2.0, clean=True)
    assert g.take_records() == [Record("gone", (gid, new))]


def test_a_solo_group_writes_nothing_and_a_forgotten_group_is_dropped() -> None:
    g, store = journaled(group_ttl=10.0)
    join(g, "a", group="fanout:1", solo=True)
    publish(g, 1)
    g.leave("a", now=0.0)
    assert g.take_records() == []
    join(g, "b", group="g1")
    publish(g, 1)
    g.leave("b", now=0.0, clean=True)
    store.write(g.take_records())
    assert len(store.groups) == 1 and store.members == {} and len(store.sent) == 1
    g.tick(10.0)
    store.write(g.take_records())
    assert (store.groups, store.members, store.sent) == ({}, {}, {})


def test_a_group_restored_from_a_store_repeats_nothing_when_the_member_behind_comes_first() -> None:
    g, store = journaled()
    join(g, "a")
    join(g, "b")
    publish(g, 2)  # a: 1, b: 2: each client got its one
    store.write(g.take_records())
    g = store.restart(g, now=100.0)
    assert info(g)["cursor"] == 2 and info(g)["orphans"] == 2 and info(g)["members"] == 0
    assert join(g, "a2", after=1, now=101.0) == (1, [])
    assert join(g, "b2", after=2, now=101.0) == (2, [])
    assert sorted(seqs(publish(g, 2))) == [3, 4]
    assert (g.stats()["orphans"], g.stats()["inherited"], g.stats()["redelivered"]) == (0, 2, 0)


def test_a_group_restored_from_a_store_loses_nothing_when_the_member_ahead_comes_first() -> None:
    g, store = journaled()
    join(g, "a")
    join(g, "b")
    publish(g, 4)  # a: 1 3, b: 2 4; a's client never got 3
    store.write(g.take_records())
    g = store.restart(g, now=100.0)
    assert join(g, "b2", after=4, now=101.0) == (4, [])
    start, out = join(g, "a2", after=1, now=101.0)
    assert start == 1 and out == [Dispatch("a2", 3, payload(3))]
    assert g.stats()["orphans"] == 0


def test_a_fanout_member_restored_from_a_store_resumes_after_its_seq() -> None:
    g, store = journaled()
    join(g, "f", group="fan")
    publish(g, 5)  # its client got 1 to 3
    store.write(g.take_records())
    g = store.restart(g, now=100.0)
    start, out = join(g, "f2", group="fan", after=3, now=101.0)
    assert start == 3 and seqs(out) == [4, 5]
    store.write(g.take_records())
    assert seqs(publish(g, 1)) == [6]
    store.write(g.take_records())
    g = store.restart(g, now=200.0)  # again: f2 is the one to come back to
    start, out = join(g, "f3", group="fan", after=6, now=201.0)
    assert (start, out) == (6, []) and g.stats()["orphans"] == 0


def test_orphans_restored_from_a_store_go_to_live_members_after_the_grace_from_the_restart() -> (
    None
):
    g, store = journaled(rejoin_grace=10.0)
    join(g, "a")
    join(g, "b")
    publish(g, 4)  # a: 1 3, b: 2 4
    store.write(g.take_records())
    g = store.restart(g, now=100.0)
    assert join(g, "b2", after=4, now=105.0) == (4, [])  # a's client never comes back
    assert g.tick(109.9) == [] and g.next_deadline() == 110.0
    assert g.tick(110.0) == [Dispatch("b2", n, payload(n), True) for n in (1, 3)]
    store.write(g.take_records())
    [(_, b2, _, _)] = store.members.values()  # a's row went when its orphan expired
    assert {seq: tag for (_, seq, _), tag in store.sent.items() if seq in (1, 3)} == {1: b2, 3: b2}


def test_a_redelivery_waiting_at_a_restart_is_sent_after_it() -> None:
    g, store = journaled(rejoin_grace=1.0)
    join(g, "a")
    join(g, "b")
    publish(g, 4)  # a: 1 3, b: 2 4
    g.leave("a", now=0.0)
    g.set_budget("b", 0)
    assert g.tick(1.0) == []  # a's 1 and 3 wait to be redelivered: b has no room
    store.write(g.take_records())
    assert sorted(seq for (_, seq, _), tag in store.sent.items() if tag == REDELIVER_TAG) == [1, 3]
    g = store.restart(g, now=100.0)
    assert info(g)["redeliver"] == 2 and info(g)["orphans"] == 1  # b's
    start, out = join(g, "b2", after=4, now=100.0)
    assert start == 4 and out == [Dispatch("b2", n, payload(n), True) for n in (1, 3)]


def test_restoring_drops_the_groups_of_a_stream_without_a_log_and_keeps_ids_unique() -> None:
    g = Groups(EPOCH)
    g.open_stream(S, pinned=True)
    stale = g.restore(
        [(3, S, G, 0), (4, "gone", "g1", 0)],
        [(3, 9, 0, "demo"), (4, 5, 0, "demo")],
        [(S, 1, 7, 12)],  # a row of a group forgotten earlier: its ids are taken too
        now=0.0,
    )
    assert stale == [4] and info(g)["orphans"] == 1
    join(g, "a", group="g2")
    assert g.take_records() == []  # no journal
    j = Groups(EPOCH, journal=True)
    j.open_stream(S, pinned=True)
    j.restore([], [], [(S, 1, 7, 12)], now=0.0)
    j.join("a", S, "g2", client="demo", budget=BIG, now=0.0)
    assert j.take_records()[0] == Record("group", (13, S, "g2", 0))


# --------------------------------------------------------------------------- exactly once


@dataclass
class Client:
    """A consumer as the client's connection state sees its group: the last seq it holds
    (afterSeq on a resubscribe), what is on the wire to it (seq, redelivered), what it
    processed."""

    name: str
    client_id: str
    member: str | None = None
    memberships: int = 0
    last: int | None = None
    inflight: list[tuple[int, bool]] = field(default_factory=list)
    processed: list[int] = field(default_factory=list)

    def take(self, n: int | None = None) -> None:
        """Process the first ``n`` deliveries on the wire (None: all); the rest is lost."""
        todo = self.inflight if n is None else self.inflight[:n]
        for seq, again in todo:
            if self.last is not None and seq <= self.last:
                # The client drops such a delivery as a duplicate unless it is flagged.
                assert again, (self.name, seq, self.last)
            else:
                self.last = seq
            self.processed.append(seq)
        self.inflight = []


GRACE = 1e9
"""Every member comes back within the grace (the end lets what is left expire)."""


class Model:
    """Up to four clients of one group, driven by ops: ``publish``, ``join``, ``take``,
    ``drop`` (the connection ends, the server sees it), ``rejoin``, ``budget``,
    ``halfopen`` (the connection goes quiet: the client comes back on a new one while the
    groups still hold the old member, a *zombie* until the server times it out or its
    client takes it over), ``timeout`` (a zombie's connection ends) and ``restart`` (the
    server restarts on its store: every connection ends)."""

    def __init__(self, *, shared_ids: bool = True, journal: bool = False) -> None:
        self.g = groups(rejoin_grace=GRACE, journal=journal)
        self.store = Store() if journal else None
        self.shared_ids = shared_ids
        self.clients: list[Client] = []
        self.zombies: dict[str, Client] = {}
        self.now = 0.0
        self.untaken = 0  # half-open connections not taken over (rule 5 decided instead)
        self.wrong = 0  # members taken over by another client's join

    def route(self, out: list[Dispatch]) -> None:
        for d in out:
            if d.member in self.zombies:
                continue  # into a connection nobody reads
            assert not d.redelivered
            owner = next(c for c in self.clients if c.member == d.member)
            owner.inflight.append((d.seq, d.redelivered))

    def enter(self, client: Client) -> None:
        client.memberships += 1
        client.member = f"{client.name}#{client.memberships}"
        start, out = join(
            self.g, client.member, after=client.last, client=client.client_id, now=self.now
        )
        if client.last is not None:
            assert start == client.last  # nothing is lost: the log holds everything
        client.last = start if client.last is None else max(client.last, start)
        for key in self.g.take_superseded():
            assert isinstance(key, str)
            if self.zombies.pop(key, None) is client:
                event("a half-open connection taken over")
                continue
            self.wrong += 1  # the server closes that connection after what it queued
            other = next(c for c in self.clients if c.member == key)
            other.take()
            other.member = None
        self.route(out)

    def step(self, kind: str, which: int, kept: int, budget: int) -> None:
        self.now += 1.0
        live = [c for c in self.clients if c.member is not None]
        gone = [c for c in self.clients if c.member is None]
        if kind == "publish":
            self.route(publish(self.g, which + 1))
        elif kind == "join" and len(self.clients) < 4:
            n = len(self.clients)
            self.clients.append(Client(f"c{n}", "demo" if self.shared_ids else f"app{n}"))
            self.enter(self.clients[-1])
        elif kind == "take" and live:
            live[which % len(live)].take()
        elif kind in ("drop", "halfopen") and live:
            client = live[which % len(live)]
            client.take(kept)  # the rest was on the wire when the connection went
            assert client.member is not None
            if kind == "drop":
                self.route(self.g.leave(client.member, self.now))
                client.member = None
            else:
                old = client.member
                event("a half-open connection")
                self.zombies[old] = client
                self.enter(client)
                self.untaken += old in self.zombies
        elif kind == "timeout" and self.zombies:
            key = sorted(self.zombies)[which % len(self.zombies)]
            self.route(self.g.leave(key, self.now))
            del self.zombies[key]
        elif kind == "rejoin" and gone:
            self.enter(gone[which % len(gone)])
            if self.g.stats()["claimants"]:
                event("a member waited as a claimant")
        elif kind == "budget" and live:
            client = live[which % len(live)]
            assert client.member is not None
            self.route(self.g.set_budget(client.member, budget))
        elif kind == "restart" and self.store is not None:
            self.store.write(self.g.take_records())
            self.g = self.store.restart(self.g, self.now)
            for client in self.clients:
                client.inflight = []
                client.member = None
            self.zombies.clear()
            event("a restart")
        if self.store is not None:
            self.store.write(self.g.take_records())

    def finish(self) -> list[int]:
        """Every zombie times out, every client comes back and takes what is sent; what is
        left expires. Returns every seq processed, sorted."""
        for key in sorted(self.zombies):
            self.now += 1.0
            self.route(self.g.leave(key, self.now))
        self.zombies.clear()
        for client in self.clients:
            if client.member is None:
                self.now += 1.0
                self.enter(client)
        for client in self.clients:
            assert client.member is not None
            self.route(self.g.set_budget(client.member, BIG))
        for client in self.clients:
            client.take()
        self.now += 2 * GRACE
        out = self.g.tick(self.now)
        assert self.untaken or not out  # only a zombie not taken over leaves an orphan behind
        for d in out:
            owner = next(c for c in self.clients if c.member == d.member)
            owner.inflight.append((d.seq, d.redelivered))
        for client in self.clients:
            client.take()
        return sorted(seq for c in self.clients for seq in c.processed)

    def check(self) -> None:
        processed = self.finish()
        info = self.g.group_info(S, G)
        if info is None:  # no member ever: no group
            assert processed == []
            return
        origin = info["origin"]
        assert isinstance(origin, int)
        every = list(range(origin + 1, self.g.logs[S].last_seq + 1))
        stats = self.g.stats()
        if not self.untaken:  # else rule 5 guessed for some: at least once, as a rule
            assert processed == every and not stats["redelivered"]  # exactly once
        assert self.shared_ids or not self.wrong  # a client takes over only its own members
        event(f"orphans inherited: {min(stats['inherited'], 3)}+")
        assert (stats["lost"], stats["orphans"], stats["claimants"]) == (0, 0, 0)


KINDS = ("publish", "publish", "join", "join", "take", "drop", "drop", "rejoin", "rejoin", "budget")
FAULTS = ("halfopen", "halfopen", "halfopen", "timeout")


def ops(kinds: tuple[str, ...]) -> st.SearchStrategy[list[tuple[str, int, int, int]]]:
    return st.lists(
        st.tuples(
            st.sampled_from(kinds),
            st.integers(0, 3),  # which client (publish: how many messages, 1 to 4)
            st.integers(0, 4),  # drop, halfopen: how many of its inflight deliveries it got
            st.sampled_from([0, 1, 150, BIG]),  # budget
        ),
        min_size=5,
        max_size=80,
    )


@settings(max_examples=500)
@given(ops(KINDS))
def test_every_seq_reaches_the_group_exactly_once_when_every_member_comes_back(
    steps: list[tuple[str, int, int, int]],
) -> None:
    model = Model()
    for step in steps:
        model.step(*step)
    model.check()
    assert model.g.stats()["redelivered"] == 0


@settings(max_examples=300)
@given(ops((*KINDS, "restart")))
def test_restarts_on_a_store_keep_the_group_exactly_once(
    steps: list[tuple[str, int, int, int]],
) -> None:
    model = Model(journal=True)
    for step in steps:
        model.step(*step)
    model.check()
    assert model.g.stats()["redelivered"] == 0


@settings(max_examples=500)
@given(ops((*KINDS, *FAULTS, "restart")))
def test_half_open_connections_taken_over_keep_the_group_exactly_once(
    steps: list[tuple[str, int, int, int]],
) -> None:
    """Exactly once whenever every half-open connection was taken over (nearly always). Each
    client has its own id, as applications sharing a group do: instances of one client id
    can meet a join consistent with one instance's orphan while it came from another's live
    member, which rule 5 settles by its guess, as it did before takeovers."""
    model = Model(shared_ids=False, journal=True)
    for step in steps:
        model.step(*step)
    model.check()
    event(f"half-open connections not taken over: {min(model.untaken, 2)}+")
