"""What every reference-client peer shares: a venv built from the package registry by package
name, cached outside the repository, and a driver script run under its python.

A peer module (``smkpeer.py``, ``sspeer.py``) says what its venv holds and how to check it;
this module does the rest, the same way for each:

- venvs live under ``~/.cache/actorwire/peers/`` (``$XDG_CACHE_HOME`` when set), one folder
  per key;
- a build runs in a temporary folder that is renamed into place only once the peer's check
  passes, under a file lock: a killed build leaves no half venv, and two test runs never build
  the same key at once (leftovers of killed builds are removed under the lock);
- a test is skipped only when pip shows the registry cannot be reached, and once it could not,
  later callers skip at once rather than wait for pip again;
- ``run_driver`` runs the peer's driver script and returns the one JSON object it prints, or
  fails the test with its stderr.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

__all__ = [
    "CHECK_TIMEOUT",
    "MARKER",
    "cached_venv",
    "make_venv",
    "peers_dir",
    "pip_install",
    "run_driver",
    "run_python",
]

VENV_TIMEOUT = 120.0
"""Seconds ``python -m venv`` may take (a few seconds: pip comes from the bundled wheel)."""
INSTALL_TIMEOUT = 240.0
"""Seconds one pip install may take (a few seconds when the registry answers; an sdist is
built into a wheel with setuptools fetched from the registry)."""
CHECK_TIMEOUT = 60.0
"""Seconds the import check of a built or cached venv may take (under a second)."""
UNREACHABLE = ("Could not find a version", "NewConnectionError", "Temporary failure")
"""What pip prints when the package registry cannot be reached (then the test skips)."""
MARKER = "actorwire-peer.json"
"""Written into a venv once it is complete: what it was built with."""

_unreachable: list[str] = []
"""The reason the registry could not be reached, once it could not."""


def peers_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "actorwire" / "peers"


def python_tag() -> str:
    """The running Python's version, for cache keys: ``py3.11.7``."""
    return f"py{'.'.join(map(str, sys.version_info[:3]))}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def text(output: str | bytes | None) -> str:
    # TimeoutExpired carries bytes even from a text-mode run.
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def _skip_unreachable(what: str, pip_output: str) -> NoReturn:
    _unreachable.append(
        f"the package registry cannot be reached to install {what}: {pip_output.strip()[-300:]}"
    )
    pytest.skip(_unreachable[0])


def make_venv(venv: Path) -> None:
    """An empty venv at ``venv`` (a new folder)."""
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)],
        check=True,
        capture_output=True,
        timeout=VENV_TIMEOUT,
    )


def pip_install(venv: Path, *args: str) -> None:
    """``pip install --quiet *args`` in ``venv``; skips when the registry cannot be reached."""
    # `python -m pip`, never bin/pip: the scripts' shebangs name the temporary folder.
    command = [str(venv / "bin" / "python"), "-I", "-m", "pip", "install", "--quiet", *args]
    what = " ".join(args)
    try:
        install = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        output = text(exc.stdout) + text(exc.stderr)
        if any(sign in output for sign in UNREACHABLE):
            _skip_unreachable(what, output)
        raise AssertionError(f"pip install {what} took over {INSTALL_TIMEOUT}s") from exc
    if install.returncode != 0:
        output = install.stdout + install.stderr
        if any(sign in output for sign in UNREACHABLE):
            _skip_unreachable(what, output)
        raise AssertionError(f"pip install {what} failed: {output[-2000:]}")


def run_python(venv: Path, flags: Sequence[str], script: str) -> Any | str:
    """Run ``script`` under the venv's python and return the JSON it prints, or why it could
    not (a string)."""
    python = venv / "bin" / "python"
    if not python.exists():
        return "no python"
    try:
        proc = subprocess.run(
            [str(python), *flags, "-c", script],
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
        return json.loads(proc.stdout)
    except ValueError:
        return f"unexpected output: {proc.stdout[-500:]!r}"


def cached_venv(
    key: str, check: Callable[[Path], str | None], build: Callable[[Path], None]
) -> Path:
    """The python of the venv cached under ``key``: reused while ``check(venv)`` is None,
    else made again by ``build(folder)`` in a temporary folder renamed into place."""
    if _unreachable:
        pytest.skip(_unreachable[0])
    peers = peers_dir()
    peers.mkdir(parents=True, exist_ok=True)
    venv = peers / key
    with _locked(peers / f"{key}.lock"):
        if check(venv) is not None:
            shutil.rmtree(venv, ignore_errors=True)
            # Under the lock nobody else builds this key: leftovers are from killed builds.
            for stale in peers.glob(f".{key}.build-*"):
                shutil.rmtree(stale, ignore_errors=True)
            building = Path(tempfile.mkdtemp(prefix=f".{key}.build-", dir=peers))
            try:
                build(building)
                building.chmod(0o755)  # mkdtemp made it private to this user
                building.rename(venv)
            finally:
                shutil.rmtree(building, ignore_errors=True)
    return venv / "bin" / "python"


def run_driver(
    python: Path,
    flags: Sequence[str],
    driver: Path,
    script_args: Sequence[str],
    timeout: float,
    stdin: str | None = None,
) -> dict[str, Any]:
    """Run ``driver *script_args`` under ``python`` (``stdin`` as its input) and return the one
    JSON object it prints; the test fails with its stderr if it fails, prints anything else
    or runs past ``timeout`` seconds."""
    command = [str(python), *flags, str(driver), *script_args]
    what = f"{driver.name} {' '.join(script_args)}"
    try:
        # The working directory is the venv's root: nowhere near any package's folder.
        proc = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=python.parents[1],
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{what} ran past {timeout}s; stderr: {text(exc.stderr)[-3000:]}")
    if proc.returncode != 0:
        pytest.fail(f"{what} exited with {proc.returncode}; stderr: {proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        pytest.fail(f"{what} printed {len(lines)} lines, not one: {proc.stdout[-1000:]!r}")
    result = json.loads(lines[0])
    if not isinstance(result, dict):
        pytest.fail(f"{what} printed {lines[0][:200]!r}, not a JSON object")
    return result
