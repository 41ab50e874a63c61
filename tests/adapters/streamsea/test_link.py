"""The stream-sea link's codec, sans-I/O: websocket frames in, routed items out."""

from __future__ import annotations

from typing import Any

from actorwire.actors.link import Authenticated, AuthFailed
from actorwire.adapters.streamsea.link import StreamSeaAdapter, _WsCodec
from actorwire.adapters.streamsea.protocol import Authenticated as AuthOk
from actorwire.adapters.streamsea.protocol import (
    Delivered,
    Delivery,
    Subscribed,
    encode,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN
from websockets.utils import accept_key

AUTH_OK = b'{"id":1,"action":"authenticate","success":true}'
SUB_OK = b'{"id":2,"action":"subscription","success":true,"streamName":"s","seq":0,"epoch":"e"}'


def frame(data: bytes, opcode: Opcode = Opcode.TEXT, fin: bool = True, mask: bool = False) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=mask)


def opened(adapter: StreamSeaAdapter) -> _WsCodec:
    """A codec whose websocket handshake is done (as ``open()`` does it on a socket)."""
    codec = _WsCodec(adapter)
    proto = codec.proto
    request = proto.connect()
    proto.send_request(request)
    accept = accept_key(request.headers["Sec-WebSocket-Key"])
    proto.receive_data(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
    )
    assert proto.state is OPEN and proto.handshake_exc is None
    proto.events_received()
    proto.data_to_send()
    return codec


def ready(max_size: int = 1 << 20) -> tuple[StreamSeaAdapter, _WsCodec]:
    """A codec on an open websocket, authenticated, with subscription "k" on stream "s"."""
    adapter = StreamSeaAdapter(
        "127.0.0.1", 1, client_id="demo", client_secret="secret", max_message_size=max_size
    )
    codec = opened(adapter)
    adapter.register("k", "s", None)
    adapter.state.subscribe("k", "s")
    adapter.state.connect()
    codec.receive_data(frame(AUTH_OK) + frame(SUB_OK))
    out = codec.events()
    assert [type(x) for x in out] == [AuthOk, Subscribed]
    codec.proto.data_to_send()  # the subscribe
    return adapter, codec


def delivery(seq: int, payload: Any = None) -> bytes:
    body = {"n": seq} if payload is None else payload
    return frame(encode(Delivery(2, body, "s", seq)).encode())


def test_deliveries_split_anywhere_come_out_once_in_order() -> None:
    adapter, codec = ready()
    data = b"".join(delivery(i) for i in range(1, 51))
    got: list[Any] = []
    for i in range(0, len(data), 7):  # every split of frames and headers
        codec.receive_data(data[i : i + 7])
        got.extend(codec.events())
    assert got == [Delivered("k", {"n": i}, i) for i in range(1, 51)]
    routed = adapter.route(got)
    assert [item for _, _, item in routed.data] == got


def test_lengths_of_16_and_64_bits_and_pings_between() -> None:
    _adapter, codec = ready(max_size=1 << 20)
    medium = {"x": "a" * 300}  # a 16-bit length
    large = {"x": "b" * 70_000}  # a 64-bit length
    codec.receive_data(
        delivery(1, medium) + frame(b"p1", Opcode.PING) + delivery(2, large) + delivery(3)
    )
    out = codec.events()
    kinds = [type(x).__name__ for x in out]
    assert kinds == ["Delivered", "Alive", "Delivered", "Delivered"]
    assert [x.payload for x in out if type(x) is Delivered] == [medium, large, {"n": 3}]
    # websockets answered the ping with a pong (masked, as a client's frames are).
    sent = b"".join(codec.proto.data_to_send())
    assert sent[:1] == b"\x8a"


def test_a_fragmented_text_goes_through_websockets_and_keeps_its_place() -> None:
    _adapter, codec = ready()
    text = encode(Delivery(2, {"n": 2}, "s", 2)).encode()
    codec.receive_data(
        delivery(1)
        + frame(text[:10], Opcode.TEXT, fin=False)
        + frame(text[10:], Opcode.CONT, fin=True)
        + delivery(3)
    )
    out = codec.events()
    assert [x.seq for x in out] == [1, 2, 3]


def test_a_masked_frame_or_bad_utf8_breaks_the_connection() -> None:
    for bad in (frame(b'{"id":2}', mask=True), frame(b"\xff\xfe")):
        adapter, codec = ready()
        codec.receive_data(delivery(1) + bad + delivery(2))
        out = codec.events()
        assert out[0] == Delivered("k", {"n": 1}, 1)
        routed = adapter.route(out)
        assert routed.errors and routed.errors[0][1] is True  # fatal: redial and resume
        codec.receive_data(delivery(3))
        assert codec.events() == []  # nothing after the break


def test_an_oversize_frame_is_refused_by_websockets() -> None:
    adapter, codec = ready(max_size=1000)
    codec.receive_data(delivery(1, {"x": "a" * 2000}))
    routed = adapter.route(codec.events())
    assert routed.errors and "protocol error" in routed.errors[0][0]


def test_a_binary_frame_is_counted_and_the_connection_goes_on() -> None:
    adapter, codec = ready()
    codec.receive_data(frame(b"\x00\x01", Opcode.BINARY) + delivery(1))
    routed = adapter.route(codec.events())
    assert routed.errors == [("a binary frame of 2 bytes", False)]
    assert [item.seq for _, _, item in routed.data] == [1]


def test_refused_credentials_fail_the_link() -> None:
    adapter = StreamSeaAdapter("127.0.0.1", 1, client_id="demo", client_secret="wrong")
    codec = opened(adapter)
    adapter.state.connect()
    codec.receive_data(frame(b'{"id":1,"action":"authenticate","success":false,"error":"no"}'))
    routed = adapter.route(codec.events())
    assert routed.control == [AuthFailed("Authentication unsuccessful: no")]
    assert "wrong" not in repr(adapter)


def test_authenticated_brings_the_link_up() -> None:
    adapter = StreamSeaAdapter("127.0.0.1", 1, client_id="demo", client_secret="x")
    codec = opened(adapter)
    adapter.state.connect()
    codec.receive_data(frame(AUTH_OK))
    assert adapter.route(codec.events()).control == [Authenticated()]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=30), st.data())
def test_any_split_of_any_frames_gives_the_same_items(sizes: list[int], data: Any) -> None:
    _adapter, codec = ready()
    stream = b""
    seq = 0
    for size in sizes:
        seq += 1
        stream += delivery(seq, {"pad": "x" * (size * 7)})
        if size % 5 == 0:
            stream += frame(b"hb", Opcode.PING)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    got: list[Any] = []
    last = 0
    for cut in [*cuts, len(stream)]:
        codec.receive_data(stream[last:cut])
        got.extend(x for x in codec.events() if type(x) is Delivered)
        last = cut
    assert [x.seq for x in got] == list(range(1, seq + 1))


def test_a_fragmented_binary_message_is_dropped_whole() -> None:
    adapter, codec = ready()
    codec.receive_data(
        frame(b"\x00", Opcode.BINARY, fin=False) + frame(b"\x01", Opcode.CONT) + delivery(1)
    )
    routed = adapter.route(codec.events())
    assert routed.errors == [("a binary message of 2 bytes", False)]
    assert [item.seq for _, _, item in routed.data] == [1]
