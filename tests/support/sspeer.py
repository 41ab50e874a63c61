"""stream-sea-client 0.7.0, the reference stream-sea Python client, as a test peer.

``ss_python()`` is the python of a venv holding ``stream-sea-client==0.7.0`` installed with
``--no-deps``, then ``requests`` and ``websockets`` at whatever versions the registry holds
when the venv is built: the client's own pins (``requests~=2.24``, ``websockets~=8.1``) break
its websocket subscription on Python >= 3.10 (``Lock()`` got an unexpected keyword ``'loop'``),
so PEERS.md 2.2's recipe skips them. The venv is built once from the package registry by package
name, with its own pip, and cached outside the repository under ``~/.cache/actorwire/peers/``
(``$XDG_CACHE_HOME`` when set), keyed by the client's version, the install recipe and the
Python version; the versions of ``requests`` and ``websockets`` it got are recorded in the
venv's marker file (``ss_versions()``) and checked, with the client's, each time a test process
first uses it. A build runs in a temporary folder that is renamed into place when the client
imports, under a file lock: a killed build leaves no half venv, and two test runs never build
at once. The calling test is skipped only when the registry cannot be reached.

``run_ss(args, timeout)`` runs ``tests/adapters/streamsea/ss_driver.py`` under that python
and returns the one JSON object it prints.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

__all__ = ["CLIENT", "DEPENDENCIES", "DRIVER", "run_ss", "ss_python", "ss_versions"]

CLIENT = "stream-sea-client==0.7.0"
"""The client, pinned; installed with ``--no-deps``."""
DEPENDENCIES = ("requests", "websockets")
"""What the client needs at run time, unpinned: the registry's current versions at build."""
DRIVER = Path(__file__).resolve().parents[1] / "adapters" / "streamsea" / "ss_driver.py"
"""The script ``run_ss`` runs under the client's python."""

VENV_TIMEOUT = 120.0
"""Seconds ``python -m venv`` may take (a few seconds: pip comes from the bundled wheel)."""
INSTALL_TIMEOUT = 240.0
"""Seconds each of the two pip installs may take (a few seconds when the registry answers;
the client is an sdist, built into a wheel with setuptools fetched from the registry)."""
CHECK_TIMEOUT = 60.0
"""Seconds the import check of a built or cached venv may take (under a second)."""
UNREACHABLE = ("Could not find a version", "NewConnectionError", "Temporary failure")
"""What pip prints when the package registry cannot be reached (then the test skips)."""
MARKER = "actorwire-peer.json"
"""Written into a venv once it is complete: what it was built with and the versions it got."""

# -I: no user site, no PYTHON* variables, no script folder on sys.path.
PYTHON_FLAGS = ("-I",)
CHECK = """
import json, importlib.metadata as md
import stream_sea_client, stream_sea_client.api, requests, websockets
print(json.dumps({n: md.version(n) for n in ("stream-sea-client", "requests", "websockets")}))
"""


def _peers_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "actorwire" / "peers"


def _key() -> str:
    client = CLIENT.replace("==", "-")
    return f"{client}-nodeps-{'-'.join(DEPENDENCIES)}-py{'.'.join(map(str, sys.version_info[:3]))}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _installed(venv: Path) -> dict[str, str] | str:
    """The versions the venv's python imports, or why it cannot import the client."""
    python = venv / "bin" / "python"
    if not python.exists():
        return "no python"
    try:
        proc = subprocess.run(
            [str(python), *PYTHON_FLAGS, "-c", CHECK],
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT,
            cwd=venv,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return repr(exc)
    if proc.returncode != 0:
        return proc.stderr[-2000:]
    try:
        versions = json.loads(proc.stdout)
    except ValueError:
        return f"unexpected output: {proc.stdout[-500:]!r}"
    if not isinstance(versions, dict):
        return f"unexpected output: {proc.stdout[-500:]!r}"
    return versions


def _recorded(venv: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((venv / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _check(venv: Path) -> str | None:
    """Why ``venv`` cannot serve as the peer, or None when it can: it must be complete, import
    the client, and hold the client's pinned version and the versions its marker records."""
    marker = _recorded(venv)
    if marker is None:
        return "incomplete"
    versions = _installed(venv)
    if isinstance(versions, str):
        return versions
    name, version = CLIENT.split("==")
    if versions.get(name) != version:
        return f"holds {versions}"
    if versions != marker.get("versions"):
        return f"holds {versions}, built with {marker.get('versions')}"
    return None


def _text(output: str | bytes | None) -> str:
    # TimeoutExpired carries bytes even from a text-mode run.
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def _skip_unreachable(what: str, pip_output: str) -> NoReturn:
    _unreachable.append(
        f"the package registry cannot be reached to install {what}: {pip_output.strip()[-300:]}"
    )
    pytest.skip(_unreachable[0])


def _pip_install(venv: Path, *args: str) -> None:
    """``pip install --quiet *args`` in ``venv``; skips when the registry cannot be reached."""
    # `python -m pip`, never bin/pip: the scripts' shebangs name the temporary folder.
    command = [str(venv / "bin" / "python"), "-I", "-m", "pip", "install", "--quiet", *args]
    what = " ".join(args)
    try:
        install = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        text = _text(exc.stdout) + _text(exc.stderr)
        if any(sign in text for sign in UNREACHABLE):
            _skip_unreachable(what, text)
        raise AssertionError(f"pip install {what} took over {INSTALL_TIMEOUT}s") from exc
    if install.returncode != 0:
        text = install.stdout + install.stderr
        if any(sign in text for sign in UNREACHABLE):
            _skip_unreachable(what, text)
        raise AssertionError(f"pip install {what} failed: {text[-2000:]}")


def _build(venv: Path) -> None:
    """Make the venv at ``venv`` (a new folder); skips when the registry cannot be reached."""
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)],
        check=True,
        capture_output=True,
        timeout=VENV_TIMEOUT,
    )
    # PEERS.md 2.2's recipe: the client without its pins, then its dependencies as they are now.
    _pip_install(venv, "--no-deps", CLIENT)
    _pip_install(venv, *DEPENDENCIES)
    versions = _installed(venv)
    if isinstance(versions, str):
        raise AssertionError(f"the client does not import in the new venv: {versions}")
    marker = {"client": CLIENT, "no_deps": True, "dependencies": list(DEPENDENCIES)}
    (venv / MARKER).write_text(json.dumps({**marker, "versions": versions}) + "\n")
    problem = _check(venv)
    if problem is not None:
        raise AssertionError(f"the new venv cannot serve as the peer: {problem}")


_unreachable: list[str] = []
"""The reason the registry could not be reached, once it could not: later callers skip at
once rather than wait for pip again."""


@functools.cache
def ss_python() -> Path:
    """The python of the cached venv with stream-sea-client 0.7.0, built on first use."""
    if _unreachable:
        pytest.skip(_unreachable[0])
    peers = _peers_dir()
    peers.mkdir(parents=True, exist_ok=True)
    key = _key()
    venv = peers / key
    with _locked(peers / f"{key}.lock"):
        if _check(venv) is not None:
            shutil.rmtree(venv, ignore_errors=True)
            # Under the lock nobody else builds this key: leftovers are from killed builds.
            for stale in peers.glob(f".{key}.build-*"):
                shutil.rmtree(stale, ignore_errors=True)
            building = Path(tempfile.mkdtemp(prefix=f".{key}.build-", dir=peers))
            try:
                _build(building)
                building.chmod(0o755)  # mkdtemp made it private to this user
                building.rename(venv)
            finally:
                shutil.rmtree(building, ignore_errors=True)
    return venv / "bin" / "python"


def ss_versions() -> dict[str, str]:
    """The versions of stream-sea-client, requests and websockets the peer's venv holds, as
    recorded when it was built (and checked against what it imports, once per process)."""
    marker = _recorded(ss_python().parents[1])
    assert marker is not None, "the peer's venv lost its marker"
    versions: dict[str, str] = marker["versions"]
    return versions


def run_ss(script_args: Sequence[str], timeout: float, stdin: str | None = None) -> dict[str, Any]:
    """Run ``ss_driver.py *script_args`` under the client's python (``stdin`` as its input)
    and return the one JSON line it prints; the test fails with its stderr if it fails, prints
    anything else or runs past ``timeout`` seconds."""
    python = ss_python()
    command = [str(python), *PYTHON_FLAGS, str(DRIVER), *script_args]
    what = f"ss_driver.py {' '.join(script_args)}"
    try:
        # The working directory is the venv's root: nowhere near the repository's packages.
        proc = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=python.parents[1],
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{what} ran past {timeout}s; stderr: {_text(exc.stderr)[-3000:]}")
    if proc.returncode != 0:
        pytest.fail(f"{what} exited with {proc.returncode}; stderr: {proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        pytest.fail(f"{what} printed {len(lines)} lines, not one: {proc.stdout[-1000:]!r}")
    result = json.loads(lines[0])
    if not isinstance(result, dict):
        pytest.fail(f"{what} printed {lines[0][:200]!r}, not a JSON object")
    return result
