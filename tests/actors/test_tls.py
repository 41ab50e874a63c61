"""TLS contexts from files (actors/tls.py): verification on by default, errors that name the
bad file and never its contents, and a real handshake through the kit's TcpServer."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from actorwire.actors import ActorSystem
from actorwire.actors.tcpserver import ServerConnection, TcpServer
from actorwire.actors.tls import TlsConfigError, client_context, server_context

from tests.support.tlscerts import make_ca, make_server_cert, require_openssl
from tests.support.waiting import wait_until

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Files:
    ca: Path
    other_ca: Path
    cert: Path
    key: Path
    other_key: Path


@pytest.fixture
def files(tmp_path: Path) -> Files:
    ca = make_ca(tmp_path, "ca")
    other = make_ca(tmp_path, "other-ca")
    server = make_server_cert(tmp_path, ca)
    return Files(ca.cert, other.cert, server.cert, server.key, other.key)


class Echo:
    """Answers every read with the same bytes."""

    def __init__(self, conn: ServerConnection) -> None:
        self.conn = conn

    def on_data(self, data: bytes) -> None:
        self.conn.send(data)

    def on_closed(self, reason: str) -> None:
        pass


@pytest.fixture
def tls_server(files: Files) -> Iterator[TcpServer]:
    with ActorSystem("tls-test") as system:
        server = TcpServer(system, Echo, name="tls", ssl=server_context(files.cert, files.key))
        server.start()
        try:
            yield server
        finally:
            server.stop()


def closed_without_answer(sock: socket.socket) -> bool:
    """True when the peer closes (FIN or RST) before sending a byte."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def test_require_openssl_finds_the_tool() -> None:
    assert Path(require_openssl()).name == "openssl"


def test_a_client_context_verifies_the_server_and_its_hostname_by_default(files: Files) -> None:
    ctx = client_context(files.ca)
    assert ctx.verify_mode is ssl.CERT_REQUIRED
    assert ctx.check_hostname is True
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
    assert client_context(files.ca, check_hostname=False).check_hostname is False
    assert client_context(files.ca, check_hostname=False).verify_mode is ssl.CERT_REQUIRED
    assert client_context().verify_mode is ssl.CERT_REQUIRED  # the system's trust store


def test_data_crosses_a_tls_connection(tls_server: TcpServer, files: Files) -> None:
    ctx = client_context(files.ca)
    with (
        socket.create_connection((HOST, tls_server.port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        tls.sendall(b"over tls")
        assert tls.recv(100) == b"over tls"
    assert tls_server.stats.tls_failures == 0


def test_an_untrusted_server_or_a_wrong_hostname_fails_the_handshake(
    tls_server: TcpServer, files: Files
) -> None:
    for ctx, name, why in (
        (client_context(files.other_ca), HOST, "certificate verify failed"),
        (client_context(files.ca), "example.com", "Hostname mismatch"),
    ):
        with (
            socket.create_connection((HOST, tls_server.port), timeout=5) as raw,
            pytest.raises(ssl.SSLCertVerificationError, match=why),
        ):
            ctx.wrap_socket(raw, server_hostname=name)
    wait_until(lambda: tls_server.stats.tls_failures == 2, what="both failures counted")
    assert tls_server.stats.accepted == 0


def test_a_plaintext_client_is_refused_counted_and_the_server_serves_on(
    tls_server: TcpServer, files: Files
) -> None:
    with socket.create_connection((HOST, tls_server.port), timeout=5) as plain:
        plain.sendall(b"HELLO in the clear\n")
        assert closed_without_answer(plain)
    wait_until(lambda: tls_server.stats.tls_failures == 1, what="the failure counted")
    ctx = client_context(files.ca)
    with (
        socket.create_connection((HOST, tls_server.port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        tls.sendall(b"still here")
        assert tls.recv(100) == b"still here"


def test_a_missing_or_unreadable_file_is_named(tmp_path: Path, files: Files) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(TlsConfigError, match=r"CA file '.*nowhere\.pem' does not exist"):
        client_context(missing)
    with pytest.raises(TlsConfigError, match=r"certificate file '.*nowhere\.pem' does not"):
        server_context(missing, files.key)
    with pytest.raises(TlsConfigError, match=r"key file '.*nowhere\.pem' does not exist"):
        server_context(files.cert, missing)
    with pytest.raises(TlsConfigError, match="is not a file"):
        client_context(tmp_path)
    with pytest.raises(TypeError, match="must be a path"):
        client_context(42)  # type: ignore[arg-type]


def test_a_file_of_the_wrong_kind_is_named_and_its_contents_never_shown(
    tmp_path: Path, files: Files
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("TOP-SECRET-CONTENTS not a certificate\n")
    for call, name in (
        (lambda: client_context(junk), "junk.pem"),
        (lambda: client_context(files.key), "server.key"),  # a key, not a CA
        (lambda: server_context(junk, files.key), "junk.pem"),
        (lambda: server_context(files.cert, junk), "junk.pem"),
        (lambda: server_context(files.cert, files.ca), "ca.pem"),  # a cert, not a key
    ):
        with pytest.raises(TlsConfigError) as info:
            call()
        text = str(info.value)
        assert name in text
        assert "TOP-SECRET" not in text and "PRIVATE KEY" not in text and "BEGIN" not in text


def test_a_key_that_does_not_match_its_certificate_names_both(files: Files) -> None:
    with pytest.raises(TlsConfigError, match=r"other-ca\.key' does not match .*server\.pem"):
        server_context(files.cert, files.other_key)


def test_an_encrypted_key_needs_its_password_and_never_prompts(
    tmp_path: Path, files: Files
) -> None:
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        [require_openssl(), "pkey", "-in", str(files.key), "-aes256",
         "-passout", "pass:hunter2-password", "-out", str(encrypted)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    with pytest.raises(TlsConfigError, match=r"encrypted\.key' is encrypted: pass its password"):
        server_context(files.cert, encrypted)
    with pytest.raises(TlsConfigError, match="or the password is wrong") as info:
        server_context(files.cert, encrypted, password="not-it-password")
    assert "not-it-password" not in str(info.value)
    ctx = server_context(files.cert, encrypted, password="hunter2-password")
    assert "hunter2" not in repr(ctx)
