"""The usage examples of the Session and messaging specification, run as written.

Each example is its source text, executed as it stands, with two changes: ``Session`` is
imported from ``actorwire.adapters.jupyter``, and the peer address
``tcp://127.0.0.1:50001`` is replaced by a 127.0.0.1 socket of the test's own, which
answers where an example expects a kernel. (The example that starts a real kernel is not
run here.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import zmq
from actorwire.adapters.jupyter import Session

TIMEOUT_MS = 5000
EXAMPLE_URL = "tcp://127.0.0.1:50001"

BASIC_USAGE = """\
from actorwire.adapters.jupyter import Session
import zmq
# Create ZMQ context and sockets
context = zmq.Context()
socket = context.socket(zmq.REQ)
socket.connect('tcp://127.0.0.1:50001')
# Create session
session = Session()
# Create and send a message
msg = session.msg('kernel_info_request')
session.send(socket, msg)
# Receive reply
reply = session.recv(socket)
print(f"Kernel info: {reply['content']}")
# Clean up
socket.close()
context.term()
"""

MESSAGE_CREATION = """\
from actorwire.adapters.jupyter import Session
session = Session(username='user', session='test-session')
# Create execute request message
execute_msg = session.msg(
    'execute_request',
    content={
        'code': 'print("Hello, World!")',
        'silent': False,
        'store_history': True,
        'user_expressions': {},
        'allow_stdin': False,
        'stop_on_error': True
    }
)
print(f"Message ID: {execute_msg['header']['msg_id']}")
print(f"Message type: {execute_msg['header']['msg_type']}")
print(f"Content: {execute_msg['content']}")
# Create reply message
reply = session.msg(
    'execute_reply',
    content={
        'status': 'ok',
        'execution_count': 1,
        'user_expressions': {}
    },
    parent=execute_msg
)
print(f"Reply parent: {reply['parent_header']['msg_id']}")
"""

SERIALIZATION_AND_SIGNING = """\
from actorwire.adapters.jupyter import Session
import zmq
# Create session with authentication
session = Session(
    key=b'secret-key-for-signing',
    signature_scheme='hmac-sha256'
)
# Create message
msg = session.msg('status', content={'execution_state': 'busy'})
# Serialize message
serialized = session.serialize(msg)
print(f"Serialized parts: {len(serialized)}")
# Sign message manually
signature = session.sign(serialized[1:]) # Skip signature part
print(f"Signature: {signature.hex()}")
# Deserialize message
deserialized = session.deserialize(serialized)
print(f"Deserialized type: {deserialized['header']['msg_type']}")
"""

CUSTOM_MESSAGE_TYPES = """\
from actorwire.adapters.jupyter import Session
session = Session()
# Create custom message type
custom_msg = session.msg(
    'custom_request',
    content={
        'operation': 'process_data',
        'parameters': {
            'input_file': '/path/to/data.csv',
            'output_format': 'json'
        }
    },
    metadata={
        'priority': 'high',
        'timeout': 30
    }
)
print(f"Custom message: {custom_msg}")
# Handle custom reply
def handle_custom_reply(msg):
    if msg['header']['msg_type'] == 'custom_reply':
        content = msg['content']
        if content['status'] == 'ok':
            print(f"Operation completed: {content['result']}")
        else:
            print(f"Operation failed: {content['error']}")
"""

THREAD_SAFE_USAGE = """\
import threading
from actorwire.adapters.jupyter import Session
import zmq
class SessionWorker(threading.Thread):
    def __init__(self, session_config, socket_url):
        super().__init__()
        self.session = Session(**session_config)
        self.socket_url = socket_url
        self.running = True
    def run(self):
        context = zmq.Context()
        socket = context.socket(zmq.DEALER)
        socket.connect(self.socket_url)
        while self.running:
            try:
                # Non-blocking receive
                msg = self.session.recv(socket, mode=zmq.NOBLOCK)
                self.handle_message(msg)
            except zmq.Again:
                # No message available
                continue
            except Exception as e:
                print(f"Error receiving message: {e}")
        socket.close()
        context.term()
    def handle_message(self, msg):
        print(f"Received: {msg['header']['msg_type']}")
    def send_message(self, msg_type, content=None):
        # This would need socket access - shown for concept
        msg = self.session.msg(msg_type, content=content)
        # session.send(socket, msg)
# Create worker with session config
session_config = {
    'username': 'worker',
    'session': 'worker-session'
}
worker = SessionWorker(session_config, 'tcp://127.0.0.1:50001')
worker.start()
# Use worker...
worker.running = False
worker.join()
"""

BUFFER_HANDLING = """\
from actorwire.adapters.jupyter import Session
import numpy as np
session = Session()
# Create message with binary buffers
data = np.array([1, 2, 3, 4, 5])
msg = session.msg(
    'data_message',
    content={
        'shape': data.shape,
        'dtype': str(data.dtype)
    },
    buffers=[data.tobytes()]
)
print(f"Message has {len(msg.get('buffers', []))} buffers")
# Serialize with buffers
serialized = session.serialize(msg)
print(f"Serialized message parts: {len(serialized)}")
# Deserialize and reconstruct data
deserialized = session.deserialize(serialized)
if 'buffers' in deserialized:
    buffer_data = deserialized['buffers'][0]
    reconstructed = np.frombuffer(buffer_data, dtype=data.dtype)
    print(f"Reconstructed data: {reconstructed}")
"""


def run_example(
    source: str, name: str, url: str | None = None, namespace: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Execute an example's source in ``namespace`` (a new one by default); returns it,
    holding the names the example defined."""
    if url is not None:
        assert EXAMPLE_URL in source
        source = source.replace(EXAMPLE_URL, url)
    if namespace is None:
        namespace = {}
    namespace["__name__"] = f"example_{name}"
    exec(compile(source, f"<example {name}>", "exec"), namespace)
    return namespace


@pytest.fixture
def peer_ctx() -> Iterator[zmq.Context[Any]]:
    """The context of the test's own end of the examples' connections."""
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        yield ctx
    finally:
        ctx.destroy(linger=0)


def bind(ctx: zmq.Context[Any], kind: int) -> tuple[zmq.Socket[Any], str]:
    sock = ctx.socket(kind)
    sock.linger = 0
    sock.rcvtimeo = TIMEOUT_MS
    sock.sndtimeo = TIMEOUT_MS
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    return sock, f"tcp://127.0.0.1:{port}"


def lines(out: str) -> list[str]:
    return out.strip().splitlines()


# -- basic usage: a REQ client, answered by the test as the kernel's ROUTER ------------------


def test_basic_session_usage_against_a_router_peer(
    peer_ctx: zmq.Context[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    router, url = bind(peer_ctx, zmq.ROUTER)
    namespace: dict[str, Any] = {}
    failure: list[BaseException] = []

    def example() -> None:
        try:
            run_example(BASIC_USAGE, "basic", url, namespace)
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    # The example blocks in recv until answered: it runs on its own (daemon) thread, and
    # this thread is the kernel it talks to, replying through the routing identities.
    thread = threading.Thread(target=example, daemon=True)
    thread.start()
    assert router.poll(TIMEOUT_MS), f"the example sent no request: {failure}"
    # The example's Session() has a fresh random key; it made it before sending.
    kernel = Session(key=namespace["session"].key)
    request = kernel.recv(router)
    assert request["msg_type"] == "kernel_info_request"
    assert len(request["idents"]) == 2  # the REQ socket's identity and empty envelope
    content = {"status": "ok", "implementation": "fake", "protocol_version": "5.4"}
    kernel.send(router, "kernel_info_reply", content, parent=request, ident=request["idents"])
    thread.join(TIMEOUT_MS / 1000)
    assert not thread.is_alive(), "the example did not get the reply"
    assert not failure, failure
    assert namespace["reply"]["parent_header"]["msg_id"] == request["msg_id"]
    assert namespace["reply"]["idents"] == []
    assert lines(capsys.readouterr().out) == [f"Kernel info: {content}"]


# -- messages without sockets ----------------------------------------------------------------


def test_message_creation_and_structure(capsys: pytest.CaptureFixture[str]) -> None:
    ns = run_example(MESSAGE_CREATION, "creation")
    execute_msg, reply = ns["execute_msg"], ns["reply"]
    assert execute_msg["header"]["username"] == "user"
    assert execute_msg["header"]["session"] == "test-session"
    assert reply["parent_header"] == execute_msg["header"]
    assert lines(capsys.readouterr().out) == [
        f"Message ID: {execute_msg['header']['msg_id']}",
        "Message type: execute_request",
        f"Content: {execute_msg['content']}",
        f"Reply parent: {execute_msg['header']['msg_id']}",
    ]
    assert execute_msg["header"]["msg_id"].startswith("test-session_")


def test_message_serialization_and_signing(capsys: pytest.CaptureFixture[str]) -> None:
    ns = run_example(SERIALIZATION_AND_SIGNING, "signing")
    serialized = ns["serialized"]
    assert len(serialized) == 6  # delimiter, signature and the four dict frames
    out = lines(capsys.readouterr().out)
    assert out[0] == "Serialized parts: 6"
    assert out[1] == f"Signature: {ns['signature'].hex()}"
    assert len(ns["signature"]) == 64
    assert out[2] == "Deserialized type: status"
    assert ns["deserialized"]["content"] == {"execution_state": "busy"}
    # the example's deserialize checked the signature: a tampered copy does not pass
    tampered = [*serialized[:-1], b'{"execution_state":"idle"}']
    with pytest.raises(ValueError, match="invalid signature"):
        ns["session"].deserialize(tampered)


def test_custom_message_types(capsys: pytest.CaptureFixture[str]) -> None:
    ns = run_example(CUSTOM_MESSAGE_TYPES, "custom")
    custom_msg = ns["custom_msg"]
    assert custom_msg["msg_type"] == "custom_request"
    assert custom_msg["metadata"] == {"priority": "high", "timeout": 30}
    assert lines(capsys.readouterr().out) == [f"Custom message: {custom_msg}"]
    session, handle = ns["session"], ns["handle_custom_reply"]
    handle(session.msg("custom_reply", {"status": "ok", "result": 42}, parent=custom_msg))
    handle(session.msg("custom_reply", {"status": "error", "error": "no file"}))
    handle(session.msg("other_reply", {"status": "ok"}))
    assert lines(capsys.readouterr().out) == [
        "Operation completed: 42",
        "Operation failed: no file",
    ]
    # and the custom message goes over the wire like any other
    kernel = Session(key=session.key)
    got = kernel.deserialize(session.serialize(custom_msg))
    assert got["content"] == custom_msg["content"]
    assert got["metadata"] == custom_msg["metadata"]


def test_message_buffer_handling_with_numpy(capsys: pytest.CaptureFixture[str]) -> None:
    ns = run_example(BUFFER_HANDLING, "buffers")
    assert lines(capsys.readouterr().out) == [
        "Message has 1 buffers",
        "Serialized message parts: 7",
        "Reconstructed data: [1 2 3 4 5]",
    ]
    assert np.array_equal(ns["reconstructed"], ns["data"])
    assert ns["deserialized"]["content"] == {"shape": [5], "dtype": str(ns["data"].dtype)}


# -- the worker thread: non-blocking recv ----------------------------------------------------


def test_thread_safe_session_usage_as_written(
    peer_ctx: zmq.Context[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    _peer, url = bind(peer_ctx, zmq.DEALER)
    ns = run_example(THREAD_SAFE_USAGE, "worker", url)
    assert not ns["worker"].is_alive()
    assert capsys.readouterr().out == ""  # stopped at once: nothing received, no error


def test_thread_safe_session_worker_receives_with_noblock(
    peer_ctx: zmq.Context[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    peer, url = bind(peer_ctx, zmq.DEALER)
    # The example's class, defined by running the example (its own worker stops at once).
    ns = run_example(THREAD_SAFE_USAGE, "worker", url)
    capsys.readouterr()
    received = threading.Event()

    class Recording(ns["SessionWorker"]):  # type: ignore[misc, name-defined, valid-type]
        def handle_message(self, msg: dict[str, Any]) -> None:
            super().handle_message(msg)
            received.set()

    worker = Recording({"username": "worker", "session": "worker-session"}, url)
    sender = Session(key=worker.session.key)  # the worker's Session() made a random key
    worker.start()
    try:
        sender.send(peer, "status", {"execution_state": "idle"})
        assert received.wait(TIMEOUT_MS / 1000), "the worker received nothing"
    finally:
        worker.running = False
        worker.join(TIMEOUT_MS / 1000)
    assert not worker.is_alive()
    assert lines(capsys.readouterr().out) == ["Received: status"]


def test_recv_noblock_with_nothing_waiting_raises_again(peer_ctx: zmq.Context[Any]) -> None:
    router, url = bind(peer_ctx, zmq.ROUTER)
    dealer = peer_ctx.socket(zmq.DEALER)
    dealer.linger = 0
    dealer.connect(url)
    session = Session()
    with pytest.raises(zmq.Again):
        session.recv(dealer, mode=zmq.NOBLOCK)
    with pytest.raises(zmq.Again):
        session.recv(router, mode=zmq.NOBLOCK)
    dealer.close()
    router.close()
