"""smk-python-sdk 9.4.4 as a test peer: run under the SDK's venv, never imported by the suite.

``tests/support/smkpeer.py`` runs this script with the venv's python and reads the one JSON
line it prints. It imports only the SDK, the protobuf runtime the SDK's messages are made of
(for their text format, as the SDK's session logs them) and the standard library, and opens
no connection but to its own listener on 127.0.0.1.

Subcommands:

``encode``
    The frames the SDK writes, as hex, with the seq it stamps and the name its dispatch gives
    them. A ``StreamingAPIClient`` logs in to a recording listener (``Recorder``) and sends
    PING, answers the listener's HEARTBEAT, ``send()``s four orders and subscriptions and logs
    out; two more clients log in with a token and with ``account_sequence=7``.
``decode``
    Reads ``{"frames": [hex, ...]}`` (the argument, or stdin when it is ``-`` or missing). Each
    hex string holds any number of frames: the SDK's ``frame_decode_all`` splits them, each
    payload is parsed as a ``seto.Payload`` and handed to a real client's dispatch, and the
    name it fires the global handler with is reported with the message's text format.

A new subcommand is a function ``(args) -> dict`` registered in ``main``.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading

from google.protobuf import text_format
from smarkets.streaming_api import eto, seto
from smarkets.streaming_api.api import SIDE_BID, Session, SessionSettings, StreamingAPIClient
from smarkets.streaming_api.framing import (
    MIN_FRAME_SIZE,
    frame_decode_all,
    frame_encode,
    uleb128_decode,
)
from smarkets.streaming_api.session import Frame

HOST = "127.0.0.1"
SOCKET_TIMEOUT = 5.0
"""Seconds any socket here waits: the listener is local and answers at once."""
USERNAME = "demo"
PASSWORD = "demo-password"
TOKEN = "demo-token"
ACCOUNT_SEQUENCE = 7
SESSION = "sdk-driver-session"
LOGIN_RESET = 2
"""The ``reset`` of the listener's login_response: the next seq the client stamps."""


class DriverError(Exception):
    """The SDK did something this script does not expect; the message says what."""


# --- the recording listener -------------------------------------------------------------


def server_frame(seq, eto_type, **eto_fields):
    """One framed ETO payload from the listener, built with the SDK's own messages."""
    payload = seto.Payload()
    payload.type = seto.PAYLOAD_ETO
    payload.eto_payload.seq = seq
    payload.eto_payload.type = eto_type
    for name, values in eto_fields.items():
        for key, value in values.items():
            setattr(getattr(payload.eto_payload, name), key, value)
    buf = bytearray()
    frame_encode(buf, payload.SerializeToString())
    return bytes(buf)


class Recorder:
    """A listener on 127.0.0.1 that keeps every byte each connection sends and answers LOGIN
    (login_response), PING (PONG then HEARTBEAT) and LOGOUT (LOGOUT_CONFIRMATION)."""

    def __init__(self, connections):
        self.connections = connections
        self.streams = []
        self.errors = []
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(SOCKET_TIMEOUT)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="sdk-driver-recorder")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._thread.join(SOCKET_TIMEOUT * 2)
        self._listener.close()
        if self._thread.is_alive():
            raise DriverError("the recording listener did not finish")
        if self.errors:
            raise DriverError(f"the recording listener failed: {self.errors[0]}")

    def _serve(self):
        try:
            for _ in range(self.connections):
                conn, _addr = self._listener.accept()
                with conn:
                    conn.settimeout(SOCKET_TIMEOUT)
                    self.streams.append(self._record(conn))
        except Exception as exc:
            self.errors.append(repr(exc))

    def _record(self, conn):
        stream, pending, out_seq = bytearray(), b"", 1
        while True:
            data = conn.recv(65536)
            if not data:
                return bytes(stream)
            stream += data
            payloads, pending = frame_decode_all(pending + data)
            for data_payload in payloads:
                payload = seto.Payload()
                payload.ParseFromString(bytes(data_payload))
                replies = self._answer(payload)
                for eto_type, body in replies:
                    conn.sendall(server_frame(out_seq, eto_type, **body))
                    out_seq += 1

    @staticmethod
    def _answer(payload):
        if payload.type == seto.PAYLOAD_LOGIN:
            reply = {"session": SESSION, "reset": LOGIN_RESET}
            return [(eto.PAYLOAD_LOGIN_RESPONSE, {"login_response": reply})]
        kind = payload.eto_payload.type if payload.type == seto.PAYLOAD_ETO else None
        if kind == eto.PAYLOAD_PING:
            return [(eto.PAYLOAD_PONG, {}), (eto.PAYLOAD_HEARTBEAT, {})]
        if kind == eto.PAYLOAD_LOGOUT:
            return [(eto.PAYLOAD_LOGOUT, {"logout": {"reason": eto.LOGOUT_CONFIRMATION}})]
        return []


def split_frames(stream):
    """The frames (header and padding included) that make up ``stream``, checked against the
    SDK's ``frame_decode_all``."""
    frames, rest = [], bytes(stream)
    while rest:
        length, header = uleb128_decode(rest)
        size = max(header + length, MIN_FRAME_SIZE)
        frames.append(rest[:size])
        rest = rest[size:]
    payloads, remaining = frame_decode_all(bytes(stream))
    if remaining or len(payloads) != len(frames):
        raise DriverError(f"the stream does not split into whole frames: {bytes(stream).hex()}")
    return frames


# --- what the SDK's dispatch makes of a payload ------------------------------------------


def offline_client():
    """A client that never connects, and the list its global handler appends names to."""
    settings = SessionSettings(username=USERNAME, password=PASSWORD, host=HOST, port=1, ssl=False)
    client = StreamingAPIClient(Session(settings))
    names = []
    client.add_global_handler(lambda name, message: names.append(name))
    return client, names


def fields(message):
    """The set fields of ``message`` as JSON values (nested messages as objects, bytes as hex,
    enums as numbers); unknown fields are not fields."""
    out = {}
    for descriptor, value in message.ListFields():
        if descriptor.label == descriptor.LABEL_REPEATED:
            out[descriptor.name] = [_field_value(descriptor, item) for item in value]
        else:
            out[descriptor.name] = _field_value(descriptor, value)
    return out


def _field_value(descriptor, value):
    if descriptor.type == descriptor.TYPE_MESSAGE:
        return fields(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def has_unknown_fields(message):
    """Whether ``message`` or any message in it holds fields its schema does not know."""
    if len(message.UnknownFields()):
        return True
    for descriptor, value in message.ListFields():
        if descriptor.type != descriptor.TYPE_MESSAGE:
            continue
        items = value if descriptor.label == descriptor.LABEL_REPEATED else [value]
        if any(has_unknown_fields(item) for item in items):
            return True
    return False


def describe(client, names, data):
    """One payload as the SDK sees it: dispatch name, seq, text format, fields (or the error
    parsing it raised, as ``{"error": ...}``). The text is
    protobuf's ``MessageToString`` with strings as UTF-8 (its default escapes them in the SDK's
    protobuf 3.20 and not in 4.x and later: a difference of printing, not of the message)."""
    payload = seto.Payload()
    try:
        payload.ParseFromString(bytes(data))
    except Exception as exc:  # what the SDK's next_frame would raise out of read()
        return {"error": f"{type(exc).__name__}: {exc}", "payload": bytes(data).hex()}
    before = len(names)
    client._dispatch(Frame(bytes=bytes(data), protobuf=payload))
    if len(names) != before + 1:
        raise DriverError(f"dispatch fired the global handler {len(names) - before} times")
    return {
        "name": names[-1],
        "has_handler": names[-1] in client.callbacks,
        "seq": payload.eto_payload.seq,
        "text": text_format.MessageToString(payload, as_utf8=True),
        "fields": fields(payload),
        "unknown_fields": has_unknown_fields(payload),
        "initialized": payload.IsInitialized(),
        "reserialized": payload.SerializePartialToString().hex(),
    }


# --- encode -------------------------------------------------------------------------------


def settings_for(port, **kwargs):
    """Client settings for the recording listener (plain TCP, short timeout)."""
    return SessionSettings(host=HOST, port=port, ssl=False, socket_timeout=SOCKET_TIMEOUT, **kwargs)


def read_until(client, names, wanted):
    """``client.read()`` until ``wanted`` was dispatched (each read blocks at most the socket
    timeout, and the listener has already sent it)."""
    for _ in range(10):
        if wanted in names:
            return
        client.read()
    raise DriverError(f"{wanted} never dispatched; dispatched {names}")


def trading_session(port):
    """Log in, PING, answer a HEARTBEAT, send the orders and log out; the dispatched names."""
    client = StreamingAPIClient(Session(settings_for(port, username=USERNAME, password=PASSWORD)))
    names = []
    client.add_global_handler(lambda name, message: names.append(name))
    client.login()
    client.ping()
    client.flush()
    read_until(client, names, "eto.heartbeat")  # the answer is buffered with the next seq
    client.flush()
    order = seto.OrderCreate()
    order.side = SIDE_BID
    order.quantity = 10000
    order.price = 2500
    order.market_id = 100
    order.contract_id = 101
    order.reference = 42
    client.send(order)
    client.send(seto.OrderCancel(order_id=5))
    client.send(seto.MarketSubscribe(market_id=100))
    client.send(seto.OrderCancelAll())
    client.flush()
    client.logout()
    return names


def login_only(port, account_sequence=None, **credentials):
    """Log in (the listener answers) and log out."""
    session = Session(settings_for(port, **credentials), account_sequence=account_sequence)
    client = StreamingAPIClient(session)
    client.login()
    client.logout()


TRADING_FRAMES = (
    "login",
    "ping",
    "heartbeat",
    "order_create",
    "order_cancel",
    "market_subscribe",
    "order_cancel_all",
    "logout",
)
"""What the trading session writes, in order."""


def encode(_args):
    """The frames the SDK writes, by name: ``{"frames": {name: {hex, seq, name, ...}}}``."""
    with Recorder(connections=3) as recorder:
        dispatched = trading_session(recorder.port)
        login_only(recorder.port, token=TOKEN)
        credentials = {"username": USERNAME, "password": PASSWORD}
        login_only(recorder.port, account_sequence=ACCOUNT_SEQUENCE, **credentials)
    trading, token, resume = (split_frames(stream) for stream in recorder.streams)
    if len(trading) != len(TRADING_FRAMES):
        raise DriverError(f"expected {len(TRADING_FRAMES)} frames, the SDK wrote {len(trading)}")
    named = dict(zip(TRADING_FRAMES, trading, strict=True))
    named["login_token"] = token[0]
    named["login_resume"] = resume[0]
    client, names = offline_client()
    frames = {}
    for name, frame in named.items():
        (payload,), _ = frame_decode_all(frame)
        frames[name] = {"hex": frame.hex(), **describe(client, names, payload)}
    return {"frames": frames, "dispatched": dispatched}


# --- decode -------------------------------------------------------------------------------


def decode(args):
    """Each hex string's frames as the SDK decodes and names them, and the SDK's handler
    names: ``{"frames": [{"messages": [...], "remaining": hex}], "callbacks": [...]}``."""
    text = sys.stdin.read() if args.frames in (None, "-") else args.frames
    client, names = offline_client()
    out = []
    for blob in json.loads(text)["frames"]:
        payloads, remaining = frame_decode_all(bytes.fromhex(blob))
        messages = [describe(client, names, payload) for payload in payloads]
        out.append({"messages": messages, "remaining": bytes(remaining).hex()})
    return {"frames": out, "callbacks": list(StreamingAPIClient.CALLBACKS)}


def main(argv=None):
    """Run one subcommand and print its result as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("encode", help="the frames the SDK writes").set_defaults(run=encode)
    decoding = commands.add_parser("decode", help="frames as the SDK decodes and names them")
    decoding.add_argument("frames", nargs="?", help='{"frames": [hex, ...]}, or - for stdin')
    decoding.set_defaults(run=decode)
    args = parser.parse_args(argv)
    print(json.dumps(args.run(args), sort_keys=True))


if __name__ == "__main__":
    main()
