"""qipc (``?in=qipc&out=qipc``): the codec against q IPC bytes built by hand from the format
and against pykx as a raw peer, bad frames refused without reaching pykx unchecked, the
embedded gateway spoken to by a raw websockets client sending pykx-serialized messages, and
GatewayClient(protocol="qipc") end to end (typed columns, chunked snaps, errors)."""

from __future__ import annotations

import asyncio
import dataclasses
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

kx = pytest.importorskip(
    "pykx", reason="pykx is not installed (the kdb-qipc extra; make test installs it)"
)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from actorwire.adapters.kdb.client import GatewayClient  # noqa: E402
from actorwire.adapters.kdb.config import load_config  # noqa: E402
from actorwire.adapters.kdb.protocol import (  # noqa: E402
    Chunk,
    ErrorCode,
    ErrorReply,
    GatewayError,
    MessageTooBig,
    ProtocolError,
    SnappedReply,
    SnapRequest,
    SubscribeRequest,
    SubsnappedReply,
    UndecodableError,
    UnsubscribedReply,
    UnsubscribeRequest,
    UpdateMessage,
    decode,
    encode,
    encode_frames,
)
from actorwire.adapters.kdb.qipc import QIPC  # noqa: E402
from actorwire.adapters.kdb.server import GatewayServer, serve  # noqa: E402
from actorwire.adapters.kdb.topics import Column, TopicSpec  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from tests.support.waiting import wait_until  # noqa: E402

TOKEN = "demo-token"
BEARER = {"Sec-WebSocket-Protocol": f"Bearer {TOKEN}"}
SID = "7f0c0000-0000-4000-8000-000000000000"
WAIT = 5.0

# --------------------------------------------------------------------------- q IPC by hand
# The format: an 8-byte header (1 = little-endian, message type, compressed, 0, total
# length), then the object: a type byte (negative: an atom), for vectors an attribute byte
# and a 4-byte count. Symbols are null-terminated bytes.


def q_sym(s: str) -> bytes:
    return b"\xf5" + s.encode() + b"\0"


def q_long(n: int) -> bytes:
    return b"\xf9" + struct.pack("<q", n)


def q_syms(items: list[str]) -> bytes:
    return b"\x0b\x00" + struct.pack("<i", len(items)) + b"".join(s.encode() + b"\0" for s in items)


def q_floats(items: list[float]) -> bytes:
    return b"\x09\x00" + struct.pack("<i", len(items)) + struct.pack(f"<{len(items)}d", *items)


def q_chars(s: str) -> bytes:
    raw = s.encode()
    return b"\x0a\x00" + struct.pack("<i", len(raw)) + raw


def q_list(items: list[bytes]) -> bytes:
    return b"\x00\x00" + struct.pack("<i", len(items)) + b"".join(items)


def q_dict(keys: list[str], values: bytes) -> bytes:
    return b"\x63" + q_syms(keys) + values


def q_table(columns: list[str], vectors: list[bytes]) -> bytes:
    return b"\x62\x00" + q_dict(columns, q_list(vectors))


def q_message(body: bytes) -> bytes:
    return struct.pack("<BBBBI", 1, 0, 0, 0, 8 + len(body)) + body


# --------------------------------------------------------------------------- the codec


def test_a_subscribe_is_the_q_dictionary_of_the_spec() -> None:
    # PEERS.md's checked vector: this message is 122 bytes, a dict of a symbol vector of
    # keys and a general list of values, "subscribe" a symbol atom, 1 a long atom.
    frame = encode(SubscribeRequest(1, "trade", {"ccyPair": "EUR/USD"}), QIPC)
    assert isinstance(frame, bytes) and len(frame) == 122
    head = struct.pack("<BBBBI", 1, 0, 0, 0, 122)
    values = b"\x00\x00" + struct.pack("<i", 3) + q_sym("subscribe") + q_long(1)
    assert frame.startswith(head + q_dict(["type", "id", "payload"], values))


def test_a_long_made_by_q_decodes() -> None:
    assert QIPC.loads(bytes.fromhex("0100000011000000f90200000000000000"), 1 << 20) == 2


def test_a_snapped_reply_as_q_builds_it_decodes() -> None:
    body = q_dict(
        ["type", "id", "payload", "response_id"],
        q_list(
            [
                q_sym("snapped"),
                q_long(3),
                q_dict(
                    ["data"],
                    q_list(
                        [
                            q_table(
                                ["ccyPair", "val"],
                                [q_syms(["EUR/USD", "GBP/USD"]), q_floats([1.02, 1.27])],
                            )
                        ]
                    ),
                ),
                q_chars("mine"),
            ]
        ),
    )
    msg = decode(q_message(body), origin="server", codec=QIPC)
    assert msg == SnappedReply(
        3, {"ccyPair": ["EUR/USD", "GBP/USD"], "val": [1.02, 1.27]}, response_id="mine"
    )


def test_an_error_with_a_q_string_message_decodes() -> None:
    body = q_dict(
        ["type", "id", "error", "message"],
        q_list([q_sym("error"), q_long(4), q_long(63), q_chars("no such topic")]),
    )
    msg = decode(q_message(body), origin="server", codec=QIPC)
    assert msg == ErrorReply(4, ErrorCode(63), "no such topic")


MESSAGES = [
    SnapRequest(1, "trade"),
    SnapRequest(2, "trade", {"ccyPair": ["EUR/USD", "GBP/USD"]}, response_id={"a": [1, 2]}),
    SubscribeRequest(3, "trade", {"ccyPair": "EUR/USD"}, response_id="r"),
    SubscribeRequest(4, "trade", None, with_snapshot=True),
    UnsubscribeRequest(5, SID, response_id=5),
    SnappedReply(6, {"ccyPair": ["a", "b"], "val": [1.5, -2.0], "n": [1, 2]}),
    SnappedReply(7, {"ccyPair": [], "val": []}),
    SubsnappedReply(8, {"ok": [True, False]}, SID, chunk=Chunk(0, 2)),
    UpdateMessage(9, {"ccyPair": ["a"], "val": [1.0]}, SID, topic="trade"),
    UnsubscribedReply(10, SID),
    ErrorReply(11, ErrorCode.INVALID_PAYLOAD, "why"),
    ErrorReply(None, ErrorCode.NO_TYPE),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message: Any) -> None:
    frame = encode(message, QIPC)
    assert isinstance(frame, bytes)
    assert decode(frame, codec=QIPC) == message


def test_typed_columns() -> None:
    ts = [np.datetime64(1_700_000_000_123_456_789, "ns"), np.datetime64(0, "ns")]
    data = {"sym": ["a", "b"], "text": [b"two words", b""], "ts": ts, "flag": [True, False]}
    back = decode(encode(SnappedReply(1, data), QIPC), codec=QIPC)
    assert isinstance(back, SnappedReply)
    assert back.data["sym"] == ["a", "b"]
    assert back.data["text"] == ["two words", ""]  # q strings come back as str
    assert back.data["ts"] == [pd.Timestamp(1_700_000_000_123_456_789), pd.Timestamp(0)]
    assert back.data["flag"] == [True, False]


def test_a_column_mixing_types_is_refused_naming_it() -> None:
    with pytest.raises(TypeError, match="column 'v' mixes value types"):
        encode(SnappedReply(1, {"v": [1.0, "x"]}), QIPC)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=8),
            st.floats(allow_nan=False, allow_infinity=False),
            st.integers(-(2**62), 2**62),
        ),
        max_size=30,
    )
)
def test_tables_round_trip(rows: list[tuple[str, float, int]]) -> None:
    data = {
        "k": [r[0].replace("\0", "") or "x" for r in rows],
        "f": [r[1] for r in rows],
        "n": [r[2] for r in rows],
    }
    back = decode(encode(UpdateMessage(1, data, SID), QIPC), codec=QIPC)
    assert isinstance(back, UpdateMessage)
    if rows:
        assert back.data == data
    else:
        assert all(v == [] for v in back.data.values())


def test_a_large_message_is_chunked_under_the_limit_and_joins_back() -> None:
    n = 20_000
    data = {"k": [f"K{i}" for i in range(n)], "v": [i / 3 for i in range(n)]}
    frames = encode_frames(SnappedReply(1, data), 64 * 1024, QIPC)
    assert len(frames) > 1 and all(len(f) <= 64 * 1024 for f in frames)
    joined: dict[str, list[Any]] = {"k": [], "v": []}
    for i, frame in enumerate(frames):
        part = decode(frame, codec=QIPC)
        assert isinstance(part, SnappedReply) and part.chunk == Chunk(i, len(frames))
        for col in joined:
            joined[col] += part.data[col]
    assert joined == data


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        ("text", "a text frame on a qipc connection"),
        (b"", "less than a header"),
        (b"\x00" + b"\x00" * 8, "only little-endian"),
        (struct.pack("<BBBBI", 1, 7, 0, 0, 9) + b"\x00", "message type 0-2"),
        (struct.pack("<BBBBI", 1, 0, 0, 0, 99) + b"\xf9", "says 99 bytes, it has 9"),
        (struct.pack("<BBBBI", 1, 0, 0, 0, 9) + b"\x7f", "pykx can read"),
    ],
)
def test_bad_frames_are_refused(frame: str | bytes, problem: str) -> None:
    with pytest.raises(UndecodableError, match=problem):
        QIPC.loads(frame, 1 << 20)


def test_size_limits_count_the_uncompressed_size() -> None:
    with pytest.raises(MessageTooBig, match="over the limit of 100 bytes"):
        QIPC.loads(b"\x01" * 200, 100)
    bomb = struct.pack("<BBBBI", 1, 0, 1, 0, 16) + struct.pack("<I", 1 << 30) + b"\0" * 4
    with pytest.raises(MessageTooBig, match="uncompressed is over the limit"):
        QIPC.loads(bomb, 1 << 20)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_garbage_after_a_good_header_is_refused_or_read(tail: bytes) -> None:
    # Whatever the bytes, the only failure is a ProtocolError (never pykx's own errors).
    frame = struct.pack("<BBBBI", 1, 0, 0, 0, 8 + len(tail)) + tail
    with pytest.raises(ProtocolError):
        decode(frame, origin="server", codec=QIPC)


# --------------------------------------------------------------------------- the gateway


def _config() -> Any:
    base = load_config(None)
    quote = TopicSpec(
        "quote",
        (Column("sym", "symbol"),),
        (Column("note", "string"), Column("ts", "timestamp"), Column("n", "long")),
        ({"sym": "a", "note": "first one", "ts": "2024-01-02T03:04:05.123456789Z", "n": 7},),
    )
    return dataclasses.replace(base, topics=(*base.topics, quote), update_interval=0.05)


@pytest.fixture
def gateway() -> Iterator[GatewayServer]:
    server = serve(config=_config())
    try:
        yield server
    finally:
        server.stop()


def _q(obj: dict[str, Any]) -> bytes:
    """A request as a raw qipc peer makes it: pykx's toq and serialize."""
    return bytes(kx.serialize(kx.toq(obj), mode=6, wait=0))


def _py(frame: bytes | str) -> Any:
    assert isinstance(frame, bytes), f"expected a binary frame, got {frame!r}"
    return kx.deserialize(frame).py()


def test_a_raw_qipc_peer_snaps_subscribes_and_gets_errors(gateway: GatewayServer) -> None:
    async def go() -> None:
        url = gateway.url + "?in=qipc&out=qipc"
        async with connect(url, additional_headers=BEARER, open_timeout=WAIT) as ws:
            await ws.send(_q({"type": "snap", "id": 1, "payload": {"topic": "trade"}}))
            snapped = _py(await asyncio.wait_for(ws.recv(), WAIT))
            assert snapped["type"] == "snapped" and snapped["id"] == 1
            assert snapped["payload"]["data"]["ccyPair"] == ["EUR/USD", "GBP/USD", "USD/JPY"]
            await ws.send(
                _q(
                    {
                        "type": "subscribe",
                        "id": 2,
                        "payload": {"topic": "trade", "subTopic": {"ccyPair": "EUR/USD"}},
                        "response_id": "r2",
                    }
                )
            )
            subscribed = _py(await asyncio.wait_for(ws.recv(), WAIT))
            assert subscribed["type"] == "subscribed" and subscribed["response_id"] == "r2"
            gateway.upsert("trade", [{"ccyPair": "EUR/USD", "val": 2.5}])
            update = _py(await asyncio.wait_for(ws.recv(), WAIT))
            assert update["type"] == "update" and update["id"] == 2
            assert update["payload"]["data"] == {"ccyPair": ["EUR/USD"], "val": [2.5]}
            await ws.send(_q({"type": "snap", "id": 3, "payload": {"topic": "nope"}}))
            error = _py(await asyncio.wait_for(ws.recv(), WAIT))
            assert error["type"] == "error" and error["error"] == 63 and error["id"] == 3
            await ws.send(_q({"type": "snap", "id": 3, "payload": {"topic": "trade"}}))
            error = _py(await asyncio.wait_for(ws.recv(), WAIT))
            assert error["error"] == ErrorCode.ID_NOT_INCREASING
            await ws.send(_q({"type": "unsubscribe", "id": 4, "payload": {"subscription": "x"}}))
            error = _py(await asyncio.wait_for(ws.recv(), WAIT))
            assert error["type"] == "error" and error["id"] == 4

    asyncio.run(go())


def test_in_and_out_are_chosen_separately(gateway: GatewayServer) -> None:
    async def go() -> None:
        url = gateway.url + "?in=json&out=qipc"
        async with connect(url, additional_headers=BEARER, open_timeout=WAIT) as ws:
            await ws.send('{"type":"snap","id":1,"payload":{"topic":"quote"}}')
            snapped = _py(await asyncio.wait_for(ws.recv(), WAIT))
            data = snapped["payload"]["data"]
            assert data["sym"] == ["a"] and data["n"] == [7]
            assert data["note"] == [b"first one"]  # a q string: a char vector
            assert str(data["ts"][0]).startswith("2024-01-02 03:04:05.123456")

    asyncio.run(go())


def test_a_text_frame_on_a_qipc_websocket_is_refused_and_closed(gateway: GatewayServer) -> None:
    async def go() -> int | None:
        url = gateway.url + "?in=qipc&out=qipc"
        async with connect(url, additional_headers=BEARER, open_timeout=WAIT) as ws:
            await ws.send('{"type":"snap","id":1,"payload":{"topic":"trade"}}')
            error = _py(await asyncio.wait_for(ws.recv(), WAIT))
            assert error["type"] == "error" and error["error"] == ErrorCode.INVALID_PAYLOAD
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), WAIT)
            return info.value.rcvd.code if info.value.rcvd else None

    assert asyncio.run(go()) == 1003
    assert gateway.stats()["protocol_errors"] >= 1
    with GatewayClient(gateway.url, TOKEN, protocol="qipc") as c:  # still serving
        assert c.snap("trade", return_type="dict")["ccyPair"]


# --------------------------------------------------------------------------- the client


def test_client_snaps_typed_columns_into_a_dataframe(gateway: GatewayServer) -> None:
    with GatewayClient(gateway.url, TOKEN, protocol="qipc") as c:
        frame = c.snap("quote")
        assert list(frame.columns) == ["sym", "note", "ts", "n"]
        assert frame["note"].tolist() == ["first one"]
        assert frame["ts"].iloc[0] == pd.Timestamp("2024-01-02T03:04:05.123456789")
        assert frame["n"].tolist() == [7]
        some = c.snap("trade", {"ccyPair": ["USD/JPY"]}, return_type="dict")
        assert some == {"ccyPair": ["USD/JPY"], "val": [151.37]}
        with pytest.raises(GatewayError) as info:
            c.snap("nope")
        assert info.value.code == ErrorCode(63)


def test_client_subsnap_then_updates(gateway: GatewayServer) -> None:
    seen: list[pd.DataFrame] = []
    got = threading.Event()

    def callback(update: pd.DataFrame, sub: Any) -> None:
        seen.append(update)
        got.set()

    with GatewayClient(gateway.url, TOKEN, protocol="qipc") as c:
        snapshot, sub = c.subsnap("trade", {"ccyPair": "GBP/USD"}, callback=callback)
        assert snapshot["val"].tolist() == [1.2671]
        gateway.upsert("trade", [{"ccyPair": "GBP/USD", "val": 1.3}])
        assert got.wait(WAIT)
        assert seen[0].to_dict("list") == {"ccyPair": ["GBP/USD"], "val": [1.3]}
        assert sub.updates == 1


def test_client_reassembles_a_chunked_snap(gateway: GatewayServer) -> None:
    gateway.config = dataclasses.replace(gateway.config, snap_chunk_bytes=4096)
    rows = [{"ccyPair": f"P{i:05d}", "val": i / 7} for i in range(3000)]
    gateway.upsert("trade", rows)
    with GatewayClient(gateway.url, TOKEN, protocol="qipc") as c:
        frame = c.snap("trade")
    assert len(frame) == 3003
    assert frame.set_index("ccyPair").loc["P02999", "val"] == 2999 / 7
    wait_until(lambda: gateway.stats()["frames_sent"] > 10, what="the snap sent in chunks")
