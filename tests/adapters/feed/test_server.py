"""Tests for the feed test-support code: the sans-I/O codec and the real FeedServer over TCP."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from actorwire.adapters.feed import (
    HOST,
    MAX_LINE,
    Auth,
    Data,
    Err,
    FeedCodec,
    FeedServer,
    Frame,
    Garbage,
    Ok,
    Ping,
    Pong,
    Replay,
    Sub,
)
from hypothesis import given
from hypothesis import strategies as st

from tests.support.feedclient import READ_TIMEOUT, Client

# --------------------------------------------------------------------------- helpers


def data(stream: str, *seqs: int) -> list[Frame]:
    """Default-payload DATA frames."""
    return [Data(stream, s, f"{stream}-{s}") for s in seqs]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    srv = FeedServer(streams=("A", "B"), token="secret")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def connect(server: FeedServer) -> Iterator[Callable[[], Client]]:
    clients: list[Client] = []

    def make() -> Client:
        client = Client(server.port)
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            client.close()


@pytest.fixture
def client(server: FeedServer, connect: Callable[[], Client]) -> Client:
    """An authenticated client whose connection the server has registered."""
    c = connect()
    c.auth()
    return c


def subscribe(c: Client, server: FeedServer, stream: str = "A", from_seq: int = 1) -> None:
    """SUB and wait until the server has registered it."""
    before = server.subscriptions
    c.send(FeedCodec.encode_sub(stream, from_seq))
    assert c.recv() == Ok(f"sub {stream} {from_seq}")
    server.wait_for(lambda: server.subscriptions > before)


# --------------------------------------------------------------------------- codec

streams = st.text(
    alphabet=st.characters(blacklist_characters=" \n", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=8,
)
texts = st.text(
    alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=30
)
uints = st.integers(min_value=0, max_value=10**19 - 1)
frames = st.one_of(
    st.builds(Auth, streams),
    st.builds(Sub, streams, uints),
    st.builds(Replay, streams, uints, uints),
    st.builds(Ping, uints),
    st.builds(Data, streams, uints, texts),
    st.builds(Pong, uints),
    st.builds(Ok, texts),
    st.builds(Err, texts),
)


def feed_in_pieces(codec: FeedCodec, blob: bytes, cuts: list[int]) -> list[Frame]:
    """Feed ``blob`` split at ``cuts`` and collect events, checking the memory bound."""
    out: list[Frame] = []
    bounds = [0, *sorted({c % (len(blob) + 1) for c in cuts}), len(blob)]
    for lo, hi in itertools.pairwise(bounds):
        codec.receive_data(blob[lo:hi])
        assert codec.buffered <= codec.max_line + 1
        out.extend(codec.events())
    return out


@given(st.lists(frames, max_size=12), st.lists(st.integers(min_value=0), max_size=20))
def test_codec_roundtrip_across_arbitrary_splits(items: list[Frame], cuts: list[int]) -> None:
    blob = b"".join(FeedCodec.encode(f) for f in items)
    assert feed_in_pieces(FeedCodec(), blob, cuts) == items


@given(
    st.lists(frames, max_size=6),
    st.integers(min_value=65, max_value=500),
    st.lists(frames, min_size=1, max_size=6),
    st.lists(st.integers(min_value=0), max_size=20),
)
def test_codec_oversize_line_is_garbage_and_decoding_resumes(
    before: list[Frame], size: int, after: list[Frame], cuts: list[int]
) -> None:
    max_line = 64
    small = [f for f in before + after if len(FeedCodec.encode(f)) <= max_line + 1]
    head = [f for f in before if f in small]
    tail = [f for f in after if f in small]
    blob = b"".join(FeedCodec.encode(f) for f in head) + b"x" * size + b"\n"
    blob += b"".join(FeedCodec.encode(f) for f in tail)
    events = feed_in_pieces(FeedCodec(max_line=max_line), blob, cuts)
    assert events[: len(head)] == head
    garbage = events[len(head)]
    assert isinstance(garbage, Garbage)
    assert garbage.reason == "line too long"
    assert garbage.raw == b"x" * (max_line + 1)
    assert events[len(head) + 1 :] == tail


def test_codec_line_of_exactly_max_is_accepted() -> None:
    codec = FeedCodec()
    prefix = "DATA A 1 "
    line = FeedCodec.encode_data("A", 1, "p" * (MAX_LINE - len(prefix)))
    assert len(line) == MAX_LINE + 1
    codec.receive_data(line)
    assert codec.events() == [Data("A", 1, "p" * (MAX_LINE - len(prefix)))]
    codec.receive_data(b"q" * (MAX_LINE + 1))
    (garbage,) = codec.events()
    assert isinstance(garbage, Garbage)
    assert codec.buffered == 0
    codec.receive_data(b"q" * 10_000_000 + b"\nPONG 3\n")
    assert codec.events() == [Pong(3)]


def test_codec_oversize_without_newline_reports_once() -> None:
    codec = FeedCodec(max_line=8)
    for _ in range(100):
        codec.receive_data(b"y" * 5)
        assert codec.buffered <= 9
    assert codec.events() == [Garbage(b"y" * 9, "line too long")]
    codec.receive_data(b"tail\nPING 1\n")
    assert codec.events() == [Ping(1)]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"HELLO world", "unknown verb"),
        (b"", "empty verb"),
        (b" PING 1", "empty verb"),
        (b"PING", "bad field count for PING"),
        (b"PING 1 2", "bad field count for PING"),
        (b"SUB A", "bad field count for SUB"),
        (b"SUB A 1 ", "bad field count for SUB"),
        (b"SUB  1", "empty field in SUB"),
        (b"REPLAY A 1", "bad field count for REPLAY"),
        (b"DATA A 1", "bad field count for DATA"),
        (b"AUTH a b", "bad field count for AUTH"),
        (b"SUB A x", "bad integer in SUB"),
        (b"SUB A -1", "bad integer in SUB"),
        (b"PING +1", "bad integer in PING"),
        (b"PING 1_0", "bad integer in PING"),
        (b"DATA A \xd9\xa3 p", "bad integer in DATA"),  # ARABIC-INDIC DIGIT THREE
        (b"PONG 99999999999999999999", "bad integer in PONG"),
        (b"\x00\xffnot a frame", "not utf-8"),
        (b"PING 1\r", "bad integer in PING"),
    ],
)
def test_codec_malformed_lines(raw: bytes, reason: str) -> None:
    codec = FeedCodec()
    codec.receive_data(raw + b"\nPING 5\n")
    assert codec.events() == [Garbage(raw, reason), Ping(5)]


def test_codec_role_filters_direction() -> None:
    server_side, client_side = FeedCodec(role="server"), FeedCodec(role="client")
    for codec in (server_side, client_side):
        codec.receive_data(b"PING 1\nPONG 1\n")
    assert server_side.events() == [Ping(1), Garbage(b"PONG 1", "unexpected PONG")]
    assert client_side.events() == [Garbage(b"PING 1", "unexpected PING"), Pong(1)]


def test_codec_payload_and_reason_keep_spaces() -> None:
    codec = FeedCodec()
    codec.receive_data(b"DATA A 7 hello  world \nERR not authenticated\nOK\nDATA A 8 \n")
    assert codec.events() == [
        Data("A", 7, "hello  world "),
        Err("not authenticated"),
        Ok(""),
        Data("A", 8, ""),
    ]


@pytest.mark.parametrize(
    "call",
    [
        lambda: FeedCodec.encode_auth("two words"),
        lambda: FeedCodec.encode_auth(""),
        lambda: FeedCodec.encode_sub("A\nB", 1),
        lambda: FeedCodec.encode_sub("A", -1),
        lambda: FeedCodec.encode_ping(True),
        lambda: FeedCodec.encode_data("A", 1, "line\nbreak"),
        lambda: FeedCodec.encode_data("A", 1, "p" * MAX_LINE),
        lambda: FeedCodec.encode_err("a\nb"),
    ],
)
def test_codec_encoders_reject_unframeable_values(call: Callable[[], bytes]) -> None:
    with pytest.raises(ValueError):
        call()


def test_codec_encoders_wire_format() -> None:
    enc = FeedCodec
    assert enc.encode_auth("tok") == b"AUTH tok\n"
    assert enc.encode_sub("A", 3) == b"SUB A 3\n"
    assert enc.encode_replay("A", 2, 5) == b"REPLAY A 2 5\n"
    assert enc.encode_ping(9) == b"PING 9\n"
    assert enc.encode_data("A", 1, "x y") == b"DATA A 1 x y\n"
    assert enc.encode_pong(9) == b"PONG 9\n"
    assert enc.encode_ok("auth") == b"OK auth\n"
    assert enc.encode_err("bad token") == b"ERR bad token\n"


# --------------------------------------------------------------------------- server: auth


def test_auth_ok_then_ping(client: Client) -> None:
    client.send(FeedCodec.encode_ping(1))
    assert client.recv() == Pong(1)


def test_bad_token_is_rejected_and_connection_closed(
    server: FeedServer, connect: Callable[[], Client]
) -> None:
    c = connect()
    server.wait_for(lambda: server.connections() == 1)
    c.send(FeedCodec.encode_auth("wrong"))
    assert c.recv() == Err("bad token")
    c.expect_closed()
    server.wait_for(lambda: server.connections() == 0)
    assert server.auth_failures == 1


def test_commands_before_auth_are_refused(
    server: FeedServer, connect: Callable[[], Client]
) -> None:
    c = connect()
    c.send(FeedCodec.encode_ping(1) + FeedCodec.encode_sub("A", 1))
    assert c.recv_n(2) == [Err("not authenticated"), Err("not authenticated")]
    c.auth()
    c.send(FeedCodec.encode_ping(2))
    assert c.recv() == Pong(2)
    assert server.auth_failures == 0
    assert server.subscriptions == 0


# --------------------------------------------------------------------------- server: data


def test_sub_replays_history_then_live(server: FeedServer, client: Client) -> None:
    assert server.publish("A", 3) == [1, 2, 3]
    server.publish("B", 2)
    subscribe(client, server, "A", 2)
    assert client.recv_n(2) == data("A", 2, 3)
    server.publish("B")  # not subscribed: never delivered
    assert server.publish("A", 2) == [4, 5]
    assert client.recv_n(2) == data("A", 4, 5)
    client.expect_silence()
    assert server.last_seq("A") == 5
    assert server.last_seq("B") == 3


def test_sub_from_beyond_history_gets_only_live(server: FeedServer, client: Client) -> None:
    server.publish("A", 2)
    subscribe(client, server, "A", 10)
    server.publish("A")
    assert client.recv() == Data("A", 3, "A-3")


def test_custom_payload_and_several_subscribers(
    server: FeedServer, connect: Callable[[], Client]
) -> None:
    clients = [connect() for _ in range(3)]
    for c in clients:
        c.auth()
        subscribe(c, server)
    server.publish("A", 2, payload_fn=lambda seq: f"value {seq * 10}")
    for c in clients:
        assert c.recv_n(2) == [Data("A", 1, "value 10"), Data("A", 2, "value 20")]
    assert server.connections() == 3
    assert server.subscriptions == 3


def test_replay_range(server: FeedServer, client: Client) -> None:
    server.publish("A", 10)
    client.send(FeedCodec.encode_replay("A", 3, 5))
    assert client.recv() == Ok("replay A 3 5")
    assert client.recv_n(3) == data("A", 3, 4, 5)
    client.send(FeedCodec.encode_replay("A", 9, 20))  # clipped to what is retained
    assert client.recv_n(3) == [Ok("replay A 9 20"), *data("A", 9, 10)]
    client.send(FeedCodec.encode_replay("A", 5, 4))
    assert client.recv() == Err("bad range 5 4")
    client.send(FeedCodec.encode_replay("Z", 1, 2))
    assert client.recv() == Err("unknown stream Z")
    client.send(FeedCodec.encode_sub("Z", 1))
    assert client.recv() == Err("unknown stream Z")
    assert server.replay_requests == [("A", 3, 5), ("A", 9, 20), ("A", 5, 4), ("Z", 1, 2)]


def test_ping_pong(client: Client) -> None:
    client.send(b"".join(FeedCodec.encode_ping(n) for n in (0, 1, 2**40)))
    assert client.recv_n(3) == [Pong(0), Pong(1), Pong(2**40)]


def test_publish_rejects_unknown_stream(server: FeedServer) -> None:
    with pytest.raises(KeyError):
        server.publish("Z")


# --------------------------------------------------------------------------- server: faults


def test_skip_next_creates_gap_filled_by_replay(server: FeedServer, client: Client) -> None:
    subscribe(client, server)
    server.publish("A")
    assert client.recv() == Data("A", 1, "A-1")
    server.skip_next(2)
    server.publish("A", 3)
    assert client.recv() == Data("A", 4, "A-4")  # 2 and 3 were skipped live
    client.send(FeedCodec.encode_replay("A", 2, 3))
    assert client.recv_n(3) == [Ok("replay A 2 3"), *data("A", 2, 3)]
    assert server.replay_requests == [("A", 2, 3)]
    server.publish("A")
    assert client.recv() == Data("A", 5, "A-5")


def test_repeat_next_sends_twice(server: FeedServer, client: Client) -> None:
    subscribe(client, server)
    server.repeat_next(1)
    server.publish("A", 2)
    assert client.recv_n(3) == data("A", 1, 1, 2)
    client.expect_silence()


def test_reorder_next_reverses_batch(server: FeedServer, client: Client) -> None:
    subscribe(client, server)
    server.reorder_next(3)
    server.publish("A", 2)
    client.expect_silence()  # held until all 3 exist
    server.publish("A", 2)
    assert client.recv_n(4) == data("A", 3, 2, 1, 4)


def test_clear_faults_flushes_held_frames(server: FeedServer, client: Client) -> None:
    subscribe(client, server)
    server.skip_next(5)
    server.clear_faults()
    server.reorder_next(3)
    server.publish("A", 2)
    server.clear_faults()
    assert client.recv_n(2) == data("A", 2, 1)
    server.publish("A")
    assert client.recv() == Data("A", 3, "A-3")


def test_go_silent_then_resume(server: FeedServer, client: Client) -> None:
    subscribe(client, server)
    client.send(FeedCodec.encode_ping(1))
    assert client.recv() == Pong(1)
    server.go_silent()
    received = server.frames_received
    client.send(FeedCodec.encode_ping(2))
    server.wait_for(lambda: server.frames_received == received + 1)  # PING 2 reached it
    server.publish("A", 2)
    client.expect_silence()
    assert server.connections() == 1
    server.resume()
    client.send(FeedCodec.encode_ping(3))
    assert client.recv() == Pong(3)  # nothing missed is sent: no PONG 2, no DATA 1..2
    server.publish("A")
    assert client.recv() == Data("A", 3, "A-3")
    client.send(FeedCodec.encode_replay("A", 1, 2))
    assert client.recv_n(3) == [Ok("replay A 1 2"), *data("A", 1, 2)]


def test_kill_then_restart_on_same_port_with_history(
    server: FeedServer, connect: Callable[[], Client]
) -> None:
    port = server.port
    c = connect()
    c.auth()
    subscribe(c, server)
    server.publish("A", 2)
    assert c.recv_n(2) == data("A", 1, 2)

    server.kill()
    assert server.connections() == 0
    assert not server.listening
    c.expect_closed()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, port), timeout=READ_TIMEOUT).close()
    server.publish("A")  # retained while down

    server.restart()
    assert server.port == port
    assert server.listening
    c2 = connect()
    c2.auth()
    subscribe(c2, server)
    assert c2.recv_n(3) == data("A", 1, 2, 3)
    server.publish("A")
    assert c2.recv() == Data("A", 4, "A-4")


def test_restart_while_up_drops_clients(server: FeedServer, client: Client) -> None:
    port = server.port
    server.restart()
    client.expect_closed()
    assert server.port == port
    c = Client(port)
    try:
        c.auth()
    finally:
        c.close()


def test_client_garbage_gets_err_and_server_keeps_serving(
    server: FeedServer, client: Client
) -> None:
    client.send(b"\x00\xffnot a frame\n")
    assert client.recv() == Err("not utf-8")
    client.send(b"BOGUS 1\n")
    assert client.recv() == Err("unknown verb")
    client.send(b"DATA A 1 x\n")
    assert client.recv() == Err("unexpected DATA")
    client.send(b"z" * (MAX_LINE + 100) + b"\n")
    assert client.recv() == Err("line too long")
    client.send(FeedCodec.encode_ping(4))
    assert client.recv() == Pong(4)
    assert server.garbage_received == 4
    assert server.connections() == 1


def test_garbage_before_auth_is_answered(server: FeedServer, connect: Callable[[], Client]) -> None:
    c = connect()
    c.send(b"SUB A\n")
    assert c.recv() == Err("bad field count for SUB")
    assert server.garbage_received == 1
    c.auth()


def test_send_garbage_reaches_client(server: FeedServer, client: Client) -> None:
    subscribe(client, server)
    server.send_garbage()
    server.publish("A")
    assert client.recv_n(2) == [Garbage(b"\x00\xffnot a frame", "not utf-8"), *data("A", 1)]
    server.send_garbage(b"half a li")
    server.send_garbage(b"ne\n")
    assert client.recv() == Garbage(b"half a line", "unknown verb")


def test_client_disconnect_is_tracked(server: FeedServer, connect: Callable[[], Client]) -> None:
    c1, c2 = connect(), connect()
    server.wait_for(lambda: server.connections() == 2)
    c1.close()
    server.wait_for(lambda: server.connections() == 1)
    c2.close()
    server.wait_for(lambda: server.connections() == 0)


# --------------------------------------------------------------------------- server: lifecycle


def _feed_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("FeedServer")]


def test_stop_is_idempotent_and_leaves_no_thread() -> None:
    before = len(_feed_threads())
    srv = FeedServer()
    srv.start()
    srv.start()  # no-op
    port = srv.port
    assert port != 0
    running = len(_feed_threads())
    assert running > before  # its actor system: I/O loop, dispatcher, timers
    srv.start()
    assert len(_feed_threads()) == running
    c = Client(port)
    try:
        c.auth()
        srv.stop()
        c.expect_closed()
    finally:
        c.close()
    srv.stop()
    assert len(_feed_threads()) == before
    assert not srv.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, port), timeout=READ_TIMEOUT).close()


def test_context_manager_and_start_after_stop_keeps_port_and_history() -> None:
    with FeedServer(streams=("X",), token="t0k") as srv:
        srv.publish("X", 2)
        port = srv.port
    assert not srv.running
    srv.publish("X")  # works while stopped: history only
    with srv:
        assert srv.port == port
        c = Client(port)
        try:
            c.auth("t0k")
            c.send(FeedCodec.encode_sub("X", 1))
            assert c.recv_n(4) == [Ok("sub X 1"), *data("X", 1, 2, 3)]
        finally:
            c.close()
    assert not _feed_threads()


def test_wait_for_times_out(server: FeedServer) -> None:
    with pytest.raises(TimeoutError):
        server.wait_for(lambda: server.connections() == 5, timeout=0.1)
    assert server.wait_for(lambda: server.port) == server.port


def test_wait_for_wakes_on_state_change(server: FeedServer) -> None:
    publisher = threading.Thread(target=lambda: server.publish("A", 3))
    publisher.start()
    try:
        server.wait_for(lambda: server.last_seq("A") == 3, timeout=READ_TIMEOUT)
    finally:
        publisher.join()
