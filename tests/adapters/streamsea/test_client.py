"""The stream-sea client against the embedded server: 0.7.0's calls, the async iterator, the
callback form, consumer groups, and supervision through the server's faults."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from actorwire.actors.link import LinkState
from actorwire.adapters import streamsea
from actorwire.adapters.streamsea import (
    CredentialsError,
    FieldType,
    SchemaDefinition,
    StreamSeaConnection,
    Subscription,
    SubscriptionIterator,
    define_stream,
    describe_stream,
    get_schema_version,
    get_schema_versions_vector,
    publish,
    serve,
)
from actorwire.adapters.streamsea.server import StreamSeaServer

from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(60)

SECRET = "demo-secret"


@pytest.fixture
def server() -> Iterator[StreamSeaServer]:
    srv = serve(port=0)
    try:
        yield srv
    finally:
        srv.stop()


def creds(srv: Any, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "remote_host": "127.0.0.1",
        "remote_port": srv.port,
        "secure": False,
        "client_id": "demo",
        "client_secret": SECRET,
    }
    out.update(kw)
    return out


def boiler(name: str = "boiler") -> SchemaDefinition:
    schema = SchemaDefinition(name, 1)
    schema.add_field("temperature", FieldType.FLOAT)
    schema.add_field("site", FieldType.ENUM, ["north", "south"])
    return schema


def define(srv: StreamSeaServer, name: str = "boiler") -> None:
    response = define_stream(**creds(srv), stream=name, schema=boiler(name))
    assert response.status_code == 200


def message(i: int) -> dict[str, Any]:
    return {"temperature": float(i), "site": "north" if i % 2 else "south"}


# -- HTTP: every call of 0.7.0 ---------------------------------------------------------------


def test_every_http_call_works(server: StreamSeaServer) -> None:
    response = define_stream(**creds(server), stream="boiler", schema=boiler())
    assert response.status_code == 200 and response.ok
    described = describe_stream(**creds(server), stream="boiler")
    assert described is not None
    assert described.json_serialize() == boiler().json_serialize()
    assert describe_stream(**creds(server), stream="nope") is None
    vector = get_schema_versions_vector(**creds(server), streams=["boiler", "nope"])
    assert vector == [1, None]
    kw = creds(server)
    del kw["client_id"]
    assert get_schema_version(**kw, stream="boiler", client_id="demo") == 1
    assert get_schema_version(**kw, stream="nope", client_id="demo") is None
    assert publish(**creds(server), stream="boiler", payload=message(1)) is None
    assert server.stats()["publishes"] >= 1


def test_get_schema_version_takes_the_module_global_as_0_7_0_did(
    server: StreamSeaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    define(server)
    kw = creds(server)
    del kw["client_id"]
    with pytest.raises(TypeError, match="needs client_id"):
        get_schema_version(**kw, stream="boiler")
    monkeypatch.setattr(streamsea.client, "client_id", "demo")
    assert get_schema_version(**kw, stream="boiler") == 1


def test_publish_raises_on_refusal_naming_the_field(server: StreamSeaServer) -> None:
    define(server)
    with pytest.raises(ValueError, match="temperature"):
        publish(**creds(server), stream="boiler", payload={"temperature": "hot", "site": "north"})
    with pytest.raises(ValueError, match="site"):
        publish(**creds(server), stream="boiler", payload={"temperature": 1.0, "site": "east"})
    with pytest.raises(ValueError, match="404"):
        publish(**creds(server), stream="undefined", payload=message(1))


def test_wrong_credentials_raise_without_showing_the_secret(server: StreamSeaServer) -> None:
    define(server)
    wrong = "wrong-secret-123"
    for call in (
        lambda: publish(**creds(server, client_secret=wrong), stream="boiler", payload=message(1)),
        lambda: describe_stream(**creds(server, client_secret=wrong), stream="boiler"),
        lambda: get_schema_versions_vector(**creds(server, client_secret=wrong), streams=["x"]),
    ):
        with pytest.raises(CredentialsError) as info:
            call()
        assert wrong not in str(info.value) and wrong not in repr(info.value)
    response = define_stream(**creds(server, client_secret=wrong), stream="b2", schema=boiler("b2"))
    assert response.status_code == 401


def test_schema_definition_has_no_shared_default_and_nested_fields_work() -> None:
    a, b = SchemaDefinition("a", 1), SchemaDefinition("b", 1)
    a.add_field("x", FieldType.STRING)
    assert b.fields == []
    a.add_field("o", FieldType.OBJECT)
    a.add_child_field("y", FieldType.INTEGER, "o")
    assert a.json_serialize()["fields"][1]["fields"] == [{"name": "y", "type": "integer"}]


# -- the websocket ----------------------------------------------------------------------------


def conn_kw(srv: Any, **kw: Any) -> dict[str, Any]:
    out = creds(srv)
    out.update(heartbeat_interval=0.2, heartbeat_deadline=1.0)
    out.update(kw)
    return out


def test_async_iterator_gets_payloads_in_order(server: StreamSeaServer) -> None:
    define(server)

    async def run() -> list[Any]:
        async with StreamSeaConnection(**conn_kw(server)) as conn:
            it = await conn.subscribe("boiler")
            assert isinstance(it, SubscriptionIterator)
            for i in range(50):
                await asyncio.to_thread(
                    publish, **creds(server), stream="boiler", payload=message(i)
                )
            got = []
            async for payload in it:
                got.append(payload)
                if len(got) == 50:
                    break
            return got

    assert asyncio.run(run()) == [message(i) for i in range(50)]


def test_await_form_and_close_ends_iteration(server: StreamSeaServer) -> None:
    define(server)

    async def run() -> int:
        conn = await StreamSeaConnection(**conn_kw(server))
        it = await conn.subscribe("boiler")
        server.publish("boiler", message(1))
        first = await it.__anext__()
        assert first == message(1)
        await conn.aclose()
        with pytest.raises(StopAsyncIteration):
            await it.__anext__()
        return 1

    assert asyncio.run(run()) == 1


def test_callback_form_each_fanout_subscription_gets_every_message(
    server: StreamSeaServer,
) -> None:
    define(server)
    with StreamSeaConnection(**conn_kw(server)) as conn:
        seen: dict[str, list[Any]] = {"a": [], "b": []}
        a = conn.subscribe("boiler", callback=seen["a"].append)
        b = conn.subscribe("boiler", callback=seen["b"].append)
        assert isinstance(a, Subscription) and a.group_id != b.group_id
        for i in range(100):
            server.publish("boiler", message(i))
        wait_until(lambda: len(seen["a"]) == 100 and len(seen["b"]) == 100, 10)
        assert seen["a"] == seen["b"] == [message(i) for i in range(100)]
        a.unsubscribe()
        server.publish("boiler", message(100))
        wait_until(lambda: len(seen["b"]) == 101, 10)
        assert len(seen["a"]) == 100


def test_members_of_one_group_compete(server: StreamSeaServer) -> None:
    define(server)
    group = str(uuid.uuid4())
    with (
        StreamSeaConnection(**conn_kw(server)) as one,
        StreamSeaConnection(**conn_kw(server)) as two,
    ):
        got: list[Any] = []
        lock = threading.Lock()

        def take(payload: Any) -> None:
            with lock:
                got.append(payload)

        first = one.subscribe("boiler", group_id=group, callback=take)
        second = two.subscribe("boiler", group_id=group, callback=take)
        for i in range(200):
            server.publish("boiler", message(i))
        wait_until(lambda: len(got) >= 200, 10)
        assert sorted(p["temperature"] for p in got) == [float(i) for i in range(200)]
        assert first.received > 0 and second.received > 0
        assert first.received + second.received == 200


def test_callback_exceptions_are_counted_and_delivery_goes_on(server: StreamSeaServer) -> None:
    define(server)
    seen: list[Any] = []

    def flaky(payload: Any) -> None:
        seen.append(payload)
        if payload["temperature"] == 1.0:
            raise RuntimeError("boom")

    with StreamSeaConnection(**conn_kw(server)) as conn:
        sub = conn.subscribe("boiler", callback=flaky)
        for i in range(3):
            server.publish("boiler", message(i))
        wait_until(lambda: len(seen) == 3, 10)
        assert sub.errors == 1


def test_bad_arguments_raise_at_once(server: StreamSeaServer) -> None:
    with pytest.raises(TypeError, match="exactly one of client_secret or jwt"):
        StreamSeaConnection(remote_host="127.0.0.1", remote_port=server.port, client_id="demo")
    with StreamSeaConnection(**conn_kw(server)) as conn:
        with pytest.raises(ValueError, match="group_id must be a UUID"):
            conn.subscribe("boiler", group_id="not-a-uuid", callback=print)
        with pytest.raises(TypeError, match="stream must be a non-empty str"):
            conn.subscribe("", callback=print)
        with pytest.raises(TypeError, match="must be callable"):
            conn.subscribe("boiler", callback=42)  # type: ignore[call-overload]


def test_wrong_secret_fails_once_with_a_clear_reason(server: StreamSeaServer) -> None:
    wrong = "not-the-secret-42"
    conn = StreamSeaConnection(**conn_kw(server, client_secret=wrong))
    with pytest.raises(CredentialsError, match="Authentication unsuccessful") as info:
        conn.open()
    assert wrong not in str(info.value) and wrong not in repr(conn)
    assert conn.state is None  # closed after the refusal
    assert server.stats()["auth_failures"] == 1  # one try: no redial storm


def test_unreachable_server_raises_connection_error() -> None:
    srv = serve(port=0)
    port = srv.port
    srv.stop()
    conn = StreamSeaConnection(
        remote_host="127.0.0.1",
        remote_port=port,
        client_id="demo",
        client_secret=SECRET,
        connect_timeout=0.5,
    )
    with pytest.raises(ConnectionError, match="could not connect"):
        conn.open()


# -- supervision ------------------------------------------------------------------------------


def _collect(conn: StreamSeaConnection, stream: str) -> tuple[Subscription, list[Any]]:
    got: list[Any] = []
    return conn.subscribe(stream, callback=got.append), got


def test_kills_lose_nothing_and_repeat_nothing(server: StreamSeaServer) -> None:
    define(server)
    states: list[LinkState] = []
    with StreamSeaConnection(
        **conn_kw(server, state_listener=lambda s, _why: states.append(s))
    ) as conn:
        sub, got = _collect(conn, "boiler")
        n = 0
        for _ in range(5):
            for _ in range(40):
                server.publish("boiler", message(n))
                n += 1
            resumes = sub.resumes
            server.kill()
            for _ in range(40):  # while the client is away
                server.publish("boiler", message(n))
                n += 1
            wait_until(lambda r=resumes: sub.resumes > r, 10)  # type: ignore[misc]
        wait_until(lambda: len(got) >= n, 15)
        assert got == [message(i) for i in range(n)]
        assert sub.gaps == 0 and sub.resumes >= 5
        assert conn.stats()["connects"] >= 6
        assert LinkState.RECONNECTING in states


def test_silence_past_the_deadline_redials_and_resumes(server: StreamSeaServer) -> None:
    define(server)
    with StreamSeaConnection(**conn_kw(server)) as conn:
        _sub, got = _collect(conn, "boiler")
        server.publish("boiler", message(0))
        wait_until(lambda: len(got) == 1, 10)
        connects = conn.stats()["connects"]
        server.go_silent()
        server.publish("boiler", message(1))  # written nowhere while silent
        wait_until(lambda: conn.state is not LinkState.CONNECTED, 10)
        server.resume()
        wait_until(lambda: conn.stats()["connects"] > connects, 10)
        wait_until(lambda: len(got) == 2, 10)
        assert got == [message(0), message(1)]


def test_garbage_drops_the_connection_and_delivery_resumes(server: StreamSeaServer) -> None:
    define(server)
    with StreamSeaConnection(**conn_kw(server)) as conn:
        _sub, got = _collect(conn, "boiler")
        server.publish("boiler", message(0))
        wait_until(lambda: len(got) == 1, 10)
        server.send_garbage()
        server.publish("boiler", message(1))
        wait_until(lambda: conn.stats()["protocol_errors"] >= 1, 10)
        wait_until(lambda: len(got) == 2, 10)
        assert got == [message(0), message(1)]


def test_a_subscription_made_while_down_starts_when_the_link_is_up(
    server: StreamSeaServer,
) -> None:
    define(server)
    with StreamSeaConnection(**conn_kw(server)) as conn:
        server.go_silent()
        wait_until(lambda: conn.state is not LinkState.CONNECTED, 10)
        sub, got = _collect(conn, "boiler")  # returns at once: the link is down
        server.resume()
        wait_until(lambda: sub.confirmed.is_set(), 10)
        server.publish("boiler", message(7))
        wait_until(lambda: got == [message(7)], 10)


# -- JWT and TLS --------------------------------------------------------------------------


def _jwt_server(key: Any) -> StreamSeaServer:
    from actorwire.adapters.streamsea.config import ClientConfig, StreamSeaConfig
    from cryptography.hazmat.primitives import serialization

    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return serve(port=0, config=StreamSeaConfig(clients=(ClientConfig("demo", SECRET, pem),)))


@pytest.fixture(scope="module")
def rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_jwt_function_renews_an_expiring_token_and_nothing_is_lost(rsa_key: Any) -> None:
    import time

    import jwt

    srv = _jwt_server(rsa_key)
    tokens: list[str] = []

    def token() -> str:
        tokens.append(jwt.encode({"exp": int(time.time()) + 2}, rsa_key, algorithm="RS512"))
        return tokens[-1]

    try:
        define(srv)
        kw = conn_kw(srv, client_secret=None, jwt=token)
        with StreamSeaConnection(**kw) as conn:
            sub, got = _collect(conn, "boiler")
            srv.publish("boiler", message(0))
            wait_until(lambda: len(got) == 1, 10)
            # The server closes the connection at the token's expiry; the link redials
            # with a fresh token and the subscription resumes.
            wait_until(lambda: sub.resumes >= 1, 10)
            srv.publish("boiler", message(1))
            wait_until(lambda: len(got) == 2, 10)
            assert got == [message(0), message(1)] and len(tokens) >= 2
            assert all(t not in repr(conn) for t in tokens)
    finally:
        srv.stop()


def test_an_expired_static_jwt_ends_in_failed_with_the_reason(rsa_key: Any) -> None:
    import time

    import jwt

    srv = _jwt_server(rsa_key)
    try:
        define(srv)
        token = jwt.encode({"exp": int(time.time()) + 2}, rsa_key, algorithm="RS512")
        with StreamSeaConnection(**conn_kw(srv, client_secret=None, jwt=token)) as conn:
            _sub, _got = _collect(conn, "boiler")
            wait_until(lambda: conn.state is LinkState.FAILED, 10)
            history = conn._link.history() if conn._link else []
            assert "expired" in history[-1][1].lower()
            assert token not in history[-1][1]
            connects = conn.stats()["connects"]
            assert connects == 2  # refused once after the expiry: no redial storm
    finally:
        srv.stop()


def test_secure_connection_and_https_calls_with_a_ca_file(tmp_path: Any) -> None:
    from tests.support.tlscerts import make_ca, make_server_cert, require_openssl

    require_openssl()
    ca = make_ca(tmp_path)
    cert = make_server_cert(tmp_path, ca)
    srv = serve(port=0, certfile=cert.cert, keyfile=cert.key)
    try:
        kw = creds(srv, secure=True, ca_file=str(ca.cert))
        assert define_stream(**kw, stream="boiler", schema=boiler()).status_code == 200
        with StreamSeaConnection(**conn_kw(srv, secure=True, ca_file=str(ca.cert))) as conn:
            _sub, got = _collect(conn, "boiler")
            publish(**kw, stream="boiler", payload=message(3))
            wait_until(lambda: got == [message(3)], 10)
        untrusted = StreamSeaConnection(**conn_kw(srv, secure=True, connect_timeout=0.5))
        with pytest.raises(ConnectionError):
            untrusted.open()
    finally:
        srv.stop()


def test_a_refused_subscription_raises_and_is_not_made_again() -> None:
    from actorwire.adapters.streamsea.config import ClientConfig, StreamSeaConfig

    cfg = StreamSeaConfig(clients=(ClientConfig("demo", SECRET),), max_groups=1)
    srv = serve(port=0, config=cfg)
    try:
        define(srv)
        with StreamSeaConnection(**conn_kw(srv)) as conn:
            _first, got = _collect(conn, "boiler")
            with pytest.raises(streamsea.ProtocolError, match="subscribe refused"):
                conn.subscribe("boiler", callback=print)  # a second group: one too many
            assert conn.stats()["subscriptions"] == 1
            connects = conn.stats()["connects"]
            srv.kill()
            wait_until(lambda: conn.stats()["connects"] > connects, 10)
            srv.publish("boiler", message(1))
            wait_until(lambda: got == [message(1)], 10)
            assert srv.stats()["subscribe_refusals"] == 1  # not asked again
    finally:
        srv.stop()


class _PlainServer:
    """A stream-sea server without actorwire's extensions (no seq, no resume), on
    ``websockets``' asyncio server in a thread of its own: what the client meets in the
    wild."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.connections: set[Any] = set()
        self.subs: list[tuple[Any, int]] = []
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self) -> None:
        from websockets.asyncio.server import serve as ws_serve

        async def handler(ws: Any) -> None:
            import json

            self.connections.add(ws)
            try:
                async for text in ws:
                    msg = json.loads(text)
                    if msg["action"] == "authenticate":
                        await ws.send('{"id":1,"action":"authenticate","success":true}')
                    elif msg["action"] == "subscribe":
                        reply = {
                            "id": msg["id"],
                            "action": "subscription",
                            "success": True,
                            "streamName": msg["payload"],
                        }
                        await ws.send(json.dumps(reply))
                        self.subs.append((ws, msg["id"]))
            except Exception:  # a cut connection ends the handler
                pass
            finally:
                self.connections.discard(ws)
                self.subs = [(w, i) for w, i in self.subs if w is not ws]

        async def main() -> None:
            self.server = await ws_serve(handler, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()
            await self.server.serve_forever()

        asyncio.set_event_loop(self.loop)
        with contextlib.suppress(asyncio.CancelledError):
            self.loop.run_until_complete(main())

    def deliver(self, payload: Any) -> None:
        import json

        async def send() -> None:
            for ws, mid in list(self.subs):
                await ws.send(json.dumps({"id": mid, "action": "subscription", "payload": payload}))

        asyncio.run_coroutine_threadsafe(send(), self.loop).result(10)

    def cut(self) -> None:
        async def cut() -> None:
            for ws in list(self.connections):
                ws.transport.abort()

        asyncio.run_coroutine_threadsafe(cut(), self.loop).result(10)

    def stop(self) -> None:
        async def stop() -> None:
            self.server.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.thread.join(10)


def test_against_a_server_without_seqs_a_resume_counts_a_gap() -> None:
    plain = _PlainServer()
    try:
        kw = conn_kw(plain)
        with StreamSeaConnection(**kw) as conn:
            sub, got = _collect(conn, "boiler")
            plain.deliver({"n": 1})
            wait_until(lambda: got == [{"n": 1}], 10)
            plain.cut()
            wait_until(lambda: sub.resumes == 1 and len(plain.subs) == 1, 10)
            plain.deliver({"n": 2})
            wait_until(lambda: got == [{"n": 1}, {"n": 2}], 10)
            # It cannot know what it missed while away: counted and logged, never silent.
            assert sub.gaps == 1
            stats = conn.stats()
            assert stats["unknown_gaps"] == 1 and stats["missing_seq"] == 2
    finally:
        plain.stop()


def test_a_server_silent_during_the_login_is_redialled_until_it_answers(
    server: StreamSeaServer,
) -> None:
    define(server)
    with StreamSeaConnection(**conn_kw(server, connect_timeout=0.5)) as conn:
        _sub, got = _collect(conn, "boiler")
        server.go_silent()
        connects = conn.stats()["connects"]
        server.kill()  # the client redials into a server that answers no authenticate
        wait_until(lambda: conn.stats()["connects"] >= connects + 2, 10)  # login timed out
        assert conn.state is not LinkState.CONNECTED
        server.publish("boiler", message(5))
        server.resume()
        wait_until(lambda: conn.state is LinkState.CONNECTED, 10)
        wait_until(lambda: got == [message(5)], 10)
