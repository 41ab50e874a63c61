"""LinkMachine: every transition driven with events and a fake time, no I/O."""

from __future__ import annotations

import random
from typing import Any

import pytest
from actorwire.actors.backoff import Backoff, BackoffPolicy
from actorwire.actors.link.machine import (
    ArmHeartbeat,
    CloseConnection,
    CloseExpected,
    CloseRequested,
    Dial,
    DisarmHeartbeat,
    LinkMachine,
    LinkState,
    LoginAccepted,
    LoginRefused,
    LoginTimedOut,
    Lost,
    Opened,
    Phase,
    RecoveryChanged,
    RedialDue,
    Report,
    Restarted,
    ResumeSubscriptions,
    SendFrames,
    Started,
    Stopped,
    SupervisorGaveUp,
    SuspendSubscriptions,
    Timer,
)
from hypothesis import given, settings
from hypothesis import strategies as st

HELLO = ("login",)


def machine(max_attempts: int | None = None, login_timeout: float = 3.0) -> LinkMachine:
    backoff = Backoff(min=0.1, max=1.0, factor=2.0, jitter=0.0)
    return LinkMachine(
        BackoffPolicy(backoff, max_attempts=max_attempts, rng=random.Random(0)),
        login_timeout=login_timeout,
    )


def reports(actions: list[Any]) -> list[tuple[LinkState, str]]:
    return [(a.state, a.reason) for a in actions if isinstance(a, Report)]


def timers(actions: list[Any]) -> list[Timer]:
    return [a for a in actions if isinstance(a, Timer)]


def up(m: LinkMachine, now: float = 0.0) -> None:
    """Start, open and log in."""
    m.handle(Started(), now)
    m.handle(Opened(m.gen, "peer:1", HELLO), now)
    m.handle(LoginAccepted(m.gen), now)
    assert m.phase is Phase.UP


def test_start_dials_and_reports_connecting() -> None:
    m = machine()
    actions = m.handle(Started(), 0.0)
    assert Dial(1) in actions
    assert reports(actions) == [(LinkState.CONNECTING, "starting")]
    assert m.phase is Phase.DIALING


def test_open_sends_the_login_arms_the_heartbeat_and_times_the_login() -> None:
    m = machine(login_timeout=2.5)
    m.handle(Started(), 0.0)
    actions = m.handle(Opened(1, "peer:1", HELLO), 1.0)
    assert actions == [ArmHeartbeat(1), SendFrames(1, HELLO), Timer(2.5, LoginTimedOut(1))]
    assert m.phase is Phase.LOGGING_IN
    accepted = m.handle(LoginAccepted(1), 1.1)
    assert ResumeSubscriptions(1) in accepted
    assert reports(accepted) == [(LinkState.CONNECTED, "connected to peer:1")]


def test_a_protocol_without_login_is_up_once_open() -> None:
    m = machine()
    m.handle(Started(), 0.0)
    actions = m.handle(Opened(1, "peer:1"), 0.0)
    assert actions[0] == ArmHeartbeat(1) and ResumeSubscriptions(1) in actions
    assert m.phase is Phase.UP


def test_login_unanswered_times_out_and_redials() -> None:
    m = machine()
    m.handle(Started(), 0.0)
    m.handle(Opened(1, "peer:1", HELLO), 0.0)
    actions = m.handle(LoginTimedOut(1), 3.0)
    assert SuspendSubscriptions() in actions and CloseConnection(1) in actions
    (timer,) = timers(actions)
    assert timer.event == RedialDue(1)
    (report,) = reports(actions)
    assert report[0] is LinkState.RECONNECTING and "login was not answered" in report[1]
    redial = m.handle(RedialDue(1), 3.1)
    assert Dial(2) in redial and m.phase is Phase.DIALING
    assert m.handle(LoginTimedOut(1), 4.0) == []  # the old connection's timer: stale


def test_a_login_timer_after_the_login_was_accepted_changes_nothing() -> None:
    m = machine()
    up(m)
    assert m.handle(LoginTimedOut(m.gen), 5.0) == []
    assert m.phase is Phase.UP


def test_credentials_refused_fail_the_link_for_good() -> None:
    m = machine()
    m.handle(Started(), 0.0)
    m.handle(Opened(1, "peer:1", HELLO), 0.0)
    actions = m.handle(LoginRefused(1, "bad token"), 0.1)
    assert reports(actions) == [(LinkState.FAILED, "authentication failed: bad token")]
    assert CloseConnection(None) in actions
    assert m.phase is Phase.FAILED
    for event in (RedialDue(1), Lost(1, "x"), Started(), Restarted("x"), Stopped()):
        assert m.handle(event, 1.0) == []  # FAILED is final


def test_credentials_refused_while_dialing_fail_the_link_too() -> None:
    # A transport that logs in inside open() reports the refusal before it is open.
    m = machine()
    m.handle(Started(), 0.0)
    actions = m.handle(LoginRefused(1, "bad token"), 0.1)
    assert reports(actions) == [(LinkState.FAILED, "authentication failed: bad token")]
    assert m.phase is Phase.FAILED


def test_max_attempts_used_up_fails_with_the_last_error() -> None:
    m = machine(max_attempts=2)
    m.handle(Started(), 0.0)
    for gen in (1, 2):
        actions = m.handle(Lost(gen, f"refused {gen}"), 0.0)
        assert timers(actions), actions
        m.handle(RedialDue(gen), 0.0)
    actions = m.handle(Lost(3, "refused 3"), 0.0)
    (report,) = reports(actions)
    assert report[0] is LinkState.FAILED
    assert "gave up after 2 attempts" in report[1] and "refused 3" in report[1]


def test_a_successful_login_resets_the_attempts() -> None:
    m = machine(max_attempts=1)
    m.handle(Started(), 0.0)
    m.handle(Lost(1, "refused"), 0.0)
    m.handle(RedialDue(1), 0.0)
    m.handle(Opened(2, "peer:1", HELLO), 0.0)
    m.handle(LoginAccepted(2), 0.0)
    actions = m.handle(Lost(2, "dropped"), 1.0)
    assert reports(actions)[0][0] is LinkState.RECONNECTING  # one more attempt allowed


def test_heartbeat_deadline_during_recovery_redials_and_recovery_is_reported_again() -> None:
    m = machine()
    up(m)
    assert reports(m.handle(RecoveryChanged(True), 1.0)) == [
        (LinkState.RECOVERING, "sequence gap: recovering")
    ]
    actions = m.handle(Lost(m.gen, "no inbound traffic for 3s (heartbeat deadline)"), 2.0)
    assert reports(actions)[0][0] is LinkState.RECONNECTING
    m.handle(RedialDue(m.gen), 2.1)
    m.handle(Opened(m.gen, "peer:1", HELLO), 2.2)
    back = m.handle(LoginAccepted(m.gen), 2.3)
    assert reports(back) == [(LinkState.RECOVERING, "connected to peer:1")]  # gap still open
    assert reports(m.handle(RecoveryChanged(False), 3.0)) == [
        (LinkState.CONNECTED, "gap recovered")
    ]


def test_recovery_changes_while_down_are_remembered_not_reported() -> None:
    m = machine()
    up(m)
    m.handle(Lost(m.gen, "dropped"), 0.0)
    assert m.handle(RecoveryChanged(True), 0.1) == []
    assert m.recovering


def test_events_about_an_earlier_connection_are_ignored_and_counted() -> None:
    m = machine()
    up(m)
    m.handle(Lost(1, "dropped"), 0.0)
    m.handle(RedialDue(1), 0.1)
    assert m.gen == 2
    for stale in (Opened(1, "old", HELLO), LoginAccepted(1), Lost(1, "late"), RedialDue(1)):
        assert m.handle(stale, 0.2) == []
    assert m.stale_events == 4
    assert m.phase is Phase.DIALING


def test_a_restart_of_the_link_actors_moves_to_a_new_generation() -> None:
    m = machine()
    up(m)
    actions = m.handle(Restarted("the link's supervisor restarted its actors"), 1.0)
    assert CloseConnection(1) in actions and Dial(2) in actions
    assert reports(actions)[0][0] is LinkState.RECONNECTING
    assert m.handle(Opened(1, "old", HELLO), 1.1) == []  # held across the restart: stale


def test_close_from_any_live_phase_and_from_failed() -> None:
    for setup in ("idle", "dialing", "logging_in", "up", "waiting", "failed"):
        m = machine()
        if setup != "idle":
            m.handle(Started(), 0.0)
        if setup in ("logging_in", "up"):
            m.handle(Opened(1, "p", HELLO), 0.0)
        if setup == "up":
            m.handle(LoginAccepted(1), 0.0)
        if setup == "waiting":
            m.handle(Lost(1, "x"), 0.0)
        if setup == "failed":
            m.handle(SupervisorGaveUp("too many restarts"), 0.0)
        actions = m.handle(CloseRequested(), 1.0)
        assert reports(actions) == [(LinkState.CLOSED, "closed by the user")], setup
        assert DisarmHeartbeat() in actions and CloseConnection(None) in actions
        assert m.phase is Phase.CLOSED
        assert m.handle(RedialDue(m.gen), 2.0) == []


def test_a_loss_the_link_expects_closes_it_without_a_redial() -> None:
    m = machine()
    up(m)
    assert m.handle(CloseExpected(), 1.0) == []  # a logout is on its way
    assert m.phase is Phase.UP
    actions = m.handle(Lost(1, "peer closed the connection"), 1.1)
    assert reports(actions) == [(LinkState.CLOSED, "closed after a logout")]
    assert not any(isinstance(a, Timer) for a in actions)  # no redial
    assert m.phase is Phase.CLOSED and m.reconnects == 0
    # Without it, the same loss is a redial.
    other = machine()
    up(other)
    assert reports(other.handle(Lost(1, "x"), 1.1))[0][0] is LinkState.RECONNECTING


def test_stopped_closes_but_not_a_failed_link() -> None:
    m = machine()
    up(m)
    assert reports(m.handle(Stopped(), 1.0)) == [(LinkState.CLOSED, "link stopped")]
    failed = machine()
    failed.handle(Started(), 0.0)
    failed.handle(SupervisorGaveUp("boom"), 0.0)
    assert failed.handle(Stopped(), 1.0) == []
    assert failed.state is LinkState.FAILED


def test_supervisor_giving_up_fails_with_its_reason() -> None:
    m = machine()
    up(m)
    (report,) = reports(m.handle(SupervisorGaveUp("SupervisorEscalation('x')"), 1.0))
    assert report == (LinkState.FAILED, "link supervisor gave up: SupervisorEscalation('x')")


def test_login_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="login_timeout"):
        machine(login_timeout=0)


EVENTS = st.one_of(
    st.builds(Lost, gen=st.integers(0, 4), reason=st.just("lost")),
    st.builds(Opened, gen=st.integers(0, 4), peer=st.just("p"), hello=st.just(HELLO)),
    st.builds(LoginAccepted, gen=st.integers(0, 4)),
    st.builds(LoginTimedOut, gen=st.integers(0, 4)),
    st.builds(RedialDue, gen=st.integers(0, 4)),
    st.builds(RecoveryChanged, active=st.booleans()),
    st.builds(Restarted, reason=st.just("restart")),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(EVENTS, max_size=40))
def test_without_a_refusal_or_an_attempt_limit_a_link_never_fails(events: list[Any]) -> None:
    # Whatever order connections open, drop, time out and restart in, a link with no attempt
    # limit whose credentials are never refused keeps trying, and only reports changes.
    m = machine()
    m.handle(Started(), 0.0)
    previous = m.state
    for i, event in enumerate(events):
        for report in reports(m.handle(event, float(i))):
            assert report[0] is not previous
            previous = report[0]
        assert m.phase not in (Phase.FAILED, Phase.CLOSED)
        # Something is always under way: a dial, a login, an up link, or a timed redial.
        assert m.phase in (Phase.DIALING, Phase.LOGGING_IN, Phase.UP, Phase.WAITING)
