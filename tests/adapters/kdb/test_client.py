"""GatewayClient over real sockets against the embedded gateway: snaps as DataFrames and
dicts, batched updates, subsnap, unsubscribe, error codes as GatewayError, a refused token
(FAILED after one attempt), and kills with updates flowing (the subscriber's keyed rows
equal the gateway's table after each resync; ids never go back)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from actorwire.actors import Backoff
from actorwire.actors.link import LinkState
from actorwire.adapters.kdb.client import GatewayClient, Subscription
from actorwire.adapters.kdb.config import GatewayConfig, parse_config
from actorwire.adapters.kdb.protocol import ErrorCode, GatewayError
from actorwire.adapters.kdb.server import GatewayServer, serve

from tests.support.waiting import wait_until

TOKEN = "test-token-123"
ROWS = [
    {"ccyPair": "EUR/USD", "val": 1.0842},
    {"ccyPair": "GBP/USD", "val": 1.2671},
    {"ccyPair": "USD/JPY", "val": 151.37},
]


def _config() -> GatewayConfig:
    return parse_config(
        {
            "gateway": {"auth": True, "tokens": [TOKEN], "update_interval": 0.05},
            "topics": [
                {
                    "name": "trade",
                    "keys": {"ccyPair": "symbol"},
                    "values": {"val": "float"},
                    "rows": ROWS,
                }
            ],
        }
    )


@pytest.fixture
def gateway() -> Iterator[GatewayServer]:
    server = serve(config=_config())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(gateway: GatewayServer) -> Iterator[GatewayClient]:
    c = GatewayClient(
        gateway.url,
        TOKEN,
        backoff=Backoff(min=0.05, max=0.2, factor=2.0, jitter=0.1),
        heartbeat_interval=1.0,
        heartbeat_deadline=5.0,
    )
    try:
        c.open()
        yield c
    finally:
        c.close()


def _table(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("ccyPair").reset_index(drop=True)


class _Keyed:
    """A subscriber keeping the rows by ccyPair (snapshot applied, then updates)."""

    def __init__(self) -> None:
        self.rows: dict[str, float] = {}
        self.lock = threading.Lock()
        self.batches = 0
        self.resynced = 0

    def apply(self, frame: pd.DataFrame) -> None:
        with self.lock:
            for pair, val in zip(frame["ccyPair"], frame["val"], strict=True):
                self.rows[pair] = val

    def __call__(self, update: pd.DataFrame, sub: Subscription) -> None:
        assert list(update.columns) == ["ccyPair", "val"]
        if sub.resynced:
            self.resynced += 1
        self.apply(update)
        self.batches += 1

    def frame(self) -> pd.DataFrame:
        with self.lock:
            return _table(
                pd.DataFrame({"ccyPair": list(self.rows), "val": list(self.rows.values())})
            )


def _gateway_table(gateway: GatewayServer) -> pd.DataFrame:
    return _table(pd.DataFrame(gateway.snapshot("trade")))


def test_snap_dataframe_and_dict(client: GatewayClient, gateway: GatewayServer) -> None:
    frame = client.snap("trade")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["ccyPair", "val"]
    pd.testing.assert_frame_equal(_table(frame), _table(pd.DataFrame(ROWS)))
    data = client.snap("trade", {"ccyPair": "GBP/USD"}, return_type="dict")
    assert data == {"ccyPair": ["GBP/USD"], "val": [1.2671]}
    assert "test-token" not in repr(client) and "test-token" not in repr(client.adapter)


def test_error_codes_surface_as_gateway_error(client: GatewayClient) -> None:
    with pytest.raises(GatewayError) as info:
        client.snap("nosuch")
    assert info.value.code == ErrorCode.NO_SUCH_TOPIC == 63
    with pytest.raises(GatewayError) as info:
        client.snap("trade", {"val": 1.0})
    assert info.value.code == ErrorCode.INVALID_SUB_TOPIC == 64
    with pytest.raises(GatewayError) as info:
        client.subscribe("nosuch", callback=lambda u, s: None)
    assert info.value.code == 63
    assert client.snap("trade", return_type="dict")["ccyPair"]  # the connection goes on


def test_subscribe_updates_then_unsubscribe(client: GatewayClient, gateway: GatewayServer) -> None:
    got: list[Any] = []
    sub = client.subscribe("trade", callback=lambda u, s: got.append(u), return_type="dict")
    gateway.upsert(
        "trade", [{"ccyPair": "EUR/USD", "val": 1.5}, {"ccyPair": "AUD/USD", "val": 0.6}]
    )
    wait_until(lambda: got, what="an update")
    rows = {p: v for u in got for p, v in zip(u["ccyPair"], u["val"], strict=True)}
    assert rows == {"EUR/USD": 1.5, "AUD/USD": 0.6}
    assert sub.updates == len(got) and not sub.resynced
    client.unsubscribe(sub)
    assert sub.ended
    wait_until(lambda: gateway.stats()["subscriptions"] == 0, what="the gateway's unsubscribe")
    seen = len(got)
    # A second subscription sees the next update: the first one would have by then.
    control: list[Any] = []
    client.subscribe("trade", callback=lambda u, s: control.append(u), return_type="dict")
    gateway.upsert("trade", [{"ccyPair": "EUR/USD", "val": 2.5}])
    wait_until(lambda: control, what="the control subscription's update")
    assert len(got) == seen


def test_subsnap_snapshot_and_updates(client: GatewayClient, gateway: GatewayServer) -> None:
    keyed = _Keyed()
    snapshot, sub = client.subsnap("trade", {"ccyPair": ["EUR/USD", "USD/JPY"]}, callback=keyed)
    assert isinstance(snapshot, pd.DataFrame)
    assert sorted(snapshot["ccyPair"]) == ["EUR/USD", "USD/JPY"]
    keyed.apply(snapshot)
    gateway.upsert(
        "trade", [{"ccyPair": "USD/JPY", "val": 150.0}, {"ccyPair": "GBP/USD", "val": 9.9}]
    )
    wait_until(lambda: keyed.rows.get("USD/JPY") == 150.0, what="the update")
    assert "GBP/USD" not in keyed.rows  # filtered out by the subTopic
    assert sub.updates >= 1


def test_wrong_token_fails_once_with_a_clear_reason(gateway: GatewayServer) -> None:
    states: list[tuple[LinkState, str]] = []
    bad = GatewayClient(
        gateway.url,
        "wrong-secret-token",
        backoff=Backoff(min=0.01, max=0.02, factor=2.0, jitter=0.0),
        state_listener=lambda s, why: states.append((s, why)),
    )
    try:
        with pytest.raises(PermissionError) as info:
            bad.open()
        assert "401" in str(info.value)
        assert "wrong-secret-token" not in str(info.value)
        wait_until(lambda: any(s is LinkState.FAILED for s, _ in states))
        assert gateway.stats()["auth_failures"] == 1
    finally:
        bad.close()
    assert not any("wrong-secret-token" in why for _, why in states)
    assert gateway.stats()["auth_failures"] == 1  # no redial


def test_qipc_without_pykx_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from actorwire.adapters.kdb import qipc

    monkeypatch.setattr(qipc, "available", lambda: False)
    with pytest.raises(ImportError, match=r"pip install 'actorwire\[kdb-qipc\]'"):
        GatewayClient("ws://127.0.0.1:1/", TOKEN, protocol="qipc")


def test_protocol_is_json_or_qipc() -> None:
    with pytest.raises(ValueError, match="'json' or 'qipc', got 'xml'"):
        GatewayClient("ws://127.0.0.1:1/", TOKEN, protocol="xml")


@pytest.mark.timeout(30)
def test_kills_resync_to_the_gateways_table(client: GatewayClient, gateway: GatewayServer) -> None:
    keyed = _Keyed()
    snapshot, sub = client.subsnap("trade", callback=keyed)
    keyed.apply(snapshot)
    adapter = client.adapter
    assert adapter is not None
    ids = [adapter.state.next_id]
    n = 0
    for round_ in range(1, 4):
        for _ in range(5):
            n += 1
            gateway.upsert("trade", [{"ccyPair": f"P{n % 7}", "val": float(n)}])
        gateway.kill()
        # Updates while the client is away: the resync's snapshot brings them.
        gateway.upsert("trade", [{"ccyPair": "EUR/USD", "val": 100.0 + round_}])
        wait_until(lambda r=round_: sub.resyncs == r, timeout=10, what=f"resync {round_}")  # type: ignore[misc]
        n += 1
        gateway.upsert("trade", [{"ccyPair": "GBP/USD", "val": float(n)}])
        wait_until(
            lambda: keyed.frame().equals(_gateway_table(gateway)),
            timeout=10,
            what=f"the subscriber's rows to equal the gateway's after kill {round_}",
        )
        pd.testing.assert_frame_equal(keyed.frame(), _gateway_table(gateway))
        assert keyed.resynced == round_
        ids.append(adapter.state.next_id)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert client.stats()["connections"] == 4
    assert not sub.ended


def test_token_from_the_environment(
    gateway: GatewayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KDB_INSIGHTS_TOKEN", TOKEN)
    with GatewayClient(gateway.url) as c:
        assert c.snap("trade", return_type="dict")["ccyPair"]
        assert TOKEN not in repr(c)


def test_awaitable_twins(gateway: GatewayServer) -> None:
    import asyncio
    import inspect

    assert inspect.signature(GatewayClient.asubscribe) == inspect.signature(GatewayClient.subscribe)
    got: list[Any] = []
    first = threading.Event()

    def on_update(update: Any, sub: Any) -> None:
        got.append(update)
        first.set()

    async def go() -> None:
        async with GatewayClient(gateway.url, TOKEN) as c:
            frame = await c.asnap("trade", {"ccyPair": "EUR/USD"})
            assert frame.to_dict("list") == {"ccyPair": ["EUR/USD"], "val": [1.0842]}
            snapshot, _ = await c.asubsnap("trade", callback=on_update)
            assert len(snapshot) == 3
            gateway.upsert("trade", [{"ccyPair": "EUR/USD", "val": 3.0}])
            sub2 = await c.asubscribe("trade", {"ccyPair": "EUR/USD"}, callback=lambda u, s: None)
            await c.aunsubscribe(sub2)
            assert sub2.ended
            with pytest.raises(GatewayError):
                await c.asnap("nope")
            assert await asyncio.to_thread(first.wait, 5)
        assert c.state is None  # closed by async with

    asyncio.run(go())
    assert got and got[0]["val"].tolist() == [3.0]


def test_wss_trusting_a_ca_file(tmp_path: Any) -> None:
    from tests.support.tlscerts import make_ca, make_server_cert

    ca = make_ca(tmp_path)
    cert = make_server_cert(tmp_path, ca)
    server = serve(config=_config(), certfile=cert.cert, keyfile=cert.key)
    try:
        assert server.url.startswith("wss://")
        with GatewayClient(server.url, TOKEN, ca_file=str(ca.cert)) as c:
            assert c.snap("trade", return_type="dict")["ccyPair"][0] == "EUR/USD"
        untrusted = GatewayClient(server.url, TOKEN, connect_timeout=1.0, max_attempts=1)
        with pytest.raises(ConnectionError):
            untrusted.open()
    finally:
        server.stop()


def test_an_error_on_a_live_subscription_reaches_the_listener() -> None:
    # A scripted gateway: it confirms the subscribe, then sends an error carrying the
    # subscription's id (as a gateway may when a live subscription goes wrong), then an update.
    import asyncio
    import json
    import uuid

    from websockets.asyncio.server import serve as ws_serve

    sid = str(uuid.uuid4())
    ready = threading.Event()
    stop = threading.Event()
    port: list[int] = []

    async def handler(ws: Any) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            if msg["type"] == "subscribe":
                mid = msg["id"]
                reply = {"type": "subscribed", "id": mid, "payload": {"subscription": sid}}
                await ws.send(json.dumps(reply))
                await ws.send(json.dumps({"type": "error", "id": mid, "error": 64}))
                update = {
                    "type": "update",
                    "id": mid,
                    "payload": {
                        "topic": "trade",
                        "data": {"ccyPair": ["EUR/USD"], "val": [1.5]},
                        "subscription": sid,
                    },
                }
                await ws.send(json.dumps(update))

    async def main() -> None:
        async with ws_serve(handler, "127.0.0.1", 0) as srv:
            port.append(srv.sockets[0].getsockname()[1])
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.02)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    errors: list[tuple[GatewayError, Subscription]] = []
    updates = threading.Event()
    try:
        assert ready.wait(5)
        with GatewayClient(
            f"ws://127.0.0.1:{port[0]}/", error_listener=lambda e, s: errors.append((e, s))
        ) as c:
            sub = c.subscribe("trade", callback=lambda u, s: updates.set())
            assert updates.wait(5)
            wait_until(lambda: len(errors) == 1, what="the error to reach the listener")
            error, which = errors[0]
            assert which is sub and error.code == ErrorCode.INVALID_SUB_TOPIC
            assert sub.gateway_errors == 1 and sub.last_gateway_error is error
            assert not sub.ended
            assert c.stats()["gateway_errors"] == 1
    finally:
        stop.set()
        thread.join(5)


def test_a_subscribe_left_unanswered_starts_the_connection_again() -> None:
    # A scripted gateway answers pings (websockets does) but not the first connection's
    # subscribe: without a deadline the subscription would wait for ever on a link that
    # looks CONNECTED.
    import asyncio
    import json
    import uuid

    from websockets.asyncio.server import serve as ws_serve

    connections: list[int] = []
    ready = threading.Event()
    port: list[int] = []
    stopped: list[asyncio.Event] = []

    async def handler(ws: Any) -> None:
        connections.append(1)
        first = len(connections) == 1
        async for raw in ws:
            msg = json.loads(raw)
            if msg["type"] == "subscribe" and not first:
                reply = {
                    "type": "subscribed",
                    "id": msg["id"],
                    "payload": {"subscription": str(uuid.uuid4())},
                }
                await ws.send(json.dumps(reply))

    async def main() -> None:
        stop = asyncio.Event()
        stopped.append(stop)
        async with ws_serve(handler, "127.0.0.1", 0) as srv:
            port.append(srv.sockets[0].getsockname()[1])
            ready.set()
            await stop.wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    states: list[tuple[LinkState, str]] = []
    try:
        assert ready.wait(5)
        with GatewayClient(
            f"ws://127.0.0.1:{port[0]}/",
            heartbeat_interval=0.1,
            heartbeat_deadline=5.0,
            request_deadline=0.3,
            backoff=Backoff(min=0.05, max=0.1, factor=2.0, jitter=0.1),
            state_listener=lambda s, why: states.append((s, why)),
        ) as c:
            sub = c.subscribe("trade", callback=lambda u, s: None, timeout=10)
            assert not sub.ended and len(connections) == 2
        assert any("no reply to request id" in why for _, why in states), states
    finally:
        loop.call_soon_threadsafe(stopped[0].set)
        thread.join(5)
