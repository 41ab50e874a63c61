"""TLS contexts for links and embedded servers, built from files.

Rules:

1. A client verifies the server: certificate verification and the hostname check are on
   unless the caller turns the hostname check off by name; there is no switch to skip
   verification.
2. Files are checked when the context is built, so a bad path fails at once, before any
   connection: the error names the path and what is wrong with it (missing, unreadable, not
   a PEM certificate, a key that does not match its certificate), never the file's contents.
3. Key passwords stay out of errors, logs and reprs; an encrypted key with no password is
   refused with an error instead of a prompt on the terminal.
4. TLS 1.2 is the oldest version either side accepts.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from .errors import ActorwireError

__all__ = ["StrPath", "TlsConfigError", "client_context", "server_context"]

StrPath = str | os.PathLike[str]


class TlsConfigError(ActorwireError, ValueError):
    """A certificate, key or CA file cannot be used; the message names the file."""


def client_context(cafile: StrPath | None = None, *, check_hostname: bool = True) -> ssl.SSLContext:
    """A client context that trusts the CAs in ``cafile`` (PEM; the system's trust store when
    None) and checks the server's hostname against its certificate unless
    ``check_hostname=False``."""
    if not isinstance(check_hostname, bool):
        raise TypeError(f"check_hostname must be a bool, got {check_hostname!r}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verify_mode CERT_REQUIRED, hostname check on
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cafile is None:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        path = _readable(cafile, "CA file")
        try:
            ctx.load_verify_locations(cafile=str(path))
        except ssl.SSLError as exc:
            _bad(path, "CA file", "is not a PEM CA certificate", exc)
    ctx.check_hostname = check_hostname
    return ctx


def server_context(
    certfile: StrPath, keyfile: StrPath, *, password: str | bytes | None = None
) -> ssl.SSLContext:
    """A server context presenting the certificate chain in ``certfile`` (PEM) with the
    private key in ``keyfile`` (PEM; decrypted with ``password`` when it is encrypted)."""
    cert = _readable(certfile, "certificate file")
    key = _readable(keyfile, "key file")
    if password is not None and not isinstance(password, str | bytes):
        raise TypeError(f"password must be str, bytes or None, got {type(password).__name__}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key), password=_password(key, password))
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsConfigError(
                f"TLS key file {str(key)!r} does not match the certificate in {str(cert)!r}"
            ) from None
        if not _is_certificate(cert):
            _bad(cert, "certificate file", "is not a PEM certificate", exc)
        if password is not None:
            _bad(key, "key file", "is not a PEM private key, or the password is wrong", exc)
        _bad(key, "key file", "is not a PEM private key", exc)
    return ctx


def _readable(path: StrPath, what: str) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"TLS {what} must be a path (str or os.PathLike), got {path!r}")
    p = Path(path)
    if not p.exists():
        raise TlsConfigError(f"TLS {what} {str(p)!r} does not exist")
    if not p.is_file():
        raise TlsConfigError(f"TLS {what} {str(p)!r} is not a file")
    try:
        with p.open("rb"):
            pass
    except OSError as exc:
        raise TlsConfigError(f"TLS {what} {str(p)!r} cannot be read: {exc.strerror}") from None
    return p


def _bad(path: Path, what: str, problem: str, exc: ssl.SSLError) -> NoReturn:
    # The library's reason code says what it missed; its text never holds the file's bytes,
    # but only the code is passed on, to be sure.
    code = exc.reason or type(exc).__name__
    raise TlsConfigError(f"TLS {what} {str(path)!r} {problem} ({code})") from None


def _is_certificate(path: Path) -> bool:
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cafile=str(path))
    except ssl.SSLError:
        return False
    return True


def _password(key: Path, password: str | bytes | None) -> str | bytes | Callable[[], str]:
    if password is not None:
        return password

    def refuse() -> NoReturn:
        # Called only for an encrypted key: without it OpenSSL would prompt on the terminal.
        raise TlsConfigError(f"TLS key file {str(key)!r} is encrypted: pass its password")

    return refuse
