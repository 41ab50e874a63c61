"""KeySession over TLS: a platform served with a generated certificate, a client that trusts
its CA, one that trusts another CA, and bad TLS files refused at once by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from actorwire.actors.tls import TlsConfigError
from actorwire.adapters.keysquare import KeySession, KeySessionState, serve

from tests.support.tlscerts import make_ca, make_server_cert
from tests.support.waiting import wait_until


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    ca = make_ca(tmp_path, "ca")
    other = make_ca(tmp_path, "other-ca")
    cert = make_server_cert(tmp_path, ca)
    return ca.cert, other.cert, cert.cert, cert.key


def test_publish_and_subscribe_over_tls(tls_files: tuple[Path, Path, Path, Path]) -> None:
    ca, _, cert, key = tls_files
    server = serve(port=0, store_path=":memory:", certfile=cert, keyfile=key)
    try:
        url = f"127.0.0.1:{server.port}"
        with KeySession("demo", "demo-key", url, timeout=5, tls_ca_file=ca) as ks:
            got: list[str] = []
            ks.subscribe("Price", callback=lambda m: got.append(m.header.id))
            ks.publish("Price", "TLS1", {"bid": 1.0, "ask": 2.0})
            wait_until(lambda: got == ["TLS1"], timeout=5)
            assert ks.status() is KeySessionState.CONNECTED
    finally:
        server.stop()


def test_a_client_that_trusts_another_ca_does_not_connect(
    tls_files: tuple[Path, Path, Path, Path],
) -> None:
    _, other, cert, key = tls_files
    server = serve(port=0, store_path=":memory:", certfile=cert, keyfile=key)
    try:
        url = f"127.0.0.1:{server.port}"
        with pytest.raises(RuntimeError, match="did not connect"):
            KeySession("demo", "demo-key", url, timeout=2, tls_ca_file=other)
        with pytest.raises(RuntimeError, match="did not connect"):  # plaintext client
            KeySession("demo", "demo-key", url, timeout=2)
        assert server.stats()["registered"] == 0
    finally:
        server.stop()


def test_bad_tls_files_are_refused_at_once_by_name(
    tmp_path: Path, tls_files: tuple[Path, Path, Path, Path]
) -> None:
    ca, _, cert, _ = tls_files
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(TlsConfigError, match=r"nowhere\.pem"):
        KeySession("demo", "demo-key", "127.0.0.1:1", auto_start=False, tls_ca_file=missing)
    with pytest.raises(ValueError, match="both certfile and keyfile"):
        serve(port=0, store_path=":memory:", certfile=cert)
    with pytest.raises(TlsConfigError, match=r"ca\.pem"):
        serve(port=0, store_path=":memory:", certfile=cert, keyfile=ca)  # a cert, not a key
