"""A session's writer hands queued messages to gRPC together (one Batch per write), in
order, never past a queued snapshot, and the client reads a Batch as its messages."""

from __future__ import annotations

from actorwire.actors.serving import Outbox
from actorwire.adapters.keysquare import keysquare_pb2 as pb
from actorwire.adapters.keysquare.config import load_config
from actorwire.adapters.keysquare.server import COALESCE_BYTES, _Snapshot, _Stream


def stream() -> _Stream:
    app = load_config(None).applications["demo"]
    return _Stream("s1", app, "peer", 10_000, 64 << 20, 10.0, now=0.0)


def pong(n: int) -> bytes:
    return pb.ServerMessage(pong=pb.Pong(n=n)).SerializeToString()


def unbatch(data: bytes) -> list[int]:
    message = pb.ServerMessage.FromString(data)
    if message.WhichOneof("body") == "batch":
        return [m.pong.n for m in message.batch.messages]
    return [message.pong.n]


def test_queued_messages_leave_as_one_batch_in_order() -> None:
    s = stream()
    for n in range(1, 6):
        assert s.send(pong(n), now=0.0)
    data = s.next(now=0.0)
    assert isinstance(data, bytes)
    assert pb.ServerMessage.FromString(data).WhichOneof("body") == "batch"
    assert unbatch(data) == [1, 2, 3, 4, 5]
    assert s.taken == 5 and s.writing == len(data) and s.outbox.bytes == 0
    s.wrote(now=0.0)
    assert s.next(now=0.0) is None


def test_a_lone_message_is_sent_as_it_is() -> None:
    s = stream()
    s.send(pong(7), now=0.0)
    data = s.next(now=0.0)
    assert data == pong(7)


def test_a_batch_stops_at_a_queued_snapshot_and_resumes_after_it() -> None:
    s = stream()
    s.send(pong(1), now=0.0)
    s.send(pong(2), now=0.0)
    s.send_snapshot(9, [[pb.Record(header=pb.KeyHeader(id="A"))]])
    s.send(pong(3), now=0.0)
    first = s.next(now=0.0)
    assert isinstance(first, bytes) and unbatch(first) == [1, 2]
    snap = s.next(now=0.0)
    assert isinstance(snap, _Snapshot) and snap.sub_id == 9
    last = s.next(now=0.0)
    assert isinstance(last, bytes) and unbatch(last) == [3]


def test_a_batch_holds_about_coalesce_bytes() -> None:
    s = stream()
    big = pb.ServerMessage(
        delivery=pb.Delivery(sub_id=1, records=[pb.Record(data=b"x" * 10_000)])
    ).SerializeToString()
    count = 3 * COALESCE_BYTES // len(big)
    for _ in range(count):
        s.send(big, now=0.0)
    sizes = []
    while (data := s.next(now=0.0)) is not None:
        assert isinstance(data, bytes)
        sizes.append(len(pb.ServerMessage.FromString(data).batch.messages))
        assert len(data) <= COALESCE_BYTES + 64
        s.wrote(now=0.0)
    assert sum(sizes) == count and len(sizes) >= 3


def test_outbox_take_honours_a_count_limit() -> None:
    box = Outbox(1 << 20, 10.0)
    for i in range(5):
        box.put(bytes([i]) * 10, now=0.0)
    assert box.take(1 << 20, now=0.0, max_count=2) == [b"\x00" * 10, b"\x01" * 10]
    assert box.take(1 << 20, now=0.0, max_count=0) == []
    assert len(box.take(1 << 20, now=0.0)) == 3 and box.bytes == 0
