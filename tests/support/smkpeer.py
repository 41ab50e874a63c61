"""smk-python-sdk 9.4.4, the reference Smarkets client, as a test peer.

``sdk_python()`` is the python of a venv holding ``smk-python-sdk==9.4.4`` and
``protobuf==3.20.3``: the pure-Python protobuf that imports the SDK's old generated code on
Python 3.11 with no ``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION`` (PEERS.md 1.5), while the
suite's own process keeps its protobuf. The venv is built once from the package registry by
package name, with its own pip, and cached outside the repository under
``~/.cache/actorwire/peers/`` (``$XDG_CACHE_HOME`` when set), keyed by both package versions
and the Python version. A build runs in a temporary folder that is renamed into place when the
SDK imports, under a file lock: a killed build leaves no half venv, and two test runs never
build at once. The calling test is skipped only when the registry cannot be reached.

``run_sdk(args, timeout)`` runs ``tests/adapters/smarkets/sdk_driver.py`` under that python
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

__all__ = ["DRIVER", "REQUIREMENTS", "run_sdk", "sdk_python"]

REQUIREMENTS = ("smk-python-sdk==9.4.4", "protobuf==3.20.3")
"""What the peer's venv holds, pinned."""
DRIVER = Path(__file__).resolve().parents[1] / "adapters" / "smarkets" / "sdk_driver.py"
"""The script ``run_sdk`` runs under the SDK's python."""

VENV_TIMEOUT = 120.0
"""Seconds ``python -m venv`` may take (a few seconds: pip comes from the bundled wheel)."""
INSTALL_TIMEOUT = 240.0
"""Seconds the pip install may take (a few seconds when the registry answers)."""
CHECK_TIMEOUT = 60.0
"""Seconds the import check of a built or cached venv may take (under a second)."""
UNREACHABLE = ("Could not find a version", "NewConnectionError", "Temporary failure")
"""What pip prints when the package registry cannot be reached (then the test skips)."""
MARKER = "actorwire-peer.json"
"""Written into a venv once it is complete: what it was built with."""

# -I: no user site, no PYTHON* variables, no script folder on sys.path (the SDK's package has
# a collections.py and a functools.py that must never shadow the standard library's).
# The SDK's pure-Python protobuf warns at import that a descriptor function is deprecated.
PYTHON_FLAGS = ("-I", "-W", "ignore::DeprecationWarning")
CHECK = """
import json, importlib.metadata as md
import smarkets.streaming_api.api
print(json.dumps({n: md.version(n) for n in ("smk-python-sdk", "protobuf")}))
"""


def _peers_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "actorwire" / "peers"


def _key() -> str:
    packages = "-".join(r.replace("==", "-") for r in REQUIREMENTS)
    return f"{packages}-py{'.'.join(map(str, sys.version_info[:3]))}"


def _expected_versions() -> dict[str, str]:
    return dict(r.split("==") for r in REQUIREMENTS)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _check(venv: Path) -> str | None:
    """Why ``venv`` cannot serve as the peer, or None when it can."""
    python = venv / "bin" / "python"
    if not (venv / MARKER).is_file() or not python.exists():
        return "incomplete"
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
    if versions != _expected_versions():
        return f"holds {versions}"
    return None


def _text(output: str | bytes | None) -> str:
    # TimeoutExpired carries bytes even from a text-mode run.
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def _skip_unreachable(pip_output: str) -> NoReturn:
    _unreachable.append(
        f"the package registry cannot be reached to install {' '.join(REQUIREMENTS)}: "
        f"{pip_output.strip()[-300:]}"
    )
    pytest.skip(_unreachable[0])


def _build(venv: Path) -> None:
    """Make the venv at ``venv`` (a new folder); skips when the registry cannot be reached."""
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)],
        check=True,
        capture_output=True,
        timeout=VENV_TIMEOUT,
    )
    # `python -m pip`, never bin/pip: the scripts' shebangs name the temporary folder.
    command = [str(venv / "bin" / "python"), "-I", "-m", "pip", "install", "--quiet"]
    try:
        install = subprocess.run(
            [*command, *REQUIREMENTS], capture_output=True, text=True, timeout=INSTALL_TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        text = _text(exc.stdout) + _text(exc.stderr)
        if any(sign in text for sign in UNREACHABLE):
            _skip_unreachable(text)
        raise AssertionError(f"pip install {REQUIREMENTS} took over {INSTALL_TIMEOUT}s") from exc
    if install.returncode != 0:
        text = install.stdout + install.stderr
        if any(sign in text for sign in UNREACHABLE):
            _skip_unreachable(text)
        raise AssertionError(f"pip install {REQUIREMENTS} failed: {text[-2000:]}")
    (venv / MARKER).write_text(json.dumps({"requirements": list(REQUIREMENTS)}) + "\n")
    problem = _check(venv)
    if problem is not None:
        raise AssertionError(f"the SDK does not import in the new venv: {problem}")


_unreachable: list[str] = []
"""The reason the registry could not be reached, once it could not: later callers skip at
once rather than wait for pip again."""


@functools.cache
def sdk_python() -> Path:
    """The python of the cached venv with smk-python-sdk 9.4.4, built on first use."""
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


def run_sdk(script_args: Sequence[str], timeout: float, stdin: str | None = None) -> dict[str, Any]:
    """Run ``sdk_driver.py *script_args`` under the SDK's python (``stdin`` as its input) and
    return the one JSON line it prints; the test fails with its stderr if it fails, prints
    anything else or runs past ``timeout`` seconds."""
    python = sdk_python()
    command = [str(python), *PYTHON_FLAGS, str(DRIVER), *script_args]
    what = f"sdk_driver.py {' '.join(script_args)}"
    try:
        # The working directory is the venv's root: nowhere near the SDK's package folder.
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
