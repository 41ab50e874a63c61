"""Wire compatibility with jupyter_client's Session, both ways: frames and real sockets."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
import zmq
from actorwire.adapters.jupyter import (
    ReplayError,
    Session,
    SignatureError,
    json_packer,
    orjson_packer,
)
from jupyter_client import session as jc

KEY = b"interop-key-5b1e9c"
TIMEOUT_MS = 5000
SCHEMES = ["hmac-sha256", "hmac-sha512", "hmac-sha1", "hmac-md5", "hmac-sha3_256"]
EXECUTE = {
    "code": "print('héllo')\n1 + 1",
    "silent": False,
    "store_history": True,
    "user_expressions": {},
    "allow_stdin": False,
    "stop_on_error": True,
}


def jupyter(key: bytes = KEY, **kwargs: Any) -> jc.Session:
    return jc.Session(key=key, **kwargs)


def ours(key: bytes = KEY, **kwargs: Any) -> Session:
    return Session(key=key, **kwargs)


def split(session: Any, frames: list[Any], copy: bool = True) -> tuple[list[bytes], list[Any]]:
    return session.feed_identities(frames, copy)  # type: ignore[no-any-return]


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    opened: list[zmq.Socket[Any]] = []
    real_socket = context.socket

    def socket(kind: int) -> zmq.Socket[Any]:
        sock: zmq.Socket[Any] = real_socket(kind)
        sock.linger = 0
        sock.rcvtimeo = TIMEOUT_MS
        sock.sndtimeo = TIMEOUT_MS
        opened.append(sock)
        return sock

    context.socket = socket  # type: ignore[method-assign, assignment]
    try:
        yield context
    finally:
        for sock in opened:
            sock.close(0)
        context.term()


def connect(
    context: zmq.Context[Any], connecting: int, binding: int
) -> tuple[zmq.Socket[Any], zmq.Socket[Any]]:
    server = context.socket(binding)
    port = server.bind_to_random_port("tcp://127.0.0.1")
    client = context.socket(connecting)
    client.connect(f"tcp://127.0.0.1:{port}")
    return client, server


# -- frames --------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
def test_jupyter_client_verifies_actorwire_frames(scheme: str) -> None:
    sender = ours(signature_scheme=scheme)
    receiver = jupyter(signature_scheme=scheme)
    msg = sender.msg("execute_request", EXECUTE, metadata={"tag": 1})
    frames = [*sender.serialize(msg, [b"route-1", b"route-2"]), b"buf-1", memoryview(b"buf-2")]
    idents, rest = split(receiver, frames)
    got = receiver.deserialize(rest)
    assert idents == [b"route-1", b"route-2"]
    assert got["header"] == msg["header"]  # the date too, parsed back by jupyter_client
    assert got["content"] == EXECUTE
    assert got["metadata"] == {"tag": 1}
    assert [bytes(b) for b in got["buffers"]] == [b"buf-1", b"buf-2"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_actorwire_verifies_jupyter_client_frames(scheme: str) -> None:
    sender = jupyter(signature_scheme=scheme)
    receiver = ours(signature_scheme=scheme)
    parent = sender.msg("execute_request", EXECUTE)
    msg = sender.msg("execute_reply", {"status": "ok", "execution_count": 3}, parent=parent)
    frames = [*sender.serialize(msg, [b"route"]), b"\x00\x01"]
    idents, rest = split(receiver, frames)
    got = receiver.deserialize(rest)
    assert idents == [b"route"]
    assert got["header"] == msg["header"]
    assert got["parent_header"] == parent["header"]
    assert got["parent_header"]["date"] == parent["header"]["date"]
    assert got["content"] == {"status": "ok", "execution_count": 3}
    assert [bytes(b) for b in got["buffers"]] == [b"\x00\x01"]


def test_same_message_same_bytes() -> None:
    a, j = ours(), jupyter()
    msg = a.msg("execute_request", EXECUTE)
    msg["parent_header"] = dict(a.msg("x")["header"])
    assert a.serialize(msg, b"id") == j.serialize(msg, b"id")


def test_buffers_in_the_message_dict_go_on_the_wire_as_jupyter_client_sends_them(
    ctx: zmq.Context[Any],
) -> None:
    a, j = ours(), jupyter()
    push, pull = connect(ctx, zmq.PUSH, zmq.PULL)
    msg = a.msg("data", {"dtype": "int64"}, buffers=[np.arange(3).tobytes(), b"second"])
    j.send(push, msg, ident=b"id")  # jupyter_client appends msg["buffers"] after its frames
    assert pull.recv_multipart() == a.serialize(msg, b"id")


def test_jupyter_client_reads_serialized_buffers_and_actorwire_reads_whole_messages() -> None:
    a, j = ours(), jupyter()
    msg = a.msg("data", {"n": 2}, buffers=[b"b-1", b"b-2"])
    idents, rest = split(j, a.serialize(msg, [b"r"]))
    got = j.deserialize(rest)
    assert idents == [b"r"]
    assert [bytes(b) for b in got["buffers"]] == [b"b-1", b"b-2"]

    frames = [*j.serialize(j.msg("data", {"n": 3}), [b"r"]), b"buf"]
    whole = a.deserialize(frames)  # delimiter and identities still in front
    assert whole["idents"] == [b"r"]
    assert whole["content"] == {"n": 3}
    assert [bytes(b) for b in whole["buffers"]] == [b"buf"]


def test_unsigned_both_ways() -> None:
    a, j = ours(b""), jupyter(b"")
    frames = a.serialize(a.msg("status", {"execution_state": "idle"}))
    assert frames[1] == b""
    assert j.deserialize(split(j, frames)[1])["content"] == {"execution_state": "idle"}
    frames = j.serialize(j.msg("status", {"execution_state": "busy"}))
    assert a.deserialize(split(a, frames)[1])["content"] == {"execution_state": "busy"}


def test_different_key_is_rejected_both_ways() -> None:
    a, j = ours(b"key-a"), jupyter(b"key-b")
    with pytest.raises(ValueError, match="Invalid Signature"):
        j.deserialize(split(j, a.serialize(a.msg("status")))[1])
    with pytest.raises(SignatureError, match="invalid signature"):
        a.deserialize(split(a, j.serialize(j.msg("status")))[1])


def test_replay_is_rejected_both_ways() -> None:
    a, j = ours(), jupyter()
    ours_frames = split(j, a.serialize(a.msg("execute_request", EXECUTE)))[1]
    j.deserialize(ours_frames)
    with pytest.raises(ValueError, match="Duplicate Signature"):
        j.deserialize(ours_frames)
    theirs = split(a, j.serialize(j.msg("execute_request", EXECUTE)))[1]
    a.deserialize(theirs)
    with pytest.raises(ReplayError):
        a.deserialize(theirs)


def without_naive_date_warning(fn: Any, value: Any) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return fn(value)  # type: ignore[no-any-return]


PACKED_VALUES = [
    {"aware": datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)},
    {"offset": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5)))},
    {"naive": datetime(2024, 1, 2, 3, 4, 5)},
    {"day": date(2024, 1, 2)},
    {"bytes": b"\x00\xffbinary"},
    {"ints": np.arange(4), "floats": np.array([0.1, 2.5], dtype=np.float32)},
    {"matrix": np.arange(6).reshape(2, 3), "scalar": np.float64(1.25), "i": np.int32(-3)},
    {"tuple": (1, "a"), "set": {7}, "nested": {"deep": [{"x": None, "y": True}]}},
    {"unicode": "héllo ☃ \U0001f600", "nan": float("nan")},
]


@pytest.mark.parametrize("value", PACKED_VALUES)
def test_orjson_packer_writes_what_jupyter_client_writes(value: dict[str, Any]) -> None:
    assert orjson_packer(value) == without_naive_date_warning(jc.orjson_packer, value)


@pytest.mark.parametrize("value", PACKED_VALUES[:-1])
def test_json_packer_writes_what_jupyter_client_writes(value: dict[str, Any]) -> None:
    assert json_packer(value) == without_naive_date_warning(jc.json_packer, value)


def test_actorwire_reads_frames_as_zmq_frames_like_the_kernel_client_does() -> None:
    j, a = jupyter(), ours()
    frames = [zmq.Frame(f) for f in [*j.serialize(j.msg("status"), [b"r"]), b"buf"]]
    idents, rest = a.feed_identities(frames, copy=False)
    got = a.deserialize(rest, copy=False)
    assert idents == [b"r"]
    assert got["msg_type"] == "status"
    assert bytes(got["buffers"][0]) == b"buf"


# -- real sockets ----------------------------------------------------------------------------


def test_actorwire_client_and_jupyter_client_kernel(ctx: zmq.Context[Any]) -> None:
    client, kernel = ours(), jupyter()
    dealer, router = connect(ctx, zmq.DEALER, zmq.ROUTER)
    request = client.msg("execute_request", EXECUTE, buffers=[b"in-1", np.arange(3)])
    tracker = client.send(dealer, request)
    assert tracker is not None and tracker.done

    idents, msg = kernel.recv(router, mode=0)
    assert idents and msg is not None
    assert msg["header"] == request["header"]
    assert msg["content"] == EXECUTE
    assert [bytes(b) for b in msg["buffers"]] == [b"in-1", np.arange(3).tobytes()]

    kernel.send(
        router, "execute_reply", {"status": "ok"}, parent=msg, ident=idents, buffers=[b"out"]
    )
    reply = client.recv(dealer)
    assert reply["idents"] == []
    assert reply["parent_header"]["msg_id"] == request["msg_id"]
    assert reply["content"] == {"status": "ok"}
    assert [bytes(b) for b in reply["buffers"]] == [b"out"]


def test_jupyter_client_client_and_actorwire_kernel(ctx: zmq.Context[Any]) -> None:
    client, kernel = jupyter(), ours()
    dealer, router = connect(ctx, zmq.DEALER, zmq.ROUTER)
    sent = client.send(dealer, "kernel_info_request", {}, buffers=[b"x" * 70_000])
    assert sent is not None  # jupyter_client's send returns the message

    msg = kernel.recv(router, copy=False)
    assert msg["idents"]
    assert msg["msg_id"] == sent["msg_id"]
    assert bytes(msg["buffers"][0]) == b"x" * 70_000

    big = np.ones(50_000, dtype=np.float64)
    kernel.send(
        router,
        "kernel_info_reply",
        {"status": "ok"},
        parent=msg,
        ident=msg["idents"],
        buffers=[big],
    )
    _, reply = client.recv(dealer, mode=0)
    assert reply is not None
    assert reply["parent_header"]["msg_id"] == sent["msg_id"]
    assert np.array_equal(np.frombuffer(reply["buffers"][0], dtype=np.float64), big)


def test_different_key_over_the_socket_is_rejected(ctx: zmq.Context[Any]) -> None:
    push, pull = connect(ctx, zmq.PUSH, zmq.PULL)
    ours(b"key-a").send(push, "execute_request", EXECUTE)
    with pytest.raises(ValueError, match="Invalid Signature"):
        jupyter(b"key-b").recv(pull, mode=0)
    jupyter(b"key-b").send(push, "execute_request", EXECUTE)
    with pytest.raises(SignatureError):
        ours(b"key-a").recv(pull)


def test_replay_over_the_socket_is_rejected(ctx: zmq.Context[Any]) -> None:
    push, pull = connect(ctx, zmq.PUSH, zmq.PULL)
    j, a = jupyter(), ours()
    frames = j.serialize(j.msg("execute_request", EXECUTE))
    push.send_multipart(frames)
    push.send_multipart(frames)
    assert a.recv(pull)["msg_type"] == "execute_request"
    with pytest.raises(ReplayError):
        a.recv(pull)


def test_iopub_topic_from_jupyter_client_reaches_an_actorwire_subscriber(
    ctx: zmq.Context[Any],
) -> None:
    sub, pub = connect(ctx, zmq.SUB, zmq.PUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    kernel, client = jupyter(), ours()
    topic = f"kernel.{kernel.session}.status".encode()
    # PUB drops messages until the subscription has arrived: publish until one gets through.
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not sub.poll(20):
        assert time.monotonic() < deadline, "subscription never arrived"
        kernel.send(pub, "status", {"execution_state": "busy"}, ident=topic)
    msg = client.recv(sub)
    assert msg["idents"] == [topic]
    assert msg["content"] == {"execution_state": "busy"}
