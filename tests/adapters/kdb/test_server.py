"""The embedded kdb Insights Service Gateway over real sockets on 127.0.0.1, spoken to by a raw
``websockets`` asyncio client in the spec's JSON (and websockets' sans-I/O client over a
blocking socket where pings must go unanswered): every request type, every error code by the
input that triggers it, response_id echoed, batched updates carrying only changed rows, a
large snap chunked and reassembled, bearer-token auth (and auth off), the query string, TLS,
the fault switches, pings and their timeout, and bad input with the gateway serving on."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from actorwire.actors.tls import client_context
from actorwire.adapters.kdb.config import GatewayConfig, load_config
from actorwire.adapters.kdb.protocol import (
    ClientConnectionState,
    Send,
    SnapResult,
    encode,
)
from actorwire.adapters.kdb.server import DEFAULT_PORT, GARBAGE, GatewayServer, serve
from actorwire.adapters.kdb.topics import Column, TopicSpec
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from tests.support.tlscerts import make_ca, make_server_cert
from tests.support.waiting import wait_until

HOST = "127.0.0.1"
WAIT = 5.0
"""Seconds a client waits for something that must come."""
QUIET = 0.3
"""Seconds "nothing arrives" must hold in a negative check."""
TOKEN = "demo-token"
BEARER = {"Sec-WebSocket-Protocol": f"Bearer {TOKEN}"}
QUOTE = TopicSpec(
    "quote",
    (Column("venue", "symbol"), Column("sym", "symbol")),
    (Column("px", "float"), Column("ts", "timestamp")),
    (
        {"venue": "X", "sym": "a", "px": 1.0, "ts": "2024-01-02T03:04:05Z"},
        {"venue": "Y", "sym": "a", "px": 2.0, "ts": "2024-01-02T03:04:06Z"},
    ),
)


def config(**changes: Any) -> GatewayConfig:
    """The packaged default config (token demo-token, topic trade) plus topic quote, with
    quick updates, and ``changes``."""
    base = load_config(None)
    fields: dict[str, Any] = {"topics": (*base.topics, QUOTE), "update_interval": 0.2}
    fields.update(changes)
    return dataclasses.replace(base, **fields)


@pytest.fixture
def servers() -> Iterator[Callable[..., GatewayServer]]:
    """Start gateways (keyword arguments as GatewayServer's, ``config`` defaulting to
    :func:`config`); each is stopped at the end."""
    started: list[GatewayServer] = []

    def start(cfg: GatewayConfig | None = None, **kwargs: Any) -> GatewayServer:
        server = serve(HOST, 0, cfg or config(), **kwargs)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def server(servers: Callable[..., GatewayServer]) -> GatewayServer:
    return servers()


class Client:
    """A raw websocket client speaking the spec's JSON."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 1

    async def send(self, obj: Any) -> None:
        await self.ws.send(obj if isinstance(obj, str | bytes) else json.dumps(obj))

    async def recv(self, timeout: float = WAIT) -> dict[str, Any]:
        reply = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        assert isinstance(reply, dict)
        return reply

    async def request(self, type: str, payload: Any = None, **extra: Any) -> dict[str, Any]:
        """Send a request with the next id; its (first) reply."""
        obj: dict[str, Any] = {"type": type, "id": self.next_id, **extra}
        if payload is not None:
            obj["payload"] = payload
        self.next_id += 1
        await self.send(obj)
        return await self.recv()

    async def quiet(self, seconds: float = QUIET) -> None:
        """Nothing arrives for ``seconds``."""
        with pytest.raises(TimeoutError):
            got = await asyncio.wait_for(self.ws.recv(), seconds)
            pytest.fail(f"expected nothing, got {got!r}")


@asynccontextmanager
async def client(
    server: GatewayServer, query: str = "?in=json&out=json", headers: Any = BEARER, **kw: Any
) -> AsyncIterator[Client]:
    async with connect(
        server.url + query, additional_headers=headers, open_timeout=WAIT, **kw
    ) as ws:
        yield Client(ws)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --------------------------------------------------------------------------- requests


def test_snap_whole_and_filtered_with_response_id(server: GatewayServer) -> None:
    assert server.url == f"ws://{HOST}:{server.port}/"

    async def go() -> None:
        async with client(server) as c:
            whole = await c.request("snap", {"topic": "trade"}, response_id={"mine": 1})
            assert whole == {
                "type": "snapped",
                "id": 1,
                "payload": {
                    "data": {
                        "ccyPair": ["EUR/USD", "GBP/USD", "USD/JPY"],
                        "val": [1.0842, 1.2671, 151.37],
                    }
                },
                "response_id": {"mine": 1},
            }
            some = await c.request(
                "snap", {"topic": "trade", "subTopic": {"ccyPair": ["USD/JPY", "EUR/USD"]}}
            )
            assert some["type"] == "snapped" and "response_id" not in some
            assert some["payload"]["data"] == {
                "ccyPair": ["EUR/USD", "USD/JPY"],
                "val": [1.0842, 151.37],
            }
            quote = await c.request("snap", {"topic": "quote", "subTopic": {"venue": "Y"}})
            assert quote["payload"]["data"] == {
                "venue": ["Y"],
                "sym": ["a"],
                "px": [2.0],
                "ts": ["2024-01-02T03:04:06.000000000"],
            }

    run(go())
    assert server.stats()["snaps"] == 3


def test_subscribe_updates_then_unsubscribe(server: GatewayServer) -> None:
    async def go() -> None:
        async with client(server) as c:
            sub = await c.request(
                "subscribe", {"topic": "trade", "subTopic": {"ccyPair": "EUR/USD"}}, response_id=7
            )
            assert sub["type"] == "subscribed" and sub["id"] == 1 and sub["response_id"] == 7
            sid = sub["payload"]["subscription"]
            assert str(uuid.UUID(sid)) == sid
            await c.quiet(0.3)  # no change, no update
            server.upsert("trade", [{"ccyPair": "EUR/USD", "val": 1.5}])
            server.upsert("trade", [{"ccyPair": "GBP/USD", "val": 9.0}])  # not for this filter
            update = await c.recv()
            assert update == {
                "type": "update",
                "id": 1,
                "payload": {
                    "topic": "trade",
                    "subTopic": {"ccyPair": "EUR/USD"},
                    "data": {"ccyPair": ["EUR/USD"], "val": [1.5]},
                    "subscription": sid,
                },
                "response_id": 7,
            }
            gone = await c.request("unsubscribe", {"subscription": sid}, response_id="u")
            assert gone == {
                "type": "unsubscribed",
                "id": 2,
                "payload": {"subscription": sid},
                "response_id": "u",
            }
            server.upsert("trade", [{"ccyPair": "EUR/USD", "val": 1.6}])
            await c.quiet(0.5)

    run(go())
    stats = server.stats()
    assert (stats["subscribes"], stats["unsubscribes"], stats["updates_sent"]) == (1, 1, 1)
    assert stats["subscriptions"] == 0


def test_subsnap_then_batched_updates_of_changed_rows_only(server: GatewayServer) -> None:
    async def go() -> None:
        async with client(server) as c:
            reply = await c.request("subsnap", {"topic": "trade"})
            assert reply["type"] == "subsnapped" and reply["id"] == 1
            assert reply["payload"]["data"]["ccyPair"] == ["EUR/USD", "GBP/USD", "USD/JPY"]
            sid = reply["payload"]["subscription"]
            # Within one interval: EUR twice, GBP once, USD/JPY to the value it has (no change).
            server.upsert("trade", {"ccyPair": ["EUR/USD", "GBP/USD"], "val": [1.1, 1.2]})
            server.upsert("trade", [{"ccyPair": "EUR/USD", "val": 1.3}])
            server.upsert("trade", [{"ccyPair": "USD/JPY", "val": 151.37}])
            update = await c.recv()
            assert update["type"] == "update" and update["payload"]["subscription"] == sid
            assert update["payload"]["data"] == {
                "ccyPair": ["EUR/USD", "GBP/USD"],
                "val": [1.3, 1.2],
            }
            await c.quiet()  # one batch, nothing after it

    run(go())


def test_a_large_snap_is_chunked_and_reassembles(servers: Callable[..., GatewayServer]) -> None:
    big = TopicSpec("big", (Column("k", "long"),), (Column("text", "string"),))
    server = servers(config(topics=(big,), snap_chunk_bytes=2048))
    rows = [{"k": i, "text": f"row {i} " + "x" * 40} for i in range(300)]
    server.upsert("big", rows)

    async def go() -> None:
        state = ClientConnectionState(max_size=2048)
        state.connect()
        mid, send = state.snap("big")
        async with client(server) as c:
            await c.send(encode(send.message))
            frames = 0
            while True:
                raw = await asyncio.wait_for(c.ws.recv(), WAIT)
                assert isinstance(raw, str) and len(raw) <= 2048
                frames += 1
                out = state.receive(raw)
                if out:
                    break
            assert frames > 5
            assert out == [
                SnapResult(mid, {"k": [r["k"] for r in rows], "text": [r["text"] for r in rows]})
            ]
            # The client state sends what it must and the connection serves on.
            assert not [o for o in out if isinstance(o, Send)]

    run(go())


# --------------------------------------------------------------------------- errors


ERRORS: list[tuple[str, list[Any], int]] = [
    ("no type", [{"id": 1, "payload": {"topic": "trade"}}], 20),
    ("no payload", [{"type": "snap", "id": 1}], 21),
    ("unknown type", [{"type": "snapshot", "id": 1, "payload": {"topic": "trade"}}], 22),
    ("payload not an object", [{"type": "snap", "id": 1, "payload": [1]}], 22),
    ("no id", [{"type": "snap", "payload": {"topic": "trade"}}], 28),
    ("id not a number", [{"type": "snap", "id": "one", "payload": {"topic": "trade"}}], 28),
    (
        "id not increasing",
        [
            {"type": "snap", "id": 5, "payload": {"topic": "trade"}},
            {"type": "snap", "id": 5, "payload": {"topic": "trade"}},
        ],
        29,
    ),
    ("type not a string", [{"type": 3, "id": 1, "payload": {"topic": "trade"}}], 61),
    ("topic not a string", [{"type": "snap", "id": 1, "payload": {"topic": 5}}], 61),
    (
        "subTopic value of the wrong type",
        [{"type": "snap", "id": 1, "payload": {"topic": "trade", "subTopic": {"ccyPair": 5}}}],
        61,
    ),
    ("no topic", [{"type": "subscribe", "id": 1, "payload": {}}], 62),
    ("no subscription", [{"type": "unsubscribe", "id": 1, "payload": {}}], 62),
    ("unknown topic", [{"type": "subsnap", "id": 1, "payload": {"topic": "nope"}}], 63),
    (
        "value column in subTopic",
        [{"type": "subscribe", "id": 1, "payload": {"topic": "trade", "subTopic": {"val": 1.0}}}],
        64,
    ),
    (
        "already subscribed",
        [
            {"type": "subscribe", "id": 1, "payload": {"topic": "trade"}},
            {"type": "subsnap", "id": 2, "payload": {"topic": "trade", "subTopic": {}}},
        ],
        42,
    ),
    (
        "not subscribed",
        [{"type": "unsubscribe", "id": 1, "payload": {"subscription": str(uuid.uuid4())}}],
        43,
    ),
]


@pytest.mark.parametrize(("what", "requests", "code"), ERRORS, ids=[e[0] for e in ERRORS])
def test_every_error_code_by_its_input(
    server: GatewayServer, what: str, requests: list[Any], code: int
) -> None:
    async def go() -> None:
        async with client(server) as c:
            for obj in requests[:-1]:
                await c.send(obj)
                assert (await c.recv())["type"] != "error"
            last = {**requests[-1], "response_id": ["r", 1]}
            await c.send(last)
            error = await c.recv()
            assert error["type"] == "error" and error["error"] == code, error
            expected_id = last.get("id") if code != 28 else None
            assert error["id"] == expected_id
            assert error["response_id"] == ["r", 1]
            assert isinstance(error["message"], str) and error["message"]
            # The connection serves on.
            ok = await c.request("snap", {"topic": "trade"})
            ok_id = ok["id"]
            assert ok["type"] in ("snapped", "error")
            if ok["type"] == "error":  # its id was not above the last one: take a higher one
                assert ok["error"] == 29
                await c.send({"type": "snap", "id": 100, "payload": {"topic": "trade"}})
                ok = await c.recv()
                ok_id = 100
            assert ok["type"] == "snapped" and ok["id"] == ok_id

    run(go())
    assert server.stats()["protocol_errors"] >= 1


# --------------------------------------------------------------------------- handshake


def test_wrong_or_missing_token_is_401_and_never_logged(
    server: GatewayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async def status(headers: Any) -> Response:
        with pytest.raises(InvalidStatus) as info:
            async with client(server, headers=headers):
                pass
        return info.value.response

    wrong = run(status({"Sec-WebSocket-Protocol": "Bearer not-the-token-x1"}))
    assert wrong.status_code == 401 and b"wrong bearer token" in wrong.body
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    missing = run(status(None))
    assert missing.status_code == 401 and b"no bearer token" in missing.body
    assert server.stats()["auth_failures"] == 2
    out = capsys.readouterr()
    assert "not-the-token-x1" not in out.out + out.err


def test_auth_off_lets_a_client_in_without_a_token(
    servers: Callable[..., GatewayServer],
) -> None:
    server = servers(config(auth=False, tokens=()))

    async def go() -> dict[str, Any]:
        async with client(server, query="", headers=None) as c:
            return await c.request("snap", {"topic": "trade"})

    assert run(go())["type"] == "snapped"


def test_any_path_and_the_default_formats(server: GatewayServer) -> None:
    async def go() -> dict[str, Any]:
        async with connect(
            f"ws://{HOST}:{server.port}/any/path?out=json",
            additional_headers=BEARER,
            open_timeout=WAIT,
        ) as ws:
            await ws.send(json.dumps({"type": "snap", "id": 1, "payload": {"topic": "trade"}}))
            return json.loads(await ws.recv())  # type: ignore[no-any-return]

    assert run(go())["type"] == "snapped"


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("?out=xml", b"out='xml': expected 'json' or 'qipc'"),
        ("?in=json&in=qipc", b"in is given 2 times, differently"),
    ],
)
def test_query_formats_other_than_json_or_qipc_are_400(
    server: GatewayServer, query: str, text: bytes
) -> None:
    async def go() -> Response:
        with pytest.raises(InvalidStatus) as info:
            async with client(server, query=query):
                pass
        return info.value.response

    response = run(go())
    assert response.status_code == 400 and text in response.body


@pytest.mark.parametrize("query", ["?in=qipc&out=json", "?in=json&out=qipc"])
def test_qipc_without_pykx_is_400_saying_what_to_install(
    server: GatewayServer, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actorwire.adapters.kdb import qipc

    monkeypatch.setattr(qipc, "available", lambda: False)

    async def go() -> Response:
        with pytest.raises(InvalidStatus) as info:
            async with client(server, query=query):
                pass
        return info.value.response

    response = run(go())
    assert response.status_code == 400
    assert b"qipc messages need pykx" in response.body
    assert b"pip install 'actorwire[kdb-qipc]'" in response.body


def test_tls(servers: Callable[..., GatewayServer], tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    cert = make_server_cert(tmp_path, ca)
    server = servers(certfile=cert.cert, keyfile=cert.key)
    assert server.tls and server.url == f"wss://{HOST}:{server.port}/"

    async def go() -> dict[str, Any]:
        async with client(server, ssl=client_context(ca.cert)) as c:
            return await c.request("snap", {"topic": "trade"})

    assert run(go())["type"] == "snapped"


# --------------------------------------------------------------------------- faults


def test_kill_drops_every_connection_and_serves_on(server: GatewayServer) -> None:
    async def go() -> None:
        async with client(server) as c:
            assert (await c.request("subscribe", {"topic": "trade"}))["type"] == "subscribed"
            await asyncio.to_thread(server.kill)
            with pytest.raises(ConnectionClosed) as info:
                await c.recv()
            assert info.value.rcvd is None  # no close frame: a crash
        assert server.stats()["subscriptions"] == 0
        async with client(server) as c:
            assert (await c.request("snap", {"topic": "trade"}))["type"] == "snapped"

    run(go())


def test_go_silent_then_resume(server: GatewayServer) -> None:
    async def go() -> None:
        async with client(server) as c:
            await c.request("subscribe", {"topic": "trade"})
            server.go_silent()
            await c.send({"type": "snap", "id": 2, "payload": {"topic": "trade"}})
            server.upsert("trade", [{"ccyPair": "EUR/USD", "val": 3.0}])
            await c.quiet(0.5)
            wait_until(lambda: server.stats()["updates_sent"] == 1, WAIT)  # sent into silence
            server.resume()
            server.upsert("trade", [{"ccyPair": "GBP/USD", "val": 4.0}])
            update = await c.recv()
            assert update["type"] == "update"
            assert update["payload"]["data"] == {"ccyPair": ["GBP/USD"], "val": [4.0]}

    run(go())


def test_send_garbage_reaches_every_websocket(server: GatewayServer) -> None:
    async def go() -> None:
        async with client(server) as a, client(server) as b:
            await a.request("snap", {"topic": "trade"})
            await b.request("snap", {"topic": "trade"})
            server.send_garbage()
            for c in (a, b):
                assert await asyncio.wait_for(c.ws.recv(), WAIT) == GARBAGE.decode()

    run(go())


@pytest.mark.parametrize(
    ("bad", "close_code"),
    [(b"\x00\x01binary", 1003), ("not json at all", 1008), ("[1, 2]", 1008)],
)
def test_bad_input_closes_that_connection_only(
    server: GatewayServer, bad: str | bytes, close_code: int
) -> None:
    async def go() -> None:
        async with client(server) as good, client(server) as c:
            await c.send(bad)
            error = await c.recv()
            assert (error["type"], error["id"], error["error"]) == ("error", None, 22)
            with pytest.raises(ConnectionClosed) as info:
                await c.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == close_code
            assert (await good.request("snap", {"topic": "trade"}))["type"] == "snapped"
        async with client(server) as c:
            assert (await c.request("snap", {"topic": "trade"}))["type"] == "snapped"

    run(go())
    assert server.stats()["protocol_errors"] == 1


def test_oversize_message_closes_1009(servers: Callable[..., GatewayServer]) -> None:
    server = servers(config(max_message_size=1024, snap_chunk_bytes=1024))

    async def go() -> None:
        async with client(server) as c:
            await c.send({"type": "snap", "id": 1, "payload": {"topic": "x" * 2000}})
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await c.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        async with client(server) as c:
            assert (await c.request("snap", {"topic": "trade"}))["type"] == "snapped"

    run(go())
    wait_until(lambda: server.stats()["protocol_errors"] == 1, WAIT)


def test_pings_then_ping_timeout(servers: Callable[..., GatewayServer]) -> None:
    """A client that never answers: pinged every ping_interval, closed (1011) at
    ping_timeout."""
    server = servers(config(ping_interval=0.1, ping_timeout=0.5))
    proto = ClientProtocol(parse_uri(server.url))
    request = proto.connect()
    request.headers["Sec-WebSocket-Protocol"] = f"Bearer {TOKEN}"
    proto.send_request(request)
    started = time.monotonic()
    with socket.create_connection((HOST, server.port), timeout=WAIT) as sock:
        sock.sendall(b"".join(proto.data_to_send()))  # then nothing: no pong either
        pings, close = 0, None
        while close is None:
            data = sock.recv(65536)
            if not data:
                break
            proto.receive_data(data)
            for event in proto.events_received():
                if isinstance(event, Response):
                    assert event.status_code == 101
                elif isinstance(event, Frame) and event.opcode is Opcode.PING:
                    pings += 1
                elif isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                    close = proto.close_rcvd
    assert close is not None and close.code == 1011 and "ping timeout" in close.reason
    assert pings >= 3
    assert time.monotonic() - started >= 0.5
    wait_until(lambda: server.stats()["ping_timeouts"] == 1, WAIT)


def test_upsert_from_python_checks_rows(server: GatewayServer) -> None:
    assert server.upsert("trade", {"ccyPair": ["AUD/USD"], "val": [0.66]}) == 1
    assert server.upsert("trade", [{"ccyPair": "AUD/USD", "val": 0.66}]) == 0
    with pytest.raises(ValueError, match="val"):
        server.upsert("trade", [{"ccyPair": "AUD/USD", "val": "x"}])
    with pytest.raises(ValueError, match="does not exist"):
        server.upsert("nope", [])
    assert server.snapshot("trade", {"ccyPair": "AUD/USD"}) == {
        "ccyPair": ["AUD/USD"],
        "val": [0.66],
    }


def test_constructs_from_a_config_path(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text('[gateway]\ntokens = ["t-1"]\n[[topics]]\nname = "a"\nkeys = { k = "long" }\n')
    server = GatewayServer(cfg)
    try:
        assert server.config.tokens == ("t-1",) and server.topics.names() == ["a"]
        assert "t-1" not in repr(server) and server.port == 0
    finally:
        server.stop()
    assert DEFAULT_PORT == 8500
