"""HeartbeatPolicy: quiet links ping once per interval, busy ones never; silence means death."""

from __future__ import annotations

import pytest
from actorwire.actors.link.heartbeat import HeartbeatAction, HeartbeatPolicy
from hypothesis import given
from hypothesis import strategies as st

NONE = HeartbeatAction.NONE
PING = HeartbeatAction.SEND_PING
DEAD = HeartbeatAction.DEAD


def drive(
    policy: HeartbeatPolicy, until: float, step: float, traffic_every: float | None = None
) -> list[tuple[float, HeartbeatAction]]:
    """Poll every ``step`` seconds up to ``until``; send pings when asked; report non-NONE."""
    events: list[tuple[float, HeartbeatAction]] = []
    ticks = round(until / step)
    traffic_ticks = None if traffic_every is None else round(traffic_every / step)
    for tick in range(1, ticks + 1):
        now = tick * step
        if traffic_ticks is not None and tick % traffic_ticks == 0:
            policy.on_traffic(now)
        action = policy.poll(now)
        if action is PING:
            policy.on_ping_sent(now)
        if action is not NONE:
            events.append((now, action))
    return events


class TestPings:
    def test_quiet_link_pings_once_per_interval(self) -> None:
        p = HeartbeatPolicy(interval=1.0, deadline=3.5, now=0.0)
        events = drive(p, until=3.25, step=0.125)
        assert events == [(1.0, PING), (2.0, PING), (3.0, PING)]

    def test_ping_repeats_until_marked_sent(self) -> None:
        p = HeartbeatPolicy(interval=1.0, deadline=5.0, now=0.0)
        assert p.poll(1.0) is PING
        assert p.poll(1.25) is PING
        p.on_ping_sent(1.25)
        assert p.poll(1.5) is NONE
        assert p.poll(2.25) is PING

    def test_busy_link_sends_no_ping(self) -> None:
        p = HeartbeatPolicy(interval=1.0, deadline=3.0, now=0.0)
        events = drive(p, until=100.0, step=0.125, traffic_every=0.5)
        assert events == []
        assert not p.is_dead

    def test_answered_pings_keep_link_alive_and_pace_next_ping(self) -> None:
        p = HeartbeatPolicy(interval=1.0, deadline=2.5, now=0.0)
        assert p.poll(1.0) is PING
        p.on_ping_sent(1.0)
        p.on_traffic(1.25)  # the pong
        assert p.poll(2.0) is NONE
        assert p.poll(2.25) is PING
        p.on_ping_sent(2.25)
        p.on_traffic(2.5)
        assert p.poll(3.5) is PING
        assert not p.is_dead

    def test_no_ping_before_interval_of_quiet(self) -> None:
        p = HeartbeatPolicy(interval=2.0, deadline=10.0, now=5.0)
        assert p.poll(6.999) is NONE
        assert p.poll(7.0) is PING


class TestDeath:
    def test_dead_after_deadline_without_traffic(self) -> None:
        p = HeartbeatPolicy(interval=1.0, deadline=3.0, now=10.0)
        assert p.poll(12.999) is not DEAD
        assert not p.is_dead
        assert p.poll(13.0) is DEAD
        assert p.is_dead

    def test_dead_is_sticky_until_reset(self) -> None:
        p = HeartbeatPolicy(interval=1.0, deadline=3.0, now=0.0)
        assert p.poll(3.0) is DEAD
        p.on_traffic(3.5)
        assert p.poll(3.5) is DEAD
        assert p.is_dead
        p.reset(4.0)
        assert not p.is_dead
        assert p.last_inbound == 4.0
        assert p.poll(4.5) is NONE
        assert p.poll(5.0) is PING
        assert p.poll(7.0) is DEAD

    def test_traffic_postpones_death(self) -> None:
        p = HeartbeatPolicy(interval=1.0, deadline=3.0, now=0.0)
        p.on_traffic(2.0)
        assert p.last_inbound == 2.0
        assert p.poll(3.0) is not DEAD
        assert p.poll(4.999) is not DEAD
        assert p.poll(5.0) is DEAD

    def test_sending_pings_does_not_postpone_death(self) -> None:
        p = HeartbeatPolicy(interval=1.0, deadline=3.0, now=0.0)
        events = drive(p, until=3.0, step=0.25)
        assert events == [(1.0, PING), (2.0, PING), (3.0, DEAD)]

    def test_late_traffic_timestamp_never_moves_liveness_back(self) -> None:
        p = HeartbeatPolicy(interval=1.0, deadline=3.0, now=0.0)
        p.on_traffic(2.0)
        p.on_traffic(1.0)
        assert p.last_inbound == 2.0


class TestNextCheck:
    def test_fresh_policy_checks_after_one_interval(self) -> None:
        p = HeartbeatPolicy(interval=1.0, deadline=3.0, now=0.0)
        assert p.next_check(0.0) == 1.0
        assert p.next_check(0.25) == 0.75

    def test_zero_when_ping_due(self) -> None:
        p = HeartbeatPolicy(interval=1.0, deadline=3.0, now=0.0)
        assert p.next_check(1.5) == 0.0

    def test_after_ping_sent_waits_for_next_ping_or_death(self) -> None:
        p = HeartbeatPolicy(interval=1.0, deadline=2.5, now=0.0)
        p.on_ping_sent(2.0)
        # the next ping would be due at 3.0 but death comes first at 2.5
        assert p.next_check(2.0) == 0.5

    def test_never_more_than_interval_even_after_traffic_in_the_future(self) -> None:
        p = HeartbeatPolicy(interval=1.0, deadline=3.0, now=0.0)
        p.on_traffic(10.0)
        assert p.next_check(0.0) == 1.0

    def test_dead_policy_does_not_invite_busy_loop(self) -> None:
        p = HeartbeatPolicy(interval=1.0, deadline=3.0, now=0.0)
        assert p.poll(4.0) is DEAD
        assert p.next_check(4.0) == 1.0

    @given(
        interval=st.floats(min_value=0.01, max_value=100.0),
        extra=st.floats(min_value=0.01, max_value=100.0),
        steps=st.lists(
            st.tuples(
                st.floats(min_value=0.0, max_value=50.0),
                st.sampled_from(["traffic", "ping", "poll", "none"]),
            ),
            max_size=30,
        ),
    )
    def test_bounds_and_no_action_is_missed(
        self, interval: float, extra: float, steps: list[tuple[float, str]]
    ) -> None:
        p = HeartbeatPolicy(interval=interval, deadline=interval + extra, now=0.0)
        now = 0.0
        for dt, event in steps:
            now += dt
            if event == "traffic":
                p.on_traffic(now)
            elif event == "ping":
                p.on_ping_sent(now)
            elif event == "poll":
                p.poll(now)
            wait = p.next_check(now)
            assert 0.0 <= wait <= interval
            if p.poll(now) is NONE and wait > 1e-6:
                # nothing can become due before the suggested wake-up time
                for fraction in (0.0, 0.5, 0.999):
                    assert p.poll(now + wait * fraction) is NONE
                # and if the wake-up is earlier than a full interval, something is due then
                if wait < interval:
                    assert p.poll(now + wait + 1e-9 * (1 + now)) is not NONE
                    break


class TestValidation:
    @pytest.mark.parametrize(
        ("interval", "deadline", "needle"),
        [
            (0.0, 1.0, "interval must be > 0, got 0.0"),
            (-1.0, 1.0, "interval must be > 0, got -1.0"),
            (1.0, 1.0, "deadline must be > interval (1.0), got 1.0"),
            (2.0, 1.0, "deadline must be > interval (2.0), got 1.0"),
            (float("nan"), 1.0, "interval must be finite, got nan"),
            (1.0, float("inf"), "deadline must be finite, got inf"),
        ],
    )
    def test_bad_values(self, interval: float, deadline: float, needle: str) -> None:
        with pytest.raises(ValueError) as exc_info:
            HeartbeatPolicy(interval=interval, deadline=deadline, now=0.0)
        assert needle in str(exc_info.value)

    @pytest.mark.parametrize("field", ["interval", "deadline", "now"])
    def test_non_numbers_raise_type_error(self, field: str) -> None:
        kwargs: dict[str, object] = {"interval": 1.0, "deadline": 2.0, "now": 0.0}
        kwargs[field] = "soon"
        with pytest.raises(TypeError, match=f"{field} must be a real number, got 'soon'"):
            HeartbeatPolicy(**kwargs)  # type: ignore[arg-type]

    def test_properties_and_slots(self) -> None:
        p = HeartbeatPolicy(interval=1, deadline=3, now=7)
        assert (p.interval, p.deadline, p.last_inbound, p.is_dead) == (1.0, 3.0, 7.0, False)
        assert not hasattr(p, "__dict__")


def test_always_ping_pings_every_interval_even_when_busy() -> None:
    policy = HeartbeatPolicy(interval=1.0, deadline=3.0, now=0.0, always_ping=True)
    pings = []
    t = 0.0
    while t < 5.0:
        policy.on_traffic(t)  # a busy link: traffic every 0.25 s
        if policy.poll(t) is HeartbeatAction.SEND_PING:
            policy.on_ping_sent(t)
            pings.append(t)
        assert 0.0 <= policy.next_check(t) <= 1.0
        t += 0.25
    assert pings == [1.0, 2.0, 3.0, 4.0]


def test_default_policy_sends_no_ping_on_a_busy_link() -> None:
    policy = HeartbeatPolicy(interval=1.0, deadline=3.0, now=0.0)
    t = 0.0
    while t < 5.0:
        policy.on_traffic(t)
        assert policy.poll(t) is HeartbeatAction.NONE
        t += 0.25
