"""The feed adapter over TLS, with certificates made by openssl for the test: a link delivers
every frame through a server restart, a link that trusts another CA keeps redialling (an
untrusted server is not a refused login), and a plaintext client is refused and counted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from actorwire.actors import ActorSystem
from actorwire.actors.link import LinkState
from actorwire.actors.tls import TlsConfigError, client_context
from actorwire.adapters.feed import FeedAdapter, FeedCodec, FeedServer, Pong

from tests.integration.test_link import Harness
from tests.support.feedclient import Client
from tests.support.tlscerts import make_ca, make_server_cert
from tests.support.waiting import wait_until


@dataclass(frozen=True)
class Files:
    ca: Path
    other_ca: Path
    cert: Path
    key: Path


@pytest.fixture
def files(tmp_path: Path) -> Files:
    ca = make_ca(tmp_path, "ca")
    other = make_ca(tmp_path, "other-ca")
    server = make_server_cert(tmp_path, ca)
    return Files(ca.cert, other.cert, server.cert, server.key)


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    with ActorSystem("feed-tls-test") as sys_:
        yield sys_


@pytest.fixture
def server(files: Files) -> Iterator[FeedServer]:
    with FeedServer(streams=("A",), certfile=files.cert, keyfile=files.key) as srv:
        yield srv


def test_a_link_over_tls_delivers_every_frame_across_a_restart(
    system: ActorSystem, server: FeedServer, files: Files
) -> None:
    assert server.tls
    h = Harness(system, server, adapter=FeedAdapter(server.port, cafile=files.ca)).start("A")
    try:
        server.publish("A", 50)
        h.expect(50)
        server.kill()
        server.publish("A", 5)
        server.restart()  # redialled and logged in over TLS again
        assert h.link.wait_for(LinkState.CONNECTED, 5), h.link.history()[-3:]
        server.publish("A", 5)
        h.expect(60)
        assert server.tls_failures == 0
        assert server.server_stats()["accepted"] >= 2  # (more if a heartbeat cut one)
    finally:
        h.link.close()


def test_a_link_that_trusts_another_ca_keeps_redialling_with_a_clear_error(
    system: ActorSystem, server: FeedServer, files: Files
) -> None:
    h = Harness(system, server, adapter=FeedAdapter(server.port, cafile=files.other_ca))
    h.link.start()
    try:
        wait_until(lambda: h.link.status()["attempts"] >= 3, 10, what="three dials")
        reasons = [r for s, r in h.link.history() if s is LinkState.RECONNECTING]
        assert reasons, h.link.history()
        assert all("certificate verify failed" in r for r in reasons), reasons
        assert h.link.state in (LinkState.RECONNECTING, LinkState.CONNECTING)
        assert LinkState.FAILED not in h.seen_states()  # not a refused login
        assert LinkState.CONNECTED not in h.seen_states()
        server.wait_for(lambda: server.tls_failures >= 1)
        assert server.auth_failures == 0
        assert server.server_stats()["accepted"] == 0
    finally:
        h.link.close()


def test_a_plaintext_client_is_refused_and_counted_and_the_server_serves_on(
    server: FeedServer, files: Files
) -> None:
    plain = Client(server.port)
    try:
        plain.send(FeedCodec.encode_auth("secret"))
        plain.expect_closed()
    finally:
        plain.close()
    server.wait_for(lambda: server.tls_failures == 1)
    assert server.auth_failures == 0 and server.garbage_received == 0
    assert server.connections() == 0
    secure = Client(server.port, ssl=client_context(files.ca))
    try:
        secure.auth()
        secure.send(FeedCodec.encode_ping(7))
        assert secure.recv() == Pong(7)
    finally:
        secure.close()


def test_tls_settings_are_checked_at_once_and_named(tmp_path: Path, files: Files) -> None:
    missing = tmp_path / "absent.pem"
    with pytest.raises(ValueError, match="both certfile and keyfile; got only certfile"):
        FeedServer(certfile=files.cert)
    with pytest.raises(ValueError, match="got only keyfile"):
        FeedServer(keyfile=files.key)
    with pytest.raises(TlsConfigError, match=r"absent\.pem"):
        FeedServer(certfile=missing, keyfile=files.key)
    with pytest.raises(TlsConfigError, match=r"absent\.pem"):
        FeedAdapter(1, cafile=missing)
    adapter = FeedAdapter(1, token="tls-token-value", cafile=files.ca)
    assert repr(adapter) == "FeedAdapter(127.0.0.1:1, tls)"
    assert not FeedServer().tls
