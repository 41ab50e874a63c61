"""Kernel connection info: the five ports, the address, the transport and the signing key.

Reads and writes the JSON connection file a Jupyter kernel is started with. The key is held
as bytes and never appears in a repr, a log line or an exception message.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CHANNELS", "ConnectionInfo", "free_ports", "write_connection_file"]

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
"""The five kernel channels, named as in the connection file's ``<name>_port`` keys."""

_TRANSPORTS = ("tcp", "ipc")


def _port(owner: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"{owner}: {name} must be a port number 1..65535, got {value!r}")
    return value


@dataclass(frozen=True)
class ConnectionInfo:
    """Where a kernel listens and how its messages are signed (the connection file's content)."""

    shell_port: int
    iopub_port: int
    stdin_port: int
    control_port: int
    hb_port: int
    ip: str = "127.0.0.1"
    transport: str = "tcp"
    signature_scheme: str = "hmac-sha256"
    kernel_name: str = ""
    key: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        for channel in CHANNELS:
            _port("connection info", f"{channel}_port", getattr(self, f"{channel}_port"))
        if self.transport not in _TRANSPORTS:
            raise ValueError(
                f"connection info: transport must be one of {_TRANSPORTS}, got {self.transport!r}"
            )
        if not isinstance(self.ip, str) or not self.ip:
            raise ValueError(f"connection info: ip must be a non-empty string, got {self.ip!r}")
        scheme = self.signature_scheme
        if not isinstance(scheme, str) or not scheme.startswith("hmac-"):
            raise ValueError(
                f"connection info: signature_scheme must look like 'hmac-sha256', got {scheme!r}"
            )
        if scheme[5:] not in hashlib.algorithms_available:
            raise ValueError(
                f"connection info: signature_scheme {scheme!r} names an unknown hash function"
            )
        if not isinstance(self.key, bytes):
            raise TypeError(
                f"connection info: key must be bytes, got {type(self.key).__name__} (value hidden)"
            )

    @classmethod
    def from_dict(cls, info: Mapping[str, Any]) -> ConnectionInfo:
        """Build from a connection-file dict (extra keys are ignored; ``key`` may be str)."""
        if not isinstance(info, Mapping):
            raise TypeError(f"connection_info must be a dict, got {type(info).__name__}")
        missing = [f"{c}_port" for c in CHANNELS if f"{c}_port" not in info]
        if missing:
            raise ValueError(f"connection info is missing {', '.join(missing)}")
        key = info.get("key", b"")
        if isinstance(key, str):
            key = key.encode()
        elif not isinstance(key, bytes):
            raise TypeError(
                f"connection info: key must be str or bytes, got {type(key).__name__} "
                "(value hidden)"
            )
        return cls(
            **{f"{c}_port": info[f"{c}_port"] for c in CHANNELS},
            ip=info.get("ip", "127.0.0.1"),
            transport=info.get("transport", "tcp"),
            signature_scheme=info.get("signature_scheme", "hmac-sha256"),
            kernel_name=info.get("kernel_name", "") or "",
            key=key,
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ConnectionInfo:
        """Read a kernel's JSON connection file."""
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise FileNotFoundError(f"cannot read connection file {str(p)!r}: {exc}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"connection file {str(p)!r} is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"connection file {str(p)!r} does not hold a JSON object")
        return cls.from_dict(data)

    def port(self, channel: str) -> int:
        port: int = getattr(self, f"{channel}_port")
        return port

    def url(self, channel: str) -> str:
        """The ZMQ endpoint of ``channel`` (``tcp://ip:port``, or ``ipc://ip-port``)."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}; expected one of {CHANNELS}")
        if self.transport == "tcp":
            return f"tcp://{self.ip}:{self.port(channel)}"
        return f"ipc://{self.ip}-{self.port(channel)}"

    def to_dict(self) -> dict[str, Any]:
        """The connection-file dict (``key`` as text, as Jupyter writes it)."""
        out: dict[str, Any] = {f"{c}_port": self.port(c) for c in CHANNELS}
        out.update(
            ip=self.ip,
            transport=self.transport,
            signature_scheme=self.signature_scheme,
            kernel_name=self.kernel_name,
            key=self.key.decode(),
        )
        return out


def free_ports(count: int = 5, ip: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports free on ``ip`` right now (all held open while choosing)."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((ip, 0))
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def new_connection_info(
    ip: str = "127.0.0.1", kernel_name: str = "", key: bytes | None = None
) -> ConnectionInfo:
    """Fresh free ports on ``ip``, TCP, hmac-sha256, and a random key unless one is given."""
    shell, iopub, stdin, control, hb = free_ports(len(CHANNELS), ip)
    return ConnectionInfo(
        shell_port=shell,
        iopub_port=iopub,
        stdin_port=stdin,
        control_port=control,
        hb_port=hb,
        ip=ip,
        kernel_name=kernel_name,
        key=key if key is not None else secrets.token_hex(32).encode(),
    )


def write_connection_file(info: ConnectionInfo, path: str | os.PathLike[str]) -> Path:
    """Write ``info`` as JSON, readable by the owner only (it holds the key)."""
    p = Path(path)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info.to_dict(), f, indent=1)
    return p


__all__ += ["new_connection_info"]
