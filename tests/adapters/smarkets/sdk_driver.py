"""smk-python-sdk 9.4.4 as a test peer: run under the SDK's venv, never imported by the suite.

``tests/support/smkpeer.py`` runs this script with the venv's python and reads the one JSON
line it prints. It imports only the SDK, the protobuf runtime the SDK's messages are made of
(for their text format, as the SDK's session logs them) and the standard library, and opens
no connection but to its own listener on 127.0.0.1 or, for ``scenario``, to the exchange it
is given.

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
``scenario HOST PORT``
    Trades on a real exchange at HOST:PORT (actorwire's embedded one, with its default
    config) as an SDK user must: explicit ``flush()`` and ``read()``, a global handler and
    per-name handlers. ``demo`` logs in, pings, subscribes market 100 and rests a bid; a
    second session, ``demo2``, sells into it; both wait for the exchange's HEARTBEAT and
    answer it; ``demo`` rests another bid and cancels it; a
    login with a bad password is refused; both log out. Reports each step's outcome, every
    name each session dispatched with its seq, the bodies its handlers saw, its
    ``connected``/``inseq``/``buf_outseq`` before and after logout, how many frames it read
    and dropped (a seq gap or a duplicate) and the SDK's warnings (a gap is one).

A new subcommand is a function ``(args) -> dict`` registered in ``main``.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import select
import socket
import sys
import threading
import time

from google.protobuf import text_format
from smarkets.streaming_api import eto, seto
from smarkets.streaming_api.api import (
    GOOD_TIL_CANCELLED,
    SIDE_BID,
    SIDE_OFFER,
    Session,
    SessionSettings,
    StreamingAPIClient,
)
from smarkets.streaming_api.client import (
    READ_MODE_BUFFER_FROM_SOCKET,
    READ_MODE_DISPATCH_FROM_BUFFER,
)
from smarkets.streaming_api.exceptions import LoginError
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


# --- scenario -----------------------------------------------------------------------------

DEMO2_USERNAME = "demo2"
DEMO2_PASSWORD = "demo2-password"
BAD_PASSWORD = "not-demo-password"
MARKET_ID = 100
CONTRACT_ID = 101
QUANTITY = 10000
"""1.00 of payout in the SDK's units (1/10000 of a currency unit)."""
PRICE = 2500
"""25.00%: where ``demo`` bids and ``demo2`` sells."""
CANCEL_PRICE = 2000
"""Where ``demo`` rests the bid it cancels (the book is empty by then)."""
REFERENCES = {"rested": 1001, "crossed": 1002, "cancelled": 1003}
"""The ``reference`` of each order the scenario places."""
READ_DEADLINE = 10.0
"""Seconds a step waits for the exchange's answers (a local exchange answers in
milliseconds)."""
RECORDED = (
    "eto.login_response",
    "eto.pong",
    "eto.heartbeat",
    "eto.logout",
    "seto.market_quotes",
    "seto.contract_quotes",
    "seto.order_accepted",
    "seto.order_rejected",
    "seto.order_invalid",
    "seto.order_executed",
    "seto.order_cancelled",
    "seto.order_cancel_rejected",
    "seto.balance_changed",
)
"""The names a per-name handler records the body of (the ETO payload for ``eto.`` names)."""


class Peer:
    """One SDK session to the exchange: its client, and what its handlers saw."""

    def __init__(self, host, port, username, password):
        settings = SessionSettings(
            username=username,
            password=password,
            host=host,
            port=port,
            ssl=False,
            socket_timeout=SOCKET_TIMEOUT,
        )
        self.client = StreamingAPIClient(Session(settings))
        self.names = []  # every name dispatched, in order (the global handler)
        self.seqs = []  # the eto seq of each
        self.bodies = {name: [] for name in RECORDED}
        self.dropped = 0  # frames read that the session did not dispatch
        self.client.add_global_handler(self._dispatched)
        for name in RECORDED:
            self.client.add_handler(name, functools.partial(self._handled, name))

    def _dispatched(self, name, message):
        self.names.append(name)
        self.seqs.append(message.protobuf.eto_payload.seq)

    def _handled(self, name, message):
        module, kind = name.split(".")
        self.bodies[name].append(
            fields(message.eto_payload if module == "eto" else getattr(message, kind))
        )

    def mark(self):
        """How many bodies of each name were seen so far: ``new`` counts from here."""
        return {name: len(bodies) for name, bodies in self.bodies.items()}

    def new(self, mark, name):
        """The bodies of ``name`` seen since ``mark``."""
        return self.bodies[name][mark[name] :]

    def state(self):
        session = self.client.session
        return {
            "connected": session.connected,
            "inseq": session.inseq,
            "buf_outseq": session.buf_outseq,
        }

    def send(self, message):
        """Buffer ``message`` and flush it, as an SDK user does."""
        self.client.send(message)
        self.client.flush()

    def read_until(self, what, done):
        """Read and dispatch until ``done()``; DriverError after READ_DEADLINE seconds."""
        deadline = time.monotonic() + READ_DEADLINE
        while not done():
            if self.client.session.buffered_incoming_payloads:
                self.dispatch_buffered()
                continue
            if not self.client.session.connected:
                raise DriverError(f"disconnected waiting for {what}; dispatched {self.names}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise DriverError(
                    f"{what} not read within {READ_DEADLINE}s; dispatched {self.names}"
                )
            readable, _, _ = select.select([self.client.raw_socket], [], [], left)
            if readable:
                self.client.read(READ_MODE_BUFFER_FROM_SOCKET)
                self.dispatch_buffered()

    def dispatch_buffered(self):
        """Dispatch every frame read so far, then ``flush()``: the SDK answers a HEARTBEAT
        by buffering one, which leaves on the next flush.

        A plain ``read()`` stops dispatching at the first frame the session drops (a seq
        gap, a duplicate) and leaves the rest until the next ``read()``, which first waits
        for more bytes; dispatching from the buffer until it is empty reaches them, and
        counts the dropped frames (``dropped``)."""
        session = self.client.session
        while session.buffered_incoming_payloads:
            before = len(session.buffered_incoming_payloads)
            dispatched = self.client.read(READ_MODE_DISPATCH_FROM_BUFFER)
            self.dropped += before - len(session.buffered_incoming_payloads) - dispatched
        self.client.flush()

    def read_new(self, mark, *names):
        """Read until one more body of each of ``names`` arrived since ``mark``."""
        self.read_until(" and ".join(names), lambda: all(self.new(mark, name) for name in names))

    def report(self):
        return {
            "names": self.names,
            "seqs": self.seqs,
            "bodies": self.bodies,
            "dropped": self.dropped,
        }


def order(side, price, reference):
    """A good-til-cancelled limit order for QUANTITY of the scenario's contract."""
    return seto.OrderCreate(
        side=side,
        quantity=QUANTITY,
        price=price,
        tif=GOOD_TIL_CANCELLED,
        market_id=MARKET_ID,
        contract_id=CONTRACT_ID,
        reference=reference,
    )


class WarningLog(logging.Handler):
    """The SDK's warnings (a sequence gap, a send buffer cleared): logger, template and the
    integer arguments only, since a cleared buffer's bytes may hold a LOGIN."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        ints = [a for a in record.args or () if isinstance(a, int)]
        self.records.append({"logger": record.name, "message": str(record.msg), "ints": ints})


class Scenario:
    """The steps, run in order; after a step fails, those that need it are skipped."""

    def __init__(self, host, port):
        self.demo = Peer(host, port, USERNAME, PASSWORD)
        self.demo2 = Peer(host, port, DEMO2_USERNAME, DEMO2_PASSWORD)
        self.bad = Peer(host, port, USERNAME, BAD_PASSWORD)
        self.steps = {}
        self.orders = {}
        self.states = {}
        self.failed = None

    def run(self, name, step, always=False):
        if self.failed is not None and not always:
            self.steps[name] = {"skipped": f"{self.failed} failed"}
            return
        try:
            step()
        except Exception as exc:
            outcome = {"error": type(exc).__name__, "message": str(exc)}
            for attribute in ("reason", "reason_msg"):
                if hasattr(exc, attribute):
                    outcome[attribute] = getattr(exc, attribute)
            self.steps[name] = outcome
            if name != "bad_login":
                self.failed = self.failed or name
        else:
            self.steps[name] = "ok"

    def login(self):
        self.demo.client.login()

    def ping(self):
        mark = self.demo.mark()
        self.demo.client.ping()
        self.demo.client.flush()
        self.demo.read_new(mark, "eto.pong")

    def subscribe(self):
        mark = self.demo.mark()
        self.demo.send(seto.MarketSubscribe(market_id=MARKET_ID))
        self.demo.read_new(mark, "seto.market_quotes")

    def rest_order(self):
        mark = self.demo.mark()
        self.demo.send(order(SIDE_BID, PRICE, REFERENCES["rested"]))
        # The quotes follow: the bid now rests on the book demo is subscribed to.
        self.demo.read_new(mark, "seto.order_accepted", "seto.contract_quotes")
        self.orders["rested"] = self.demo.new(mark, "seto.order_accepted")[0]["order_id"]

    def cross(self):
        self.demo2.client.login()
        mark2, mark = self.demo2.mark(), self.demo.mark()
        self.demo2.send(order(SIDE_OFFER, PRICE, REFERENCES["crossed"]))
        self.demo2.read_new(
            mark2, "seto.order_accepted", "seto.order_executed", "seto.balance_changed"
        )
        self.orders["crossed"] = self.demo2.new(mark2, "seto.order_accepted")[0]["order_id"]
        # demo, the resting side: its execution, its balance and the quotes of the trade.
        self.demo.read_new(mark, "seto.order_executed", "seto.balance_changed")
        self.demo.read_until(
            "seto.contract_quotes with the execution",
            lambda: any(q.get("executions") for q in self.demo.new(mark, "seto.contract_quotes")),
        )

    def heartbeat(self):
        # Both sessions have been quiet since the trade: the exchange sends each a HEARTBEAT
        # (after heartbeat_interval, 5 s by default). The SDK answers one by buffering a
        # HEARTBEAT, which leaves on the read loop's flush.
        for peer in (self.demo2, self.demo):
            mark = peer.mark()
            peer.read_new(mark, "eto.heartbeat")

    def cancel(self):
        mark = self.demo.mark()
        self.demo.send(order(SIDE_BID, CANCEL_PRICE, REFERENCES["cancelled"]))
        self.demo.read_new(mark, "seto.order_accepted")
        order_id = self.demo.new(mark, "seto.order_accepted")[0]["order_id"]
        self.orders["cancelled"] = order_id
        self.demo.send(seto.OrderCancel(order_id=order_id))
        self.demo.read_new(mark, "seto.order_cancelled")
        # Two quotes: the bid resting, then the book without it.
        self.demo.read_until(
            "the seto.contract_quotes of the rest and the cancel",
            lambda: len(self.demo.new(mark, "seto.contract_quotes")) >= 2,
        )

    def bad_login(self):
        try:
            self.bad.client.login()
        except LoginError:
            self.states["bad_login"] = self.bad.state()
            raise
        raise DriverError("a login with a bad password was not refused")

    def logout(self, peer, label):
        def step():
            self.states[label] = {"before_logout": peer.state()}
            try:
                peer.client.logout()
            finally:
                self.states[label]["final"] = peer.state()

        return step

    def __call__(self):
        self.run("login", self.login)
        self.run("ping", self.ping)
        self.run("subscribe", self.subscribe)
        self.run("rest_order", self.rest_order)
        self.run("cross", self.cross)
        self.run("heartbeat", self.heartbeat)
        self.run("cancel", self.cancel)
        self.run("bad_login", self.bad_login, always=True)
        self.run("logout_demo", self.logout(self.demo, "demo"), always=True)
        if self.demo2.client.session.connected:
            self.run("logout_demo2", self.logout(self.demo2, "demo2"), always=True)
        else:
            self.steps["logout_demo2"] = {"skipped": "demo2 is not connected"}
        sessions = {"demo": self.demo, "demo2": self.demo2, "bad_login": self.bad}
        return {
            "steps": self.steps,
            "orders": self.orders,
            "sessions": {
                label: {**peer.report(), **self.states.get(label, {})}
                for label, peer in sessions.items()
            },
            "executions": {
                label: [
                    {k: e.get(k) for k in ("order_id", "price", "quantity", "side")}
                    for e in peer.bodies["seto.order_executed"]
                ]
                for label, peer in sessions.items()
            },
            "balances": {
                label: peer.bodies["seto.balance_changed"] for label, peer in sessions.items()
            },
        }


def scenario(args):
    """Trade on the exchange at ``args.host``:``args.port`` with the SDK (see the module's
    docstring); what happened, as one JSON object."""
    warnings = WarningLog()
    sdk_log = logging.getLogger("smarkets")
    sdk_log.addHandler(warnings)
    try:
        result = Scenario(args.host, args.port)()
    finally:
        sdk_log.removeHandler(warnings)
    return {**result, "sdk_warnings": warnings.records}


def main(argv=None):
    """Run one subcommand and print its result as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("encode", help="the frames the SDK writes").set_defaults(run=encode)
    decoding = commands.add_parser("decode", help="frames as the SDK decodes and names them")
    decoding.add_argument("frames", nargs="?", help='{"frames": [hex, ...]}, or - for stdin')
    decoding.set_defaults(run=decode)
    trading = commands.add_parser("scenario", help="trade on an exchange at HOST PORT")
    trading.add_argument("host")
    trading.add_argument("port", type=int)
    trading.set_defaults(run=scenario)
    args = parser.parse_args(argv)
    print(json.dumps(args.run(args), sort_keys=True))


if __name__ == "__main__":
    main()
