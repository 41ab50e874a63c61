"""A blocking feed client on a raw socket, for tests that drive the FeedServer by hand
(``rcvbuf`` makes a client whose socket holds little, ``ssl`` one that speaks TLS)."""

from __future__ import annotations

import socket
import ssl as _ssl
import time

import pytest
from actorwire.adapters.feed import HOST, FeedCodec, Frame, Ok

__all__ = ["QUIET_TIMEOUT", "READ_TIMEOUT", "Client"]

READ_TIMEOUT = 5.0
QUIET_TIMEOUT = 0.3  # how long "no answer" must hold in negative checks


class Client:
    """Blocking socket client that decodes server frames with FeedCodec."""

    def __init__(
        self, port: int, *, rcvbuf: int | None = None, ssl: _ssl.SSLContext | None = None
    ) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connecting, so the window it offers stays small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(READ_TIMEOUT)
        try:
            sock.connect((HOST, port))
            self.port = sock.getsockname()[1]  # our end: the server logs it as the peer
            self.sock = sock if ssl is None else ssl.wrap_socket(sock, server_hostname=HOST)
        except BaseException:
            sock.close()
            raise
        self.codec = FeedCodec(role="client")
        self.pending: list[Frame] = []

    @property
    def peer(self) -> str:
        """This client as the server names it."""
        return f"{HOST}:{self.port}"

    def send(self, data: bytes) -> None:
        """Send raw bytes."""
        self.sock.sendall(data)

    def auth(self, token: str = "secret") -> None:
        """Authenticate and check the OK."""
        self.send(FeedCodec.encode_auth(token))
        assert self.recv() == Ok("auth")

    def recv(self, timeout: float = READ_TIMEOUT) -> Frame:
        """Return the next frame, waiting at most ``timeout``; raise on EOF or timeout."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no frame")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.codec.receive_data(chunk)
            self.pending.extend(self.codec.events())
        return self.pending.pop(0)

    def recv_n(self, n: int) -> list[Frame]:
        """Return the next ``n`` frames."""
        return [self.recv() for _ in range(n)]

    def expect_silence(self, timeout: float = QUIET_TIMEOUT) -> None:
        """Assert that nothing arrives within ``timeout``."""
        with pytest.raises(TimeoutError):
            frame = self.recv(timeout)
            pytest.fail(f"unexpected frame {frame!r}")

    def expect_closed(self, timeout: float = READ_TIMEOUT) -> None:
        """Assert that the server closes the connection (FIN or RST) within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return
            if not chunk:
                return

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()
