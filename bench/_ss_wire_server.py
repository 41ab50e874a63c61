"""The scripted stream-sea server of ``streamsea_fanout`` (``bench/streamsea.py``): it
writes pre-encoded deliveries as fast as the socket takes them, so that the row measures
the clients, not a server's publish loop.

``python -m bench._ss_wire_server STREAM_FILE TIMEOUT``. The file is what the bench made
once (untimed): a JSON header line (``auth``: the authenticate reply's text,
``subscribed``: the subscribe reply's text, ``subscribe_id``) and then the
delivery frames, websocket text frames, unmasked as a server's are, back to back. It
listens on 127.0.0.1 port 0 and prints ``port P``; takes one websocket (the upgrade by
websockets' sans-I/O ``ServerProtocol`` with no extensions, as the embedded server's);
answers the authenticate (id 1, the client's id and secret checked) and the subscribe (its
id must be the file's ``subscribe_id``, its stream ``ticks``), then prints ``subscribed``.
On a ``go`` line on stdin it writes the frames with one ``sendall`` per chunk of ``CHUNK``
bytes and prints ``published T0 T1`` (``time.monotonic()`` before the first and after the
last). Then it answers pings and the close until the client closes. Whenever stdin closes
it stops. Imports only websockets and the standard library: it starts fast, once a run.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time
from pathlib import Path
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

HOST = "127.0.0.1"
STREAM = "ticks"
CLIENT_ID, CLIENT_SECRET = "demo", "demo-secret"  # the embedded server's default client
CHUNK = 256 * 1024  # bytes a sendall
STARTUP_TIMEOUT = 30.0  # connect, handshake, authenticate and subscribe
READ_SIZE = 65536


class WireError(Exception):
    """The client did not do what a stream-sea client does, or the bench said otherwise."""


class _Closed(Exception):
    """The client closed the websocket (or the connection)."""


class _Stopped(Exception):
    """The server's stdin closed: the bench has given up on this run (or it is over)."""


def _wait(sock: socket.socket | None, timeout: float, what: str) -> str | None:
    """Wait for ``sock`` to be readable (None) or for a line on stdin (the line); raises
    _Stopped when stdin closes and TimeoutError saying ``what`` did not happen in time."""
    watch: list[Any] = [sys.stdin] if sock is None else [sock, sys.stdin]
    ready = select.select(watch, [], [], timeout)[0]
    if not ready:
        raise TimeoutError(f"{what} within {timeout}s")
    if sys.stdin in ready:
        line = sys.stdin.readline()
        if not line:
            raise _Stopped
        return line.strip()
    return None


class _Peer:
    """One websocket: bytes in, events out, answers (the 101, pongs, the close) written."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.proto = ServerProtocol(max_size=None)
        self.upgraded = False

    def read(self) -> list[str]:
        """One read: the text messages it completed; the handshake and control frames
        answered. Raises _Closed when the client closes, WireError when the handshake
        fails."""
        data = self.conn.recv(READ_SIZE)
        proto = self.proto
        if data:
            proto.receive_data(data)
        else:
            proto.receive_eof()
        texts: list[str] = []
        for event in proto.events_received():
            if isinstance(event, Request):
                response = proto.accept(event)
                proto.send_response(response)
                self.upgraded = response.status_code == 101
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                texts.append(str(event.data, "utf-8"))
        self.flush()
        if proto.handshake_exc is not None:
            raise WireError(f"the websocket handshake failed: {proto.handshake_exc}")
        if not data or proto.close_expected():
            raise _Closed
        return texts

    def flush(self) -> None:
        out = b"".join(self.proto.data_to_send())
        if out:
            self.conn.sendall(out)

    def send_text(self, text: str) -> None:
        self.proto.send_text(text.encode())
        self.flush()

    def message(self, what: str) -> dict[str, Any]:
        """The client's next message (pings answered meanwhile), a JSON object."""
        while True:
            if _wait(self.conn, STARTUP_TIMEOUT, f"no {what}") is not None:
                raise WireError(f"a line on stdin before the {what}")
            try:
                texts = self.read()
            except _Closed:
                raise WireError(f"the client closed the connection before its {what}") from None
            if len(texts) > 1:
                raise WireError(f"{len(texts)} messages at once where the {what} was expected")
            if texts:
                value = json.loads(texts[0])
                if not isinstance(value, dict):
                    raise WireError(f"the {what} is {texts[0]!r:.200}, not a JSON object")
                return value


def _handshake(peer: _Peer, header: dict[str, Any]) -> None:
    """Answer the authenticate and the subscribe as the embedded server does."""
    auth = peer.message("authenticate")
    payload = auth.get("payload")
    if auth.get("id") != 1 or auth.get("action") != "authenticate":
        raise WireError(f"expected the authenticate (id 1), got id {auth.get('id')!r}")
    if not isinstance(payload, dict) or (payload.get("clientId"), payload.get("clientSecret")) != (
        CLIENT_ID,
        CLIENT_SECRET,
    ):
        raise WireError(f"the authenticate is not client {CLIENT_ID!r} with its secret")
    peer.send_text(header["auth"])
    sub = peer.message("subscribe")
    if sub.get("action") != "subscribe" or sub.get("payload") != STREAM:
        raise WireError(
            f"expected a subscribe to {STREAM!r}, got action {sub.get('action')!r} "
            f"payload {sub.get('payload')!r:.100}"
        )
    if sub.get("id") != header["subscribe_id"]:
        raise WireError(
            f"the subscribe's id is {sub.get('id')!r}; the deliveries were framed for id "
            f"{header['subscribe_id']} (the first request after the authenticate)"
        )
    peer.send_text(header["subscribed"])


def serve(stream_path: Path, timeout: float) -> int:
    """The server process (the module docstring); 0 when the client closed or stdin did."""
    header_line, _, frames = stream_path.read_bytes().partition(b"\n")
    header = json.loads(header_line)
    try:
        with socket.create_server((HOST, 0)) as listener:
            print(f"port {listener.getsockname()[1]}", flush=True)
            if _wait(listener, STARTUP_TIMEOUT, "no client connected") is not None:
                raise WireError("a line on stdin before the client connected")
            conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = _Peer(conn)
            _handshake(peer, header)
            print("subscribed", flush=True)
            while (line := _wait(conn, timeout, "no go")) is None:
                try:
                    if peer.read():
                        raise WireError("a message from the client after its subscribe")
                except _Closed:
                    raise WireError("the client closed the connection before go") from None
            if line != "go":
                raise WireError(f"expected go on stdin, got {line!r}")
            view = memoryview(frames)
            sendall = conn.sendall
            t0 = time.monotonic()
            for at in range(0, len(view), CHUNK):
                sendall(view[at : at + CHUNK])
            t1 = time.monotonic()
            print(f"published {t0!r} {t1!r}", flush=True)
            while True:
                if _wait(conn, timeout, "the client did not close") is None:
                    peer.read()
    except (_Stopped, _Closed):
        return 0
    except (WireError, TimeoutError, OSError, ValueError) as exc:
        print(f"stream-sea wire server: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m bench._ss_wire_server STREAM_FILE TIMEOUT")
    sys.exit(serve(Path(sys.argv[1]), float(sys.argv[2])))
