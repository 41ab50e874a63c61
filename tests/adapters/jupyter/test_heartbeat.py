"""The kernel heartbeat rule, sans-I/O: time is a number the test passes in."""

from __future__ import annotations

import pytest
from actorwire.adapters.jupyter.heartbeat import (
    HeartbeatAction,
    HeartbeatMode,
    KernelHeartbeat,
    check_heartbeat,
)
from hypothesis import given
from hypothesis import strategies as st

INTERVAL = 0.1
DEADLINE = 1.5
STEP = 0.01


def run(rule: KernelHeartbeat, start: float, end: float) -> tuple[float | None, int]:
    """Poll ``rule`` every STEP from ``start`` to ``end`` as its actor would (a ping sent
    when asked); the time it said DEAD (None if it never did) and the pings sent."""
    pings = 0
    for i in range(round((end - start) / STEP) + 1):
        now = start + i * STEP
        action = rule.poll(now)
        if action is HeartbeatAction.DEAD:
            return now, pings
        if action is HeartbeatAction.SEND_PING:
            rule.on_ping_sent(now)
            pings += 1
    return None, pings


def test_a_kernel_frozen_as_soon_as_it_answered_is_dead_after_the_deadline() -> None:
    # Armed at 0; the kernel answers a request at 3.0 and freezes; no heartbeat answer
    # ever came. The deadline counts from 3.0: alive until 4.5, dead at 4.5.
    rule = KernelHeartbeat(INTERVAL, DEADLINE, 0.0, HeartbeatMode.STARTUP)
    assert run(rule, 0.0, 3.0)[0] is None
    rule.on_answered(3.0)
    assert rule.answered
    dead_at, _ = run(rule, 3.0, 60.0)
    assert dead_at == pytest.approx(3.0 + DEADLINE)


def test_a_kernel_that_answered_at_once_is_dead_after_the_deadline() -> None:
    rule = KernelHeartbeat(INTERVAL, DEADLINE, 10.0, HeartbeatMode.STARTUP)
    rule.on_answered(10.0)
    dead_at, _ = run(rule, 10.0, 70.0)
    assert dead_at == pytest.approx(10.0 + DEADLINE)


def test_the_deadline_counts_from_the_last_heartbeat_answer() -> None:
    rule = KernelHeartbeat(INTERVAL, DEADLINE, 0.0, HeartbeatMode.STARTUP)
    assert rule.on_pong(0.5) is True  # the first answer is reported
    assert rule.answered
    assert rule.on_pong(1.0) is False
    rule.on_answered(1.2)  # already holding the deadline: changes nothing
    dead_at, _ = run(rule, 1.0, 60.0)
    assert dead_at == pytest.approx(1.0 + DEADLINE)


def test_a_kernel_that_never_answered_is_never_declared_dead_and_is_pinged() -> None:
    # Still starting: the client's startup_timeout decides, not the heartbeat.
    rule = KernelHeartbeat(INTERVAL, DEADLINE, 0.0, HeartbeatMode.STARTUP)
    dead_at, pings = run(rule, 0.0, 30.0)
    assert dead_at is None and not rule.answered
    assert pings >= 30.0 / (INTERVAL + STEP)  # one per interval, to the polling step
    assert rule.next_check(30.0) <= INTERVAL


def test_recover_mode_pings_for_ever_and_reports_the_first_answer() -> None:
    rule = KernelHeartbeat(INTERVAL, DEADLINE, 0.0, HeartbeatMode.RECOVER)
    rule.on_answered(1.0)  # a stray reply is no heartbeat: it proves nothing here
    assert not rule.answered
    assert run(rule, 0.0, 20.0)[0] is None
    assert rule.on_pong(20.0) is True
    assert rule.on_pong(20.5) is False
    assert run(rule, 20.5, 40.0)[0] is None  # never declared dead in this mode


def test_numbers_are_checked_naming_the_bad_value() -> None:
    with pytest.raises(ValueError, match="deadline must be > interval"):
        check_heartbeat(1.0, 0.5)
    with pytest.raises(ValueError, match="interval must be > 0"):
        KernelHeartbeat(0.0, 1.0, 0.0, HeartbeatMode.STARTUP)
    with pytest.raises(TypeError, match="deadline must be a real number"):
        check_heartbeat(1.0, "5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mode must be a HeartbeatMode"):
        KernelHeartbeat(0.1, 1.0, 0.0, "startup")  # type: ignore[arg-type]


EVENTS = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=3.0, allow_nan=False),
        st.sampled_from(["pong", "answered", "nothing"]),
    ),
    max_size=40,
)


@given(EVENTS, st.sampled_from(list(HeartbeatMode)))
def test_dead_exactly_when_the_deadline_passed_since_the_last_sign_of_life(
    events: list[tuple[float, str]], mode: HeartbeatMode
) -> None:
    # Reference model: in STARTUP mode the deadline holds from the first pong or answer,
    # and the kernel is dead once DEADLINE passed since the latest pong (or that first
    # answer); in RECOVER mode it is never dead.
    rule = KernelHeartbeat(INTERVAL, DEADLINE, 0.0, mode)
    now = 0.0
    holding = False
    last_life = 0.0
    for dt, kind in events:
        now += dt
        if not holding or now - last_life < DEADLINE:
            # Before the deadline passes: what the rule is told moves the model too.
            if kind == "pong":
                rule.on_pong(now)
                last_life = max(last_life, now)
                holding = holding or mode is HeartbeatMode.STARTUP
            elif kind == "answered" and mode is HeartbeatMode.STARTUP and not holding:
                rule.on_answered(now)
                last_life = max(last_life, now)
                holding = True
        action = rule.poll(now)
        expect_dead = holding and now - last_life >= DEADLINE
        assert (action is HeartbeatAction.DEAD) == expect_dead, (now, last_life, holding)
        if expect_dead:
            return
        if action is HeartbeatAction.SEND_PING:
            rule.on_ping_sent(now)
