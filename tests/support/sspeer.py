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

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support.peervenv import (
    MARKER,
    cached_venv,
    make_venv,
    pip_install,
    python_tag,
    run_driver,
    run_python,
)

__all__ = ["CLIENT", "DEPENDENCIES", "DRIVER", "run_ss", "ss_python", "ss_versions"]

CLIENT = "stream-sea-client==0.7.0"
"""The client, pinned; installed with ``--no-deps``."""
DEPENDENCIES = ("requests", "websockets")
"""What the client needs at run time, unpinned: the registry's current versions at build."""
DRIVER = Path(__file__).resolve().parents[1] / "adapters" / "streamsea" / "ss_driver.py"
"""The script ``run_ss`` runs under the client's python."""

# -I: no user site, no PYTHON* variables, no script folder on sys.path.
PYTHON_FLAGS = ("-I",)
CHECK = """
import json, importlib.metadata as md
import stream_sea_client, stream_sea_client.api, requests, websockets
print(json.dumps({n: md.version(n) for n in ("stream-sea-client", "requests", "websockets")}))
"""


def _key() -> str:
    client = CLIENT.replace("==", "-")
    return f"{client}-nodeps-{'-'.join(DEPENDENCIES)}-{python_tag()}"


def _installed(venv: Path) -> dict[str, str] | str:
    """The versions the venv's python imports, or why it cannot import the client."""
    versions = run_python(venv, PYTHON_FLAGS, CHECK)
    if isinstance(versions, str):
        return versions
    if not isinstance(versions, dict):
        return f"unexpected output: {versions!r}"
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


def _build(venv: Path) -> None:
    """Make the venv at ``venv`` (a new folder); skips when the registry cannot be reached."""
    make_venv(venv)
    # PEERS.md 2.2's recipe: the client without its pins, then its dependencies as they are now.
    pip_install(venv, "--no-deps", CLIENT)
    pip_install(venv, *DEPENDENCIES)
    versions = _installed(venv)
    if isinstance(versions, str):
        raise AssertionError(f"the client does not import in the new venv: {versions}")
    marker = {"client": CLIENT, "no_deps": True, "dependencies": list(DEPENDENCIES)}
    (venv / MARKER).write_text(json.dumps({**marker, "versions": versions}) + "\n")
    problem = _check(venv)
    if problem is not None:
        raise AssertionError(f"the new venv cannot serve as the peer: {problem}")


@functools.cache
def ss_python() -> Path:
    """The python of the cached venv with stream-sea-client 0.7.0, built on first use."""
    return cached_venv(_key(), _check, _build)


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
    return run_driver(ss_python(), PYTHON_FLAGS, DRIVER, script_args, timeout, stdin)
