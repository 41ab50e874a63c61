"""The supervised link's adapter, sans-I/O: the client codec's session order and the
routing of what the exchange sends."""

from __future__ import annotations

from actorwire.actors.link import Authenticated, AuthFailed, SessionLost
from actorwire.adapters.smarkets import eto, seto
from actorwire.adapters.smarkets.link import (
    ClientCodec,
    HeartbeatDue,
    ReplayDue,
    ReplayFailed,
    SmarketsAdapter,
)
from actorwire.adapters.smarkets.protocol import (
    Broken,
    Frame,
    Garbage,
    SmarketsCodec,
    gapfill,
    heartbeat,
    login_response,
    logout,
    wrap,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def framed(payload: seto.Payload) -> bytes:
    return SmarketsCodec().encode(payload, stamp=False)


def quotes(seq: int) -> seto.Payload:
    return wrap(seto.ContractQuotes(market_id=100, contract_id=101), seq)


def test_in_order_payloads_pass_and_the_login_response_resets_the_outgoing_seq() -> None:
    codec = ClientCodec()
    assert not codec.logged_in
    codec.receive_data(framed(login_response(1, "s", 2)) + framed(quotes(2)) + framed(quotes(3)))
    events = codec.events()
    assert [e.protobuf.eto_payload.seq for e in events] == [1, 2, 3]
    assert codec.logged_in and codec.outseq == 2


def test_a_heartbeat_is_answered_before_the_seq_check_and_a_gap_asks_for_a_replay() -> None:
    clock = Clock()
    codec = ClientCodec(retry_after=1.0, max_replay_attempts=2, clock=clock)
    codec.receive_data(framed(login_response(1, "s", 2)))
    codec.events()
    codec.receive_data(framed(quotes(3)) + framed(heartbeat(4)))  # seq 2 is missing
    events = codec.events()
    assert [type(e) for e in events] == [HeartbeatDue, ReplayDue]
    assert events[1] == ReplayDue(2)
    codec.receive_data(framed(quotes(5)))
    assert codec.events() == []  # asked once per gap ...
    clock.now = 1.5
    codec.receive_data(framed(quotes(6)))
    assert codec.events() == [ReplayDue(2)]  # ... and again after retry_after
    clock.now = 3.0
    codec.receive_data(framed(quotes(7)))
    assert codec.events() == [ReplayFailed(2, 2)]  # then the connection goes
    # The replay arrives: everything from 2 on, in order, each once.
    replayed = quotes(2)
    replayed.eto_payload.is_replay = True
    codec.receive_data(framed(replayed))
    events = codec.events()
    assert [e.protobuf.eto_payload.seq for e in events] == [2, 3, 4, 5, 6, 7]


def test_a_gapfill_fills_its_seq_without_a_payload() -> None:
    codec = ClientCodec()
    codec.receive_data(framed(login_response(1, "s", 2)) + framed(quotes(3)))
    codec.events()
    codec.receive_data(framed(gapfill(2)))
    events = codec.events()
    assert [e.protobuf.eto_payload.seq for e in events if isinstance(e, Frame)] == [3]


def test_the_route_sorts_logins_logouts_and_bad_input() -> None:
    adapter = SmarketsAdapter("127.0.0.1", 1, username="u", password="s3cret")
    assert "s3cret" not in repr(adapter)

    def frame(payload: seto.Payload) -> Frame:
        return Frame(payload.SerializeToString(), payload)

    routed = adapter.route(
        [
            frame(login_response(1, "s", 2)),
            frame(logout(2, eto.LOGOUT_UNAUTHORISED)),
            frame(logout(3, eto.LOGOUT_HEARTBEAT_TIMEOUT)),
            frame(logout(4, eto.LOGOUT_CONFIRMATION)),
            HeartbeatDue(),
            ReplayDue(7),
            Garbage("bad", b"x"),
            Broken("over the limit"),
        ]
    )
    assert [type(c) for c in routed.control] == [
        Authenticated,
        AuthFailed,
        SessionLost,
        HeartbeatDue,
        ReplayDue,
    ]
    assert len(routed.data) == 4  # every payload reaches the handlers
    assert [fatal for _, fatal in routed.errors] == [False, True]
    assert adapter.on_control(ReplayDue(7))[0].eto_payload.replay.seq == 7
    assert adapter.on_control(HeartbeatDue())[0].eto_payload.type == eto.PAYLOAD_HEARTBEAT
    (login,) = adapter.on_connected()
    assert login.login.username == "u" and not login.login.HasField("account_sequence_64")
    adapter.resume_from = 41
    (login,) = adapter.on_connected()
    assert login.login.account_sequence_64 == 41
