"""``actorwire run`` never prints an api key: a keysquare source that cannot connect, or whose
key is refused by a real platform, fails to start in both log formats, and neither stdout nor
stderr holds the key (no local variables in tracebacks, exception text redacted)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

WRONG_KEY = "wrong-key-3c9a5e71d0"
"""The key the source presents; the platform does not know it."""
PLATFORM_KEY = "platform-key-b82d4f06e1"
"""The key the embedded platform expects."""

UNREACHABLE = """\
[pipeline]
name = "unreachable"

[[sources]]
name = "prices"
kind = "keysquare"
url = "127.0.0.1:{port}"
application_name = "demo"
api_key = "{key}"
data_type = "Price"
timeout = 1

[[sinks]]
name = "out"
kind = "stdout"
from = "prices"
"""

WRONG_KEY_DEFINITION = """\
[pipeline]
name = "wrong-key"

[servers.platform]
kind = "keysquare"
host = "127.0.0.1"
port = 0

[[servers.platform.config.applications]]
name = "demo"
api_key = "{platform_key}"
read = ["*"]
publish = ["*"]

[[servers.platform.config.schemas]]
name = "markets"

[[servers.platform.config.schemas.types]]
name = "Price"
fields = {{ symbol = "string", bid = "float" }}

[[sources]]
name = "prices"
kind = "keysquare"
server = "platform"
application_name = "demo"
api_key = "{key}"
data_type = "Price"
timeout = 2

[[sinks]]
name = "out"
kind = "stdout"
from = "prices"
"""


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def actorwire_command() -> list[str]:
    """The installed ``actorwire`` entry point next to this interpreter."""
    script = Path(sys.executable).with_name("actorwire")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "actorwire.pipelines.cli"]


def run(cwd: Path, definition: str, log_format: str) -> subprocess.CompletedProcess[str]:
    path = cwd / "pipeline.toml"
    path.write_text(definition, encoding="utf-8")
    return subprocess.run(
        [
            *actorwire_command(),
            "run",
            str(path),
            "--duration",
            "1",
            "--log-format",
            log_format,
            "--log-level",
            "debug",  # every line the run can print
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=45,
        check=False,
    )


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_an_unreachable_keysquare_source_never_prints_its_key(
    tmp_path: Path, log_format: str
) -> None:
    done = run(tmp_path, UNREACHABLE.format(port=free_port(), key=WRONG_KEY), log_format)
    assert done.returncode != 0, done.stderr
    assert "did not connect" in done.stderr  # the failure was reported
    assert WRONG_KEY not in done.stdout
    assert WRONG_KEY not in done.stderr


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_a_refused_key_never_appears_in_the_output(tmp_path: Path, log_format: str) -> None:
    definition = WRONG_KEY_DEFINITION.format(key=WRONG_KEY, platform_key=PLATFORM_KEY)
    done = run(tmp_path, definition, log_format)
    assert done.returncode != 0, done.stderr
    assert "registration refused" in done.stderr  # the platform answered, and said no
    for secret in (WRONG_KEY, PLATFORM_KEY):
        assert secret not in done.stdout
        assert secret not in done.stderr
