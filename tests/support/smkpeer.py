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

__all__ = ["DRIVER", "PYTHON_FLAGS", "REQUIREMENTS", "run_sdk", "sdk_python"]

REQUIREMENTS = ("smk-python-sdk==9.4.4", "protobuf==3.20.3")
"""What the peer's venv holds, pinned."""
DRIVER = Path(__file__).resolve().parents[1] / "adapters" / "smarkets" / "sdk_driver.py"
"""The script ``run_sdk`` runs under the SDK's python."""

# -I: no user site, no PYTHON* variables, no script folder on sys.path (the SDK's package has
# a collections.py and a functools.py that must never shadow the standard library's).
# The SDK's pure-Python protobuf warns at import that a descriptor function is deprecated.
PYTHON_FLAGS = ("-I", "-W", "ignore::DeprecationWarning")
CHECK = """
import json, importlib.metadata as md
import smarkets.streaming_api.api
print(json.dumps({n: md.version(n) for n in ("smk-python-sdk", "protobuf")}))
"""


def _key() -> str:
    packages = "-".join(r.replace("==", "-") for r in REQUIREMENTS)
    return f"{packages}-{python_tag()}"


def _check(venv: Path) -> str | None:
    """Why ``venv`` cannot serve as the peer, or None when it can."""
    if not (venv / MARKER).is_file():
        return "incomplete"
    versions = run_python(venv, PYTHON_FLAGS, CHECK)
    if isinstance(versions, str):
        return versions
    if versions != dict(r.split("==") for r in REQUIREMENTS):
        return f"holds {versions}"
    return None


def _build(venv: Path) -> None:
    """Make the venv at ``venv`` (a new folder); skips when the registry cannot be reached."""
    make_venv(venv)
    pip_install(venv, *REQUIREMENTS)
    (venv / MARKER).write_text(json.dumps({"requirements": list(REQUIREMENTS)}) + "\n")
    problem = _check(venv)
    if problem is not None:
        raise AssertionError(f"the SDK does not import in the new venv: {problem}")


@functools.cache
def sdk_python() -> Path:
    """The python of the cached venv with smk-python-sdk 9.4.4, built on first use."""
    return cached_venv(_key(), _check, _build)


def run_sdk(script_args: Sequence[str], timeout: float, stdin: str | None = None) -> dict[str, Any]:
    """Run ``sdk_driver.py *script_args`` under the SDK's python (``stdin`` as its input) and
    return the one JSON line it prints; the test fails with its stderr if it fails, prints
    anything else or runs past ``timeout`` seconds."""
    return run_driver(sdk_python(), PYTHON_FLAGS, DRIVER, script_args, timeout, stdin)
