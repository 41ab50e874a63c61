"""The Session facade: building messages, configuration, secrecy of the key, and
send/recv (sync and zmq.asyncio) between actorwire Sessions over tcp on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog
import zmq
import zmq.asyncio
from actorwire.adapters.jupyter import (
    DELIM,
    PROTOCOL_VERSION,
    Message,
    MessageError,
    ReplayError,
    Session,
    SessionFactory,
    SignatureError,
    extract_header,
    json_packer,
    json_unpacker,
    msg_header,
    new_id,
    new_id_bytes,
    utcnow,
)

KEY = b"session-test-key-7f3a"
TIMEOUT_MS = 5000


class Sockets:
    """Sockets on one zmq context, bound/connected over tcp on 127.0.0.1; all closed after."""

    def __init__(self, ctx: zmq.Context[Any]) -> None:
        self.ctx = ctx
        self.opened: list[zmq.Socket[Any]] = []

    def socket(self, kind: int) -> zmq.Socket[Any]:
        sock: zmq.Socket[Any] = self.ctx.socket(kind)
        sock.linger = 0
        sock.rcvtimeo = TIMEOUT_MS
        sock.sndtimeo = TIMEOUT_MS
        self.opened.append(sock)
        return sock

    def pair(self, connecting: int, binding: int) -> tuple[zmq.Socket[Any], zmq.Socket[Any]]:
        server = self.socket(binding)
        port = server.bind_to_random_port("tcp://127.0.0.1")
        client = self.socket(connecting)
        client.connect(f"tcp://127.0.0.1:{port}")
        return client, server

    def close(self) -> None:
        for sock in self.opened:
            sock.close(0)


@pytest.fixture
def sockets() -> Iterator[Sockets]:
    ctx: zmq.Context[Any] = zmq.Context()
    s = Sockets(ctx)
    try:
        yield s
    finally:
        s.close()
        ctx.term()


def pair_of_sessions(**kwargs: Any) -> tuple[Session, Session]:
    return Session(key=KEY, **kwargs), Session(key=KEY, **kwargs)


# -- building messages ---------------------------------------------------------------------


def test_msg_shape() -> None:
    s = Session(key=KEY, username="alice", session="sess-1")
    before = utcnow()
    msg = s.msg("execute_request", {"code": "1+1"})
    assert list(msg) == ["header", "msg_id", "msg_type", "parent_header", "content", "metadata"]
    header = msg["header"]
    assert list(header) == ["msg_id", "msg_type", "username", "session", "date", "version"]
    assert header["msg_type"] == msg["msg_type"] == "execute_request"
    assert header["msg_id"] == msg["msg_id"]
    assert header["username"] == "alice"
    assert header["session"] == "sess-1"
    assert header["version"] == PROTOCOL_VERSION
    assert header["date"].tzinfo is UTC
    assert before <= header["date"] <= utcnow()
    assert msg["parent_header"] == {}
    assert msg["content"] == {"code": "1+1"}
    assert msg["metadata"] == {}


def test_msg_with_buffers_carries_them_as_a_list() -> None:
    s = Session(key=KEY)
    data = np.arange(5)
    msg = s.msg("data", {"shape": data.shape}, buffers=(data.tobytes(), b"two"))
    assert msg["buffers"] == [data.tobytes(), b"two"]
    assert Message(msg).buffers == [data.tobytes(), b"two"]
    assert "buffers" not in s.msg("data")
    assert s.msg("data", buffers=[])["buffers"] == []


def test_msg_ids_count_up_within_the_session() -> None:
    s = Session(key=KEY, session="sess-1")
    ids = [s.msg("status")["msg_id"] for _ in range(3)]
    assert ids == [f"sess-1_{os.getpid()}_{n}" for n in range(3)]
    assert s.msg_id == f"sess-1_{os.getpid()}_3"
    assert s.msg_header("x")["msg_id"] == f"sess-1_{os.getpid()}_4"


def test_msg_parent_from_a_message_a_header_or_a_message_object() -> None:
    s = Session(key=KEY)
    parent = s.msg("execute_request")
    for given in (parent, parent["header"], Message(parent)):
        reply = s.msg("execute_reply", parent=given)
        assert reply["parent_header"] == parent["header"]
        assert type(reply["parent_header"]) is dict


def test_msg_with_explicit_header_and_metadata_merged_over_defaults() -> None:
    s = Session(key=KEY, metadata={"a": 1, "b": 2})
    header = msg_header("fixed-id", "status", "bob", "s")
    msg = s.msg("ignored", header=header, metadata={"b": 3})
    assert msg["msg_id"] == "fixed-id"
    assert msg["msg_type"] == "status"
    assert msg["metadata"] == {"a": 1, "b": 3}
    assert s.metadata == {"a": 1, "b": 2}


def test_msg_header_defaults_and_overrides() -> None:
    when = datetime(2020, 1, 1, tzinfo=UTC)
    h = msg_header("i", "t", "u", "s", date=when, version="5.0")
    assert h == {
        "msg_id": "i",
        "msg_type": "t",
        "username": "u",
        "session": "s",
        "date": when,
        "version": "5.0",
    }
    assert msg_header("i", "t", "u", "s")["version"] == PROTOCOL_VERSION


def test_extract_header() -> None:
    header = {"msg_id": "x", "msg_type": "t"}
    assert extract_header({"header": header}) == header
    assert extract_header(header) == header
    assert extract_header(None) == {}
    assert extract_header({}) == {}
    with pytest.raises(KeyError, match="expected a message"):
        extract_header({"something": 1})


def test_ids() -> None:
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{24}", new_id())
    assert new_id() != new_id()
    assert re.fullmatch(rb"[0-9a-f]{8}-[0-9a-f]{24}", new_id_bytes())
    assert utcnow().tzinfo is UTC


def test_message_object() -> None:
    raw = Session(key=KEY).msg("status", {"execution_state": "idle"})
    m = Message(raw)
    assert m.header.msg_type == "status"
    assert m.content.execution_state == "idle"
    assert m.parent_header.to_dict() == {}
    assert m.metadata.to_dict() == {}
    assert m.buffers == []
    assert m["msg_id"] == raw["msg_id"]
    assert "content" in m
    assert m.get("nope", 5) == 5
    assert dict(m)["msg_type"] == "status"
    assert m.to_dict() == raw
    assert "execution_state" in repr(m)
    assert "execution_state" in str(m)
    with pytest.raises(AttributeError, match="no 'nope'"):
        _ = m.nope
    with pytest.raises(AttributeError, match="no 'content'"):
        _ = Message({}).content


# -- configuration -------------------------------------------------------------------------


def test_default_key_is_random_and_signs() -> None:
    a, b = Session(), Session()
    assert a.key and b.key and a.key != b.key
    assert a.serialize(a.msg("status"))[1] != b""


def test_empty_key_means_unsigned() -> None:
    with structlog.testing.capture_logs() as logs:
        s = Session(key=b"")
    assert s.serialize(s.msg("status"))[1] == b""
    assert any("signing is disabled" in e["event"] for e in logs)


def test_str_key_and_keyfile(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(KEY + b"\n")
    assert Session(keyfile=path).key == KEY
    assert Session(key=KEY.decode()).key == KEY
    with pytest.raises(TypeError, match="key must be bytes or str, got int"):
        Session(key=5)  # type: ignore[arg-type]


def test_setting_the_key_or_scheme_re_signs() -> None:
    s = Session(key=b"one")
    msg = s.msg("status")
    first = s.serialize(msg)[1]
    s.key = KEY
    assert s.serialize(msg)[1] != first
    assert Session(key=KEY).deserialize(s.serialize(msg)[1:])["msg_id"] == msg["msg_id"]
    s.signature_scheme = "hmac-sha512"
    assert len(s.serialize(msg)[1]) == 128
    assert s.signature_scheme == "hmac-sha512"
    assert Session(key=KEY, signature_scheme="hmac-sha512").deserialize(s.serialize(msg))


# -- frames --------------------------------------------------------------------------------


def test_serialize_appends_the_message_buffers_unsigned() -> None:
    s = Session(key=KEY)
    data = np.arange(3, dtype=np.int64)
    msg = s.msg("data", {"n": 3}, buffers=[data.tobytes(), memoryview(b"mv"), data])
    frames = s.serialize(msg, b"route")
    assert frames[:2] == [b"route", DELIM]
    assert frames[7:] == [data.tobytes(), b"mv", data.tobytes()]
    assert all(type(f) is bytes for f in frames)
    assert frames[2] == s.sign(frames[3:7])  # the buffers are not signed
    assert s.serialize(s.msg("data"))[7:] == []
    with pytest.raises(TypeError, match="buffer 0 is a int"):
        s.serialize(s.msg("data", buffers=[5]))


def test_deserialize_takes_the_frames_after_the_delimiter_or_the_whole_message() -> None:
    sender, receiver = pair_of_sessions()
    data = np.arange(5)
    msg = sender.msg("data", {"dtype": str(data.dtype)}, buffers=[data.tobytes()])
    whole = receiver.deserialize(sender.serialize(msg))
    assert whole["msg_id"] == msg["msg_id"]
    assert whole["idents"] == []
    assert np.array_equal(np.frombuffer(whole["buffers"][0], dtype=data.dtype), data)

    routed = sender.serialize(sender.msg("status"), [b"r1", b"r2"])
    assert receiver.deserialize(routed)["idents"] == [b"r1", b"r2"]
    as_frames = [zmq.Frame(f) for f in sender.serialize(sender.msg("status"), b"r")]
    assert receiver.deserialize(as_frames, copy=False)["idents"] == [b"r"]

    rest = sender.serialize(sender.msg("status"), b"r")[2:]
    assert "idents" not in receiver.deserialize(rest)  # not known from these frames


def test_deserialize_of_a_whole_message_checks_signature_and_replay() -> None:
    sender, receiver = pair_of_sessions()
    frames = sender.serialize(sender.msg("status"), b"r")
    receiver.deserialize(frames)
    with pytest.raises(ReplayError):
        receiver.deserialize(frames)
    with pytest.raises(ReplayError):
        receiver.deserialize(frames[2:])
    with pytest.raises(SignatureError, match="invalid signature"):
        Session(key=b"other").deserialize(sender.serialize(sender.msg("status")))
    sha512 = Session(key=KEY, signature_scheme="hmac-sha512")
    with pytest.raises(SignatureError, match="invalid signature"):
        receiver.deserialize(sha512.serialize(sha512.msg("status"))[1:])
    with pytest.raises(MessageError, match="expected at least 5"):
        receiver.deserialize([b"r", DELIM, b"sig"])
    with pytest.raises(MessageError, match="0 frame"):
        receiver.deserialize([])


def test_unsigned_session_deserializes_both_forms() -> None:
    unsigned = Session(key=b"")
    frames = unsigned.serialize(unsigned.msg("status", {"n": 1}), b"r")
    assert unsigned.deserialize(frames)["idents"] == [b"r"]
    assert unsigned.deserialize(frames[2:])["content"] == {"n": 1}
    signed = Session(key=KEY)  # a signed peer: the signature is ignored, as unsigned
    got = unsigned.deserialize(signed.serialize(signed.msg("status", {"n": 2}))[1:])
    assert got["content"] == {"n": 2}


def test_bad_scheme_raises_value_error_without_the_key() -> None:
    with pytest.raises(ValueError, match="'hmac-whirlpool9'") as info:
        Session(key=KEY, signature_scheme="hmac-whirlpool9")
    assert KEY.decode() not in str(info.value)
    s = Session(key=KEY)
    with pytest.raises(ValueError, match="signature_scheme"):
        s.signature_scheme = "md5"
    assert s.signature_scheme == "hmac-sha256"


def test_session_id_and_bytes() -> None:
    s = Session(key=KEY, session="abc")
    assert s.bsession == b"abc"
    s.session = "def"
    assert s.bsession == b"def"
    assert s.msg("x")["header"]["session"] == "def"


def test_json_packer_by_name() -> None:
    s = Session(key=KEY, packer="json")
    assert s.packer == s.unpacker == "json"
    assert s.pack is json_packer
    assert s.unpack is json_unpacker
    msg = s.msg("status", {"x": 1})
    frames = s.serialize(msg)
    assert frames[-1] == b'{"x": 1}'
    assert Session(key=KEY).deserialize(frames[1:])["content"] == {"x": 1}
    s.packer = "orjson"
    assert s.serialize(msg)[-1] == b'{"x":1}'


def test_packer_by_import_path_and_callables() -> None:
    s = Session(key=KEY, packer="actorwire.adapters.jupyter.protocol.json_packer")
    assert s.pack is json_packer
    custom = Session(key=KEY, pack=lambda o: json.dumps(o, default=str).encode(), unpack=json.loads)
    assert custom.deserialize(custom.serialize(custom.msg("s", {"a": [1]}))[1:])["content"] == {
        "a": [1]
    }


def test_bad_packers_are_value_errors() -> None:
    with pytest.raises(ValueError, match="packer must be 'orjson', 'json' or the import path"):
        Session(key=KEY, packer="no.such.module.dumps")
    with pytest.raises(ValueError, match="bytes are required"):
        Session(key=KEY, pack=json.dumps, unpack=json.loads)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not the inverse"):
        Session(key=KEY, pack=json_packer, unpack=lambda b: {})


def test_packer_without_date_support_gets_iso_strings() -> None:
    def strict(obj: Any) -> bytes:
        return json.dumps(obj).encode()  # TypeError on datetime

    s = Session(key=KEY, pack=strict, unpack=json.loads)
    frames = s.serialize(s.msg("status"))
    assert isinstance(json.loads(frames[2])["date"], str)


def test_repr_str_and_logs_never_show_the_key() -> None:
    secret = b"very-secret-hmac-key"
    s = Session(key=secret, username="u")
    assert secret.decode() not in repr(s)
    assert secret.decode() not in str(s)
    assert "[redacted]" in repr(s)
    assert "unsigned" in repr(Session(key=b""))
    with structlog.testing.capture_logs() as logs:
        s.pid = -1  # as if forked
        assert s.send(None, "status") is None
    assert logs
    assert secret.decode() not in repr(logs)


def test_errors_never_show_the_key() -> None:
    secret = b"another-secret-key"
    good = Session(key=secret)
    frames = Session(key=b"other").serialize(good.msg("status"))
    with pytest.raises(SignatureError) as info:
        good.deserialize(frames[1:])
    assert secret.decode() not in str(info.value)
    assert secret.decode() not in repr(info.value)


def test_clone_has_the_settings_and_a_forked_history() -> None:
    s = Session(key=KEY, username="u", session="sid", packer="json", digest_history_size=10)
    seen = s.serialize(s.msg("status"))[1:]
    s.deserialize(seen)
    c = s.clone()
    assert (c.key, c.username, c.session, c.packer, c.digest_history_size) == (
        KEY,
        "u",
        "sid",
        "json",
        10,
    )
    with pytest.raises(ReplayError):
        c.deserialize(seen)
    later = s.serialize(s.msg("status"))[1:]
    c.deserialize(later)
    assert s.deserialize(later)["msg_type"] == "status"  # the original did not see it


def test_session_factory() -> None:
    f = SessionFactory(key=KEY, username="fac")
    assert f.session.username == "fac"
    assert f.session.key == KEY
    given = Session(key=KEY)
    assert SessionFactory(session=given).session is given
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        assert SessionFactory(context=ctx).context is ctx
    finally:
        ctx.term()


# -- sockets -------------------------------------------------------------------------------


def test_dealer_to_router_and_back_with_buffers(sockets: Sockets) -> None:
    client, kernel = pair_of_sessions()
    dealer, router = sockets.pair(zmq.DEALER, zmq.ROUTER)
    request = client.msg("execute_request", {"code": "x"})
    tracker = client.send(dealer, request, buffers=[b"one", b"two"])
    assert isinstance(tracker, zmq.MessageTracker)
    assert tracker.done
    assert request["tracker"] is tracker

    msg = kernel.recv(router)
    assert len(msg["idents"]) == 1 and type(msg["idents"][0]) is bytes
    assert msg["msg_id"] == request["msg_id"]
    assert msg["header"] == request["header"]
    assert msg["content"] == {"code": "x"}
    assert [bytes(b) for b in msg["buffers"]] == [b"one", b"two"]

    kernel.send(router, "execute_reply", {"status": "ok"}, parent=msg, ident=msg["idents"])
    reply = client.recv(dealer)
    assert reply["idents"] == []
    assert reply["parent_header"]["msg_id"] == request["msg_id"]
    assert reply["content"] == {"status": "ok"}


def test_req_to_router_reply_with_the_idents(sockets: Sockets) -> None:
    client, kernel = pair_of_sessions()
    req, router = sockets.pair(zmq.REQ, zmq.ROUTER)
    client.send(req, "kernel_info_request")
    msg = kernel.recv(router)
    assert len(msg["idents"]) == 2 and msg["idents"][1] == b""  # REQ's empty envelope
    kernel.send(router, "kernel_info_reply", {"status": "ok"}, parent=msg, ident=msg["idents"])
    reply = client.recv(req)
    assert reply["idents"] == []
    assert reply["parent_header"]["msg_id"] == msg["msg_id"]


def test_recv_noblock_without_a_message_waiting_raises_again(sockets: Sockets) -> None:
    _, router = sockets.pair(zmq.DEALER, zmq.ROUTER)
    with pytest.raises(zmq.Again):
        Session(key=KEY).recv(router, mode=zmq.NOBLOCK)
    router.rcvtimeo = 0
    with pytest.raises(zmq.Again):
        Session(key=KEY).recv(router)  # blocking, up to the socket's rcvtimeo


def test_recv_blocks_by_default(sockets: Sockets) -> None:
    client, kernel = pair_of_sessions()
    push, pull = sockets.pair(zmq.PUSH, zmq.PULL)
    got: list[Any] = []

    def receive() -> None:
        try:
            got.append(kernel.recv(pull))
        except Exception as exc:  # reported by the assertion below
            got.append(exc)

    thread = threading.Thread(target=receive)
    thread.start()
    client.send(push, "status", {"n": 1})
    thread.join(TIMEOUT_MS / 1000)
    assert not thread.is_alive()
    assert isinstance(got[0], dict) and got[0]["content"] == {"n": 1}


def test_big_buffer_goes_zero_copy_and_is_tracked(sockets: Sockets) -> None:
    client, kernel = pair_of_sessions(copy_threshold=1024)
    push, pull = sockets.pair(zmq.PUSH, zmq.PULL)
    big = np.arange(100_000, dtype=np.uint8)
    tracker = client.send(push, "data", {}, buffers=[big, b"small"], track=True)
    assert tracker is not None
    msg = kernel.recv(pull, copy=False)
    assert bytes(msg["buffers"][0]) == big.tobytes()
    assert bytes(msg["buffers"][1]) == b"small"
    tracker.wait(5)
    assert tracker.done


def test_recv_copy_false_content_false(sockets: Sockets) -> None:
    client, kernel = pair_of_sessions()
    push, pull = sockets.pair(zmq.PUSH, zmq.PULL)
    client.send(push, "status", {"execution_state": "busy"}, buffers=[b"b"])
    msg = kernel.recv(pull, content=False, copy=False)
    assert json.loads(msg["content"]) == {"execution_state": "busy"}
    assert isinstance(msg["buffers"][0], memoryview)
    assert msg["idents"] == []


def test_resending_a_message_and_a_message_object(sockets: Sockets) -> None:
    client, kernel = pair_of_sessions()
    push, pull = sockets.pair(zmq.PUSH, zmq.PULL)
    built = client.msg("status", {"n": 1})
    client.send(push, built, buffers=[b"x"])
    as_object = client.msg("status", {"n": 2})
    client.send(push, Message(as_object))
    got = [kernel.recv(pull) for _ in range(2)]
    assert [m["content"]["n"] for m in got] == [1, 2]
    assert bytes(got[0]["buffers"][0]) == b"x"
    assert built["tracker"].done
    assert "tracker" not in as_object  # a Message is sent as a copy


def test_message_buffers_are_sent_once(sockets: Sockets) -> None:
    client, kernel = pair_of_sessions()
    push, pull = sockets.pair(zmq.PUSH, zmq.PULL)
    client.send(push, client.msg("data", buffers=[b"a", b"b"]))
    client.send(push, client.msg("data", buffers=[b"a"]), buffers=[b"given"])
    client.send(push, Message(client.msg("data", buffers=[b"m"])))
    assert [bytes(b) for b in kernel.recv(pull)["buffers"]] == [b"a", b"b"]
    assert [bytes(b) for b in kernel.recv(pull)["buffers"]] == [b"given"]
    assert [bytes(b) for b in kernel.recv(pull)["buffers"]] == [b"m"]
    # what serialize writes for a message is what send writes for it
    msg = client.msg("data", {"k": 1}, buffers=[b"z"])
    client.send(push, msg, ident=b"r")
    assert pull.recv_multipart() == client.serialize(msg, b"r")


def test_send_raw_relays_packed_frames(sockets: Sockets) -> None:
    client, relay = pair_of_sessions()
    push, pull = sockets.pair(zmq.PUSH, zmq.PULL)
    frames = client.serialize(client.msg("status", {"n": 1}))
    relay.send_raw(push, [*frames[2:], b"buf"], ident=b"topic")
    msg = Session(key=KEY).recv(pull)
    assert msg["idents"] == [b"topic"]
    assert msg["content"] == {"n": 1}
    assert bytes(msg["buffers"][0]) == b"buf"


def test_garbage_on_the_socket_is_a_message_error_and_the_socket_goes_on(
    sockets: Sockets,
) -> None:
    client, kernel = pair_of_sessions()
    push, pull = sockets.pair(zmq.PUSH, zmq.PULL)
    push.send_multipart([b"no", b"delimiter"])
    push.send_multipart([DELIM, b"sig", b"{}"])
    push.send_multipart(Session(key=b"wrong").serialize(client.msg("status")))
    client.send(push, "status", {"ok": True})
    with pytest.raises(MessageError, match="no <IDS\\|MSG> delimiter"):
        kernel.recv(pull)
    with pytest.raises(MessageError, match="expected at least 5"):
        kernel.recv(pull)
    with pytest.raises(SignatureError, match="invalid signature"):
        kernel.recv(pull)
    assert kernel.recv(pull)["content"] == {"ok": True}


def test_replay_over_the_socket_is_rejected(sockets: Sockets) -> None:
    client, kernel = pair_of_sessions()
    push, pull = sockets.pair(zmq.PUSH, zmq.PULL)
    frames = client.serialize(client.msg("execute_request", {"code": "rm -rf"}))
    push.send_multipart(frames)
    push.send_multipart(frames)
    assert kernel.recv(pull)["msg_type"] == "execute_request"
    with pytest.raises(ReplayError):
        kernel.recv(pull)


def test_forked_session_sends_nothing(sockets: Sockets) -> None:
    s = Session(key=KEY)
    push, pull = sockets.pair(zmq.PUSH, zmq.PULL)
    s.pid = -1
    assert s.send(push, "status") is None
    assert pull.poll(100) == 0


def test_send_without_a_socket_sends_nothing() -> None:
    s = Session(key=KEY)
    assert s.send(None, "status", {"x": 1}) is None
    built = s.msg("status")
    assert s.send(None, built) is None
    assert "tracker" not in built


def test_bad_buffers() -> None:
    s = Session(key=KEY)
    with pytest.raises(TypeError, match="buffer 0 is a int"):
        s.send(None, "status", buffers=[5])
    strided = np.arange(10)[::2]
    with pytest.raises(ValueError, match="buffer 1 is not contiguous"):
        s.send(None, "status", buffers=[b"ok", strided])


def test_asend_arecv_on_asyncio_sockets() -> None:
    async def main() -> None:
        ctx = zmq.asyncio.Context()
        router = ctx.socket(zmq.ROUTER)
        dealer = ctx.socket(zmq.DEALER)
        try:
            port = router.bind_to_random_port("tcp://127.0.0.1")
            dealer.connect(f"tcp://127.0.0.1:{port}")
            client, kernel = pair_of_sessions()
            request = client.msg("kernel_info_request")
            tracker = await client.asend(dealer, request, buffers=[b"b"])
            assert isinstance(tracker, zmq.MessageTracker) and tracker.done
            assert request["tracker"] is tracker
            msg = await asyncio.wait_for(kernel.arecv(router), 5)
            assert msg["msg_id"] == request["msg_id"]
            assert bytes(msg["buffers"][0]) == b"b"
            assert len(msg["idents"]) == 1
            # the sync send works on an asyncio socket too (through a shadow socket)
            kernel.send(
                router, "kernel_info_reply", {"status": "ok"}, parent=msg, ident=msg["idents"]
            )
            reply = await asyncio.wait_for(client.arecv(dealer), 5)
            assert reply["parent_header"]["msg_id"] == request["msg_id"]
            assert reply["idents"] == []
            big = np.ones(10_000, dtype=np.float64)  # over copy_threshold: zero-copy, tracked
            tracker = await client.asend(dealer, "data", buffers=[big], track=True)
            assert tracker is not None
            got = await asyncio.wait_for(kernel.arecv(router), 5)
            assert np.array_equal(np.frombuffer(got["buffers"][0]), big)
            client.pid = -1  # as if forked
            assert await client.asend(dealer, "status") is None
        finally:
            router.close(0)
            dealer.close(0)
            ctx.term()

    asyncio.run(main())


def test_msg_ids_are_unique_across_threads() -> None:
    session = Session(key=b"k")
    ids: list[str] = []
    lock = threading.Lock()

    def build() -> None:
        mine = [session.msg("ping")["header"]["msg_id"] for _ in range(2000)]
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == len(ids) == 8000
