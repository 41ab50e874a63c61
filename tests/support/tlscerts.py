"""Throwaway TLS material for tests, made with the ``openssl`` command line tool.

``make_ca(directory, name)`` makes a self-signed certificate authority;
``make_server_cert(directory, ca, name)`` a server certificate for 127.0.0.1 (and
``localhost``) signed by it. Keys are unencrypted EC P-256 keys, valid for two days, and
live only in the test's temporary directory. ``require_openssl()`` skips the calling test
with the reason when the tool is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["CertAuthority", "ServerCert", "make_ca", "make_server_cert", "require_openssl"]

OPENSSL_TIMEOUT = 30.0
"""Seconds one openssl run may take (each takes a few milliseconds)."""


@dataclass(frozen=True)
class CertAuthority:
    cert: Path
    key: Path


@dataclass(frozen=True)
class ServerCert:
    cert: Path
    key: Path


def require_openssl() -> str:
    """The openssl executable's path; skips the test when there is none."""
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("the openssl command line tool is not installed: no test certificates")
    return path


def _run(*args: str) -> None:
    openssl = require_openssl()
    result = subprocess.run(
        [openssl, *args], capture_output=True, text=True, timeout=OPENSSL_TIMEOUT, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed ({result.returncode}): {result.stderr}")


def _ec_key(path: Path) -> None:
    _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))


def make_ca(directory: Path, name: str = "ca") -> CertAuthority:
    """A self-signed CA certificate and its key: ``<name>.pem`` and ``<name>.key``."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _ec_key(key)
    _run(
        "req", "-x509", "-new", "-key", str(key), "-out", str(cert), "-days", "2",
        "-subj", f"/CN=actorwire test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return CertAuthority(cert, key)


def make_server_cert(directory: Path, ca: CertAuthority, name: str = "server") -> ServerCert:
    """A server certificate for IP 127.0.0.1 and DNS localhost, signed by ``ca``."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    csr, ext = directory / f"{name}.csr", directory / f"{name}.ext"
    _ec_key(key)
    _run("req", "-new", "-key", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    _run(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext),
    )  # fmt: skip
    return ServerCert(cert, key)
