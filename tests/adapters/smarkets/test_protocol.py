"""The sans-I/O core of the Smarkets adapter: handler names, payloads built as the SDK builds
them (byte for byte), the stream codec with its garbage and oversize handling and its outgoing
seqs, and the inbound sequencer's rules."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from actorwire.actors.framing import FrameError as KitFrameError
from actorwire.adapters.smarkets import eto, frame_encode, seto
from actorwire.adapters.smarkets.protocol import (
    CALLBACKS,
    HELD_OVERHEAD,
    MAX_FRAME_SIZE,
    Broken,
    Frame,
    FrameError,
    Garbage,
    InboundSequencer,
    SmarketsCodec,
    eto_payload,
    gapfill,
    heartbeat,
    is_session_control,
    login,
    login_response,
    logout,
    payload_name,
    ping,
    pong,
    replay,
    throttle_exceeded,
    wrap,
)
from google.protobuf.message import EncodeError
from hypothesis import given, settings
from hypothesis import strategies as st

BODY_FIELDS = [
    f for f in seto.Payload.DESCRIPTOR.fields if f.message_type and f.name != "eto_payload"
]


def framed(payload: bytes) -> bytes:
    buf = bytearray()
    frame_encode(buf, payload)
    return bytes(buf)


def order_create(**fields: Any) -> seto.OrderCreate:
    values = {"market_id": 123, "contract_id": 456, "side": seto.SIDE_BUY, "quantity": 400000}
    values.update(price=2500, reference=7)
    values.update(fields)
    return seto.OrderCreate(**values)


# --------------------------------------------------------------------------- names


def test_callbacks_are_the_sdks_51_names() -> None:
    assert len(CALLBACKS) == 51 and len(set(CALLBACKS)) == 51
    assert sum(name.startswith("eto.") for name in CALLBACKS) == 10
    assert sum(name.startswith("seto.") for name in CALLBACKS) == 41
    for name in ("eto.pong", "eto.login_response", "seto.order_accepted", "seto.eto"):
        assert name in CALLBACKS
    assert "seto.order_execute_voided" in CALLBACKS
    assert "seto.order_executed_void" not in CALLBACKS
    # The SDK's order (StreamingAPIClient.CALLBACKS of smk-python-sdk 9.4.4): eto first, each
    # group sorted by constant name, so ORDER_CANCEL < ORDER_CANCELLED < ORDER_CANCEL_ALL.
    assert CALLBACKS[:4] == ("eto.gapfill", "eto.heartbeat", "eto.login", "eto.login_response")
    assert CALLBACKS[10:13] == ("seto.balance_changed", "seto.contract_quotes", "seto.eto")
    assert CALLBACKS[24:27] == (
        "seto.order_cancel",
        "seto.order_cancelled",
        "seto.order_cancel_all",
    )
    assert CALLBACKS[-1] == "seto.throttle_limits_changed"


def test_payload_name_is_the_dispatch_name_of_every_type() -> None:
    names = set()
    for value in eto.PayloadType.DESCRIPTOR.values:
        payload = eto_payload(value.number, 1)
        name = payload_name(payload)
        assert name == "eto." + value.name.removeprefix("PAYLOAD_").lower()
        names.add(name)
    for value in seto.PayloadType.DESCRIPTOR.values:
        if value.number == seto.PAYLOAD_ETO:
            continue
        name = payload_name(seto.Payload(type=value.number))
        assert name == "seto." + value.name.removeprefix("PAYLOAD_").lower()
        names.add(name)
    # ETO payloads dispatch as eto.<type>: "seto.eto" is a name nothing is dispatched under.
    assert names == set(CALLBACKS) - {"seto.eto"}
    unset = seto.Payload(type=seto.PAYLOAD_ETO)
    assert payload_name(unset) == "eto.none"
    assert payload_name(wrap(seto.MarketSubscribe(market_id=1))) == "seto.market_subscribe"


# --------------------------------------------------------------------------- building payloads


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


@pytest.mark.parametrize("field", BODY_FIELDS, ids=lambda f: f.name)
def test_wrap_puts_every_body_type_in_its_field(field: Any) -> None:
    cls = getattr(seto, field.message_type.name)
    message = cls()
    payload = wrap(message, seq=7)
    assert seto.PayloadType.Name(payload.type) == "PAYLOAD_" + field.name.upper()
    assert payload.type == field.number - 1  # the body of type N is field N + 1
    assert [f.name for f, _ in payload.ListFields()] == ["type", "eto_payload", field.name]
    assert payload.eto_payload.seq == 7
    assert not payload.eto_payload.HasField("type")  # left unset, as the SDK's send does
    assert payload_name(payload) == "seto." + field.name
    # The SDK's rule (CamelCase -> snake_case) names every field but one.
    if field.name == "order_execute_voided":
        assert cls is seto.OrderExecutedVoid and _snake(cls.__name__) != field.name
    else:
        assert _snake(cls.__name__) == field.name


def test_wrap_copies_the_message() -> None:
    message = order_create()
    payload = wrap(message)
    message.price = 1
    assert payload.order_create.price == 2500 and payload.order_create == order_create()
    assert payload.eto_payload.seq == 0


@pytest.mark.parametrize(
    ("message", "named"),
    [
        (eto.Payload(), "smarkets.eto.Payload"),
        (seto.Payload(), "smarkets.seto.Payload"),
        (seto.Quote(), "smarkets.seto.Quote"),
        ("OrderCreate", "str"),
    ],
)
def test_wrap_refuses_what_is_not_a_body(message: Any, named: str) -> None:
    with pytest.raises(TypeError, match=f"wrap: {named} is not a seto payload body"):
        wrap(message)


# Frames the real smk-python-sdk 9.4.4 wrote (protobuf 3.20.3), captured from its Session
# and StreamingAPIClient with the socket replaced by a buffer: connect() with username="user",
# password="pass" (or token="tok"; or account_sequence=1234567890123 to resume), then ping(),
# Session.logout(), the answer to a server HEARTBEAT, send(OrderCreate(market_id=123,
# contract_id=456, side=SIDE_BUY, quantity=400000, price=2500, reference=7)) and
# send(MarketSubscribe(market_id=789)), seqs 1 to 6 in that order.
SDK_LOGIN = "1608021204080110071a0c0a0475736572120470617373"
SDK_LOGIN_TOKEN = "0f08021204080110071a051a03746f6b"
SDK_LOGIN_RESUME = "1f08021204080110071a150a0475736572120470617373200028cb89ec8ff723"
SDK_PING_2 = "080801120408021002"
SDK_LOGOUT_3 = "0c08011208080310093a020801"
SDK_HEARTBEAT_4 = "080801120408041005"
SDK_ORDER_CREATE_5 = "18080312020805221020013080b51840c4135807607b68c803"
SDK_MARKET_SUBSCRIBE_6 = "0b080a120208065a03109506"


def test_payloads_are_byte_identical_to_the_sdks() -> None:
    assert SmarketsCodec().encode(login(0, username="user", password="pass")).hex() == SDK_LOGIN
    assert SmarketsCodec().encode(login(0, cookie="tok")).hex() == SDK_LOGIN_TOKEN
    assert SmarketsCodec().encode(login(1, cookie=b"tok"), stamp=False).hex() == SDK_LOGIN_TOKEN
    codec = SmarketsCodec()
    resume = login(0, username="user", password="pass", account_sequence=1234567890123)
    assert codec.encode(resume).hex() == SDK_LOGIN_RESUME
    assert codec.encode(ping(0)).hex() == SDK_PING_2
    assert codec.encode(logout(0)).hex() == SDK_LOGOUT_3
    assert codec.encode(heartbeat(0)).hex() == SDK_HEARTBEAT_4
    assert codec.encode(wrap(order_create())).hex() == SDK_ORDER_CREATE_5
    assert codec.encode(wrap(seto.MarketSubscribe(market_id=789))).hex() == SDK_MARKET_SUBSCRIBE_6
    assert codec.outseq == 7


def test_the_sdks_frames_decode_split_anywhere() -> None:
    wire = bytes.fromhex(
        SDK_LOGIN
        + SDK_PING_2
        + SDK_LOGOUT_3
        + SDK_HEARTBEAT_4
        + SDK_ORDER_CREATE_5
        + SDK_MARKET_SUBSCRIBE_6
    )
    for step in (1, 3, 7, len(wire)):
        codec = SmarketsCodec()
        frames: list[Any] = []
        for pos in range(0, len(wire), step):
            codec.receive_data(wire[pos : pos + step])
            frames.extend(codec.events())
        assert [(payload_name(f.protobuf), f.protobuf.eto_payload.seq) for f in frames] == [
            ("seto.login", 1),
            ("eto.ping", 2),
            ("eto.logout", 3),
            ("eto.heartbeat", 4),
            ("seto.order_create", 5),
            ("seto.market_subscribe", 6),
        ]
        assert frames[4].protobuf.order_create == order_create()


def test_the_login_carries_what_the_sdk_sends() -> None:
    payload = login(1, username="user", password="pass")
    assert payload.type == seto.PAYLOAD_LOGIN and payload.eto_payload.type == eto.PAYLOAD_LOGIN
    assert payload.login.username == "user" and payload.login.password == "pass"
    assert not payload.login.HasField("account_sequence_64")
    token = login(1, username="user", password="pass", cookie="tok")  # the token wins
    assert token.login.cookie == b"tok" and not token.login.HasField("username")
    resume = login(1, cookie="tok", account_sequence=2**40)
    assert resume.login.HasField("account_sequence") and resume.login.account_sequence == 0
    assert resume.login.account_sequence_64 == 2**40


def test_the_eto_helpers_build_their_types() -> None:
    cases = [
        (heartbeat(3), eto.PAYLOAD_HEARTBEAT, "eto.heartbeat"),
        (ping(3), eto.PAYLOAD_PING, "eto.ping"),
        (pong(3), eto.PAYLOAD_PONG, "eto.pong"),
        (gapfill(3), eto.PAYLOAD_GAPFILL, "eto.gapfill"),
        (throttle_exceeded(3), eto.PAYLOAD_THROTTLE_EXCEEDED, "eto.throttle_exceeded"),
        (replay(3, 10), eto.PAYLOAD_REPLAY, "eto.replay"),
        (logout(3, eto.LOGOUT_UNAUTHORISED), eto.PAYLOAD_LOGOUT, "eto.logout"),
        (login_response(3, "s-1", 2), eto.PAYLOAD_LOGIN_RESPONSE, "eto.login_response"),
    ]
    for payload, kind, name in cases:
        assert payload.type == seto.PAYLOAD_ETO and payload.eto_payload.type == kind
        assert payload.eto_payload.seq == 3 and payload_name(payload) == name
        assert payload.IsInitialized()
    assert replay(3, 10).eto_payload.replay.seq == 10
    assert logout(3).eto_payload.logout.reason == eto.LOGOUT_NONE
    assert logout(3, eto.LOGOUT_UNAUTHORISED).eto_payload.logout.reason == 7
    response = login_response(3, "s-1", 2).eto_payload.login_response
    assert response.session == "s-1" and response.reset == 2
    replayed = eto_payload(eto.PAYLOAD_HEARTBEAT, 9, is_replay=True)
    assert replayed.eto_payload.is_replay and replayed.eto_payload.seq == 9


def test_session_control_is_login_response_and_heartbeat() -> None:
    assert is_session_control(login_response(1, "s", 2))
    assert is_session_control(heartbeat(5))
    for payload in (ping(1), pong(1), gapfill(1), logout(1), login(1, cookie="t")):
        assert not is_session_control(payload)
    assert not is_session_control(wrap(seto.MarketSubscribe(market_id=1)))


def test_reprs_keep_secrets_out() -> None:
    data = login(1, username="user", password="hunter2").SerializeToString()
    codec = SmarketsCodec()
    codec.receive_data(framed(data) + framed(b"hunter2\xff\xff"))
    frame, garbage = codec.events()
    assert isinstance(frame, Frame) and isinstance(garbage, Garbage)
    assert frame.bytes == data and frame.protobuf.login.password == "hunter2"
    assert repr(frame) == f"Frame(seto.login seq=1, {len(data)} bytes)"
    assert "hunter2" not in repr(garbage) and "9 bytes" in repr(garbage)


def test_frame_is_the_sdks_namedtuple_shape() -> None:
    payload = ping(4)
    frame = Frame(payload.SerializeToString(), payload)
    assert Frame._fields == ("bytes", "protobuf")
    raw, parsed = frame
    assert frame.bytes is raw and frame.protobuf is parsed
    replayed = eto_payload(eto.PAYLOAD_PING, 4, is_replay=True)
    assert repr(Frame(b"", replayed)) == "Frame(eto.ping seq=4 replay, 0 bytes)"


# --------------------------------------------------------------------------- codec


def _payloads() -> st.SearchStrategy[seto.Payload]:
    seqs = st.integers(min_value=0, max_value=2**64 - 1)
    ids = st.integers(min_value=0, max_value=2**32 - 1)
    return st.one_of(
        st.builds(ping, seqs),
        st.builds(heartbeat, seqs),
        st.builds(replay, seqs, seqs),
        st.builds(login_response, seqs, st.text(max_size=20), seqs),
        st.builds(lambda s, u, p: login(s, username=u, password=p), seqs, st.text(), st.text()),
        st.builds(
            lambda s, m, q: wrap(order_create(market_id=m, quantity=q), s),
            seqs,
            ids,
            seqs,
        ),
        st.builds(
            lambda s, m: wrap(seto.MarketQuotes(market_id=m), s),
            seqs,
            ids,
        ),
        st.builds(
            lambda s, n: wrap(seto.OrderRejected(reason=1, label="x" * n), s),
            seqs,
            st.integers(0, 300),
        ),
    )


# Payloads that frame soundly but are no seto.Payload a peer may send.
GARBAGE = [
    (b"\xff\xff\xff", "does not parse"),
    (b"", "no (known) type"),  # every field absent
    (b"\x08\x63\x12\x02\x08\x05", "no (known) type"),  # type 99: unknown, seq 5
    (seto.Payload(type=seto.PAYLOAD_ORDER_CREATE).SerializePartialToString(), "no eto_payload.seq"),
    (b"\x08\x01\x12\x02\x10\x02", "no eto_payload.seq"),  # type ETO, eto_payload {type PING}
]


@settings(max_examples=150)
@given(
    st.lists(st.one_of(_payloads(), st.sampled_from(GARBAGE)), max_size=25),
    st.lists(st.integers(min_value=1, max_value=200), max_size=40),
)
def test_any_stream_split_anywhere_decodes_to_its_payloads(
    items: list[Any], cuts: list[int]
) -> None:
    sender = SmarketsCodec()
    wire = b""
    expected: list[Any] = []
    for item in items:
        if isinstance(item, tuple):
            raw, reason = item
            wire += framed(raw)
            expected.append(("garbage", reason, raw))
        else:
            wire += sender.encode(item, stamp=False)
            expected.append(("frame", item.SerializeToString(), item))
    receiver = SmarketsCodec()
    got: list[Any] = []
    pos = 0
    for cut in [*cuts, len(wire)]:
        receiver.receive_data(wire[pos : pos + cut])
        pos += cut
        got.extend(receiver.events())
    receiver.receive_data(wire[pos:])
    got.extend(receiver.events())
    assert len(got) == len(expected)
    for event, want in zip(got, expected, strict=True):
        if want[0] == "garbage":
            assert type(event) is Garbage and want[1] in event.reason and event.raw == want[2]
        else:
            assert type(event) is Frame and event.bytes == want[1] and event.protobuf == want[2]
    assert receiver.garbage == sum(w[0] == "garbage" for w in expected)
    assert receiver.buffered == 0 and sender.outseq == 1


def test_garbage_is_counted_and_the_stream_goes_on() -> None:
    codec = SmarketsCodec()
    wire = b"".join(framed(raw) for raw, _ in GARBAGE) + codec.encode(ping(0))
    codec.receive_data(wire)
    events = codec.events()
    assert [type(e) for e in events] == [Garbage] * len(GARBAGE) + [Frame]
    assert [e.reason for e in events[:-1]] == [
        "payload does not parse as seto.Payload",
        "payload has no (known) type",
        "payload has no (known) type",
        "payload has no eto_payload.seq",
        "payload has no eto_payload.seq",
    ]
    assert codec.garbage == len(GARBAGE)
    assert payload_name(events[-1].protobuf) == "eto.ping" and codec.events() == []


def test_an_oversize_length_prefix_raises_frame_error() -> None:
    assert SmarketsCodec().max_frame_size == MAX_FRAME_SIZE == 4 * 1024 * 1024
    assert FrameError is KitFrameError
    codec = SmarketsCodec(max_frame_size=100)
    good = SmarketsCodec().encode(ping(0))
    codec.receive_data(good + framed(b"x" * 100))  # exactly the limit: fine
    assert [type(e) for e in codec.events()] == [Frame, Garbage]
    # The frames before the bad prefix are handed over, then Broken; the next read raises.
    codec.receive_data(good + bytes([101, 0, 0, 0]))
    assert [type(e) for e in codec.events()] == [Frame, Broken]
    with pytest.raises(FrameError, match="101 bytes is over the limit of 100"):
        codec.receive_data(good)
    fresh = SmarketsCodec(max_frame_size=100)
    with pytest.raises(FrameError):
        fresh.receive_data(b"\x80\x80\x80\x80\x04")  # 2**30, well before the bytes arrive
    with pytest.raises(FrameError):
        SmarketsCodec(max_frame_size=100).receive_data(b"\x80" * 11)  # not a 64-bit length
    with pytest.raises(FrameError, match="over the limit"):
        SmarketsCodec(max_frame_size=20).encode(wrap(seto.OrderRejected(reason=1, label="x" * 20)))


def test_encode_stamps_the_next_outgoing_seq() -> None:
    codec = SmarketsCodec()
    assert codec.outseq == 1
    first = login(0, cookie="tok")
    codec.encode(first)
    assert first.eto_payload.seq == 1 and codec.outseq == 2  # stamped in place, as the SDK
    stamped = [ping(99), wrap(order_create()), heartbeat(0)]
    wire = b"".join(codec.encode(p) for p in stamped)
    reader = SmarketsCodec()
    reader.receive_data(wire)
    assert [f.protobuf.eto_payload.seq for f in reader.events()] == [2, 3, 4]
    assert codec.outseq == 5


def test_replays_keep_their_seq_and_do_not_advance_outseq() -> None:
    codec = SmarketsCodec()
    for _ in range(4):
        codec.encode(heartbeat(0))
    original = wrap(seto.OrderAccepted(seq=1, order_id=5), seq=2)
    original.eto_payload.is_replay = True
    fill = gapfill(3)
    wire = codec.encode(original, stamp=False) + codec.encode(fill, stamp=False)
    wire += codec.encode(pong(0))
    reader = SmarketsCodec()
    reader.receive_data(wire)
    got = [(f.protobuf.eto_payload.seq, payload_name(f.protobuf)) for f in reader.events()]
    assert got == [(2, "seto.order_accepted"), (3, "eto.gapfill"), (5, "eto.pong")]
    assert codec.outseq == 6
    with pytest.raises(ValueError, match=r"the eto.ping payload carries no eto_payload.seq"):
        codec.encode(seto.Payload(type=seto.PAYLOAD_ETO, eto_payload={"type": 2}), stamp=False)


def test_a_login_response_reset_sets_the_next_outgoing_seq() -> None:
    # As the SDK: LOGIN is 1, a login_response with reset=2 makes the next ones 2, 3, 4, ...
    codec = SmarketsCodec()
    codec.encode(login(0, username="user", password="pass"))
    codec.reset_outseq(2)
    sent = [ping(0), wrap(order_create()), wrap(seto.MarketSubscribe(market_id=1))]
    for payload in sent:
        codec.encode(payload)
    assert [p.eto_payload.seq for p in sent] == [2, 3, 4]
    codec.reset_outseq(100)
    assert codec.outseq == 100
    with pytest.raises(TypeError, match="n must be an int"):
        codec.reset_outseq(True)
    with pytest.raises(ValueError, match="n must be >= 0"):
        codec.reset_outseq(-1)


def test_a_payload_missing_a_required_field_is_not_sent() -> None:
    codec = SmarketsCodec()
    incomplete = wrap(seto.OrderCreate(market_id=1))  # no side, quantity, contract_id
    with pytest.raises(EncodeError):
        codec.encode(incomplete)
    assert codec.outseq == 1  # nothing went out, no seq used up
    assert codec.encode(ping(0)) == bytes.fromhex("080801120408011002")


# --------------------------------------------------------------------------- sequencing


def test_in_order_frames_are_delivered_at_once() -> None:
    seqr: InboundSequencer[str] = InboundSequencer()
    assert seqr.expected == 1
    assert [seqr.accept(n, f"m{n}", 0.0) for n in (1, 2, 3)] == ["deliver"] * 3
    assert seqr.released() == ["m1", "m2", "m3"] and seqr.released() == []
    assert seqr.expected == 4 and seqr.delivered == 3 and not seqr.gap_open
    assert seqr.replay_from(0.0) is None and seqr.retry_at is None


def test_duplicates_are_dropped() -> None:
    seqr: InboundSequencer[str] = InboundSequencer()
    seqr.accept(1, "a", 0.0)
    seqr.accept(2, "b", 0.0)
    assert seqr.accept(1, "a again", 0.0) == "duplicate"
    assert seqr.accept(0, "zero", 0.0) == "duplicate"
    assert seqr.accept(5, "e", 0.0) == "gap"
    assert seqr.accept(5, "e again", 0.0) == "duplicate"  # already held
    assert seqr.duplicates == 3 and seqr.held == 1
    assert seqr.released() == ["a", "b"]


def test_a_gap_holds_early_frames_and_releases_them_in_order() -> None:
    seqr: InboundSequencer[str] = InboundSequencer()
    seqr.accept(1, "1", 0.0)
    assert seqr.accept(4, "4", 0.0) == "gap"
    assert seqr.accept(3, "3", 0.0) == "gap"
    assert seqr.accept(6, "6", 0.0) == "gap"
    assert seqr.released() == ["1"] and seqr.gap_open and seqr.gaps == 1 and seqr.held == 3
    assert seqr.held_bytes == 3 * HELD_OVERHEAD
    assert seqr.accept(2, "2", 0.0) == "deliver"
    assert seqr.released() == ["2", "3", "4"]
    assert seqr.expected == 5 and seqr.gap_open and seqr.held == 1
    assert seqr.accept(5, "5", 0.0) == "deliver"
    assert seqr.released() == ["5", "6"]
    assert seqr.expected == 7 and not seqr.gap_open and seqr.held == 0 and seqr.held_bytes == 0
    assert seqr.delivered == 6


def test_a_gapfill_fills_exactly_its_seq() -> None:
    seqr: InboundSequencer[str] = InboundSequencer()
    seqr.accept(1, "1", 0.0)
    seqr.accept(5, "5", 0.0)
    assert seqr.gapfill(3, 0.0) == "gap"  # early: held as a filled hole
    assert seqr.gapfill(2, 0.0) == "deliver"  # fills 2 (and the held 3): 4 is still missing
    assert seqr.released() == ["1"] and seqr.expected == 4 and seqr.gap_open
    assert seqr.gapfill(4, 0.0) == "deliver"
    assert seqr.released() == ["5"] and seqr.expected == 6 and not seqr.gap_open
    assert seqr.gapfill(4, 0.0) == "duplicate"
    assert seqr.delivered == 2


def test_held_frames_are_bounded_in_bytes() -> None:
    bound = 2 * (100 + HELD_OVERHEAD)
    seqr: InboundSequencer[str] = InboundSequencer(max_held_bytes=bound)
    assert seqr.accept(3, "3", 0.0, size=100) == "gap"
    assert seqr.accept(4, "4", 0.0, size=100) == "gap"
    assert seqr.held_bytes == bound
    # Over the bound: not held, counted; the verdict is still "gap".
    assert seqr.accept(5, "5", 0.0, size=100) == "gap"
    assert seqr.accept(6, "6", 0.0, size=1) == "gap"
    assert seqr.held == 2 and seqr.overflowed == 2 and seqr.held_bytes == bound
    # The replay from `expected` resends everything from there: the dropped frames come back.
    assert seqr.replay_from(0.0) == 1
    for n in range(1, 7):
        seqr.accept(n, str(n), 0.1, size=100)
    assert seqr.released() == ["1", "2", "3", "4", "5", "6"]
    assert not seqr.gap_open and seqr.held_bytes == 0
    # The gap stays open while the highest seq seen is missing, held or not.
    edge: InboundSequencer[str] = InboundSequencer(max_held_bytes=HELD_OVERHEAD)
    edge.accept(1, "1", 0.0)
    edge.accept(3, "3", 0.0)
    edge.accept(4, "4", 0.0)  # dropped: the bound holds one frame
    assert edge.replay_from(0.0) == 2
    edge.accept(2, "2", 1.0)
    assert edge.released() == ["1", "2", "3"] and edge.expected == 4
    assert edge.gap_open and edge.replay_from(6.0) == 4
    # A GAPFILL held early costs the overhead too.
    small: InboundSequencer[str] = InboundSequencer(max_held_bytes=HELD_OVERHEAD - 1)
    assert small.gapfill(3, 0.0) == "gap" and small.held == 0 and small.overflowed == 1


def test_a_replay_is_asked_once_per_gap_and_again_after_retry_after() -> None:
    seqr: InboundSequencer[str] = InboundSequencer(retry_after=5.0)
    seqr.accept(1, "1", 0.0)
    assert seqr.replay_from(0.0) is None  # no gap
    seqr.accept(4, "4", 10.0)
    assert seqr.retry_at == -math.inf
    assert seqr.replay_from(10.0) == 2 and seqr.attempts == 1
    seqr.accept(6, "6", 11.0)  # another early frame of the same gap: no new request
    assert seqr.replay_from(11.0) is None and seqr.replay_from(14.9) is None
    assert seqr.retry_at == 15.0
    assert seqr.replay_from(15.0) == 2 and seqr.attempts == 2  # nothing came: ask again
    assert seqr.replay_from(16.0) is None and seqr.retry_at == 20.0
    # Progress (expected rises, the gap still open) pushes the retry back.
    seqr.accept(2, "2", 18.0)
    assert seqr.expected == 3 and seqr.gap_open and seqr.retry_at == 23.0
    assert seqr.replay_from(22.0) is None
    assert seqr.replay_from(23.0) == 3 and seqr.attempts == 3  # from the new `expected`
    # The gap closes: attempts start over, and a new gap asks at once.
    seqr.accept(3, "3", 24.0)
    seqr.accept(5, "5", 24.0)
    assert not seqr.gap_open and seqr.attempts == 0 and seqr.replay_from(24.0) is None
    assert seqr.released() == ["1", "2", "3", "4", "5", "6"]
    seqr.accept(9, "9", 25.0)
    assert seqr.gaps == 2 and seqr.replay_from(25.0) == 7 and seqr.attempts == 1


def test_reset_starts_a_new_session() -> None:
    seqr: InboundSequencer[str] = InboundSequencer()
    seqr.accept(1, "1", 0.0)
    seqr.accept(3, "3", 0.0)
    assert seqr.replay_from(0.0) == 2
    seqr.reset()
    assert seqr.expected == 1 and not seqr.gap_open and seqr.held == 0 and seqr.held_bytes == 0
    assert seqr.attempts == 0 and seqr.replay_from(1.0) is None
    assert seqr.released() == ["1"]  # handed out in order before the reset: kept
    assert seqr.accept(1, "new 1", 1.0) == "deliver" and seqr.released() == ["new 1"]
    seqr.reset(10)
    assert seqr.accept(10, "10", 2.0) == "deliver"


def test_bad_arguments_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match="expected must be an int"):
        InboundSequencer(expected=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_held_bytes must be >= 0"):
        InboundSequencer(max_held_bytes=-1)
    with pytest.raises(ValueError, match="retry_after must be a finite number"):
        InboundSequencer(retry_after=0)
    seqr: InboundSequencer[str] = InboundSequencer()
    seqr.accept(1, "1", 0.0)
    with pytest.raises(TypeError, match="seq must be an int"):
        seqr.accept("3", "3", 0.0)  # type: ignore[arg-type]
    seqr.accept(3, "3", 0.0)
    with pytest.raises(ValueError, match="now must be a finite number"):
        seqr.replay_from(math.nan)


def test_the_sdks_incoming_rules_with_session_control_first() -> None:
    # A heartbeat with a gap seq is still answered, a login_response applied (PEERS 1.3); then
    # both are sequenced like any payload.
    codec = SmarketsCodec()
    seqr: InboundSequencer[Frame] = InboundSequencer()
    server = SmarketsCodec()
    wire = server.encode(login_response(0, "s-1", 2)) + server.encode(heartbeat(5), stamp=False)
    codec.receive_data(wire)
    answered = []
    for frame in codec.events():
        assert type(frame) is Frame
        payload = frame.protobuf
        if is_session_control(payload):
            if payload.eto_payload.type == eto.PAYLOAD_LOGIN_RESPONSE:
                codec.reset_outseq(payload.eto_payload.login_response.reset)
            else:
                answered.append(codec.encode(heartbeat(0)))
        seqr.accept(payload.eto_payload.seq, frame, 0.0, len(frame.bytes))
    assert answered == [bytes.fromhex("080801120408021005")]  # heartbeat seq 2
    assert [payload_name(f.protobuf) for f in seqr.released()] == ["eto.login_response"]
    assert seqr.gap_open and seqr.replay_from(0.0) == 2


@settings(max_examples=200)
@given(
    st.integers(min_value=1, max_value=40),
    st.randoms(use_true_random=False),
    st.integers(min_value=0, max_value=12 * HELD_OVERHEAD),
)
def test_any_arrival_order_delivers_each_item_once_in_order(
    n: int, rnd: random.Random, max_held_bytes: int
) -> None:
    fills = {s for s in range(1, n + 1) if rnd.random() < 0.2}
    arrivals = [s for s in range(1, n + 1) for _ in range(rnd.choice((0, 1, 1, 2)))]
    rnd.shuffle(arrivals)
    seqr: InboundSequencer[int] = InboundSequencer(max_held_bytes=max_held_bytes)
    out: list[int] = []
    now = 0.0
    high = 0

    def take(seq: int) -> None:
        nonlocal high
        high = max(high, seq)
        if seq in fills:
            seqr.gapfill(seq, now)
        else:
            seqr.accept(seq, seq, now, size=rnd.randint(0, 50))
        assert seqr.held_bytes <= max_held_bytes
        assert seqr.gap_open == (high >= seqr.expected)  # rule 5
        out.extend(seqr.released())

    for seq in arrivals:
        take(seq)
        now += 1.0
    # Whatever went missing, a replay from where the sequencer asks brings it back.
    while seqr.gap_open or seqr.expected <= n:
        start = seqr.replay_from(now + 100.0) if seqr.gap_open else seqr.expected
        assert start is not None
        now += 100.0
        for seq in range(start, n + 1):
            take(seq)
    assert out == [s for s in range(1, n + 1) if s not in fills]
    assert seqr.held == 0 and seqr.held_bytes == 0 and seqr.expected == n + 1


def test_a_bad_prefix_after_good_frames_is_reported_after_them() -> None:
    codec = SmarketsCodec(max_frame_size=1000)
    good = SmarketsCodec().encode(ping(0))
    codec.receive_data(good + b"\xff\xff\xff\xff\x0f")  # then a length far over the limit
    events = codec.events()
    assert [type(e) for e in events] == [Frame, Broken]
    assert "over the limit" in events[1].reason
    with pytest.raises(FrameError):
        codec.receive_data(b"more")
