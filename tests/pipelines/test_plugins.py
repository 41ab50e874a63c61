"""Plugins: adapters add source, sink and server kinds through the ``actorwire.plugins``
entry point group; pipelines name no adapter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from actorwire.pipelines import SINKS, SOURCES, plugins
from actorwire.pipelines.plugins import server_kinds


def test_the_keysquare_adapter_registers_its_kinds() -> None:
    assert "keysquare" in plugins()
    assert "keysquare" in SOURCES and "keysquare_publish" in SINKS
    assert SOURCES["keysquare"].__module__ == "actorwire.adapters.keysquare.pipeline"
    kind = server_kinds()["keysquare"]
    assert kind.default_port == 6800 and kind.serve is not None


def test_importing_pipelines_loads_no_adapter() -> None:
    code = (
        "import sys, actorwire.pipelines, actorwire.actors\n"
        "from actorwire.pipelines import Pipeline\n"
        "loaded = [m for m in ('grpc', 'zmq', 'google.protobuf', 'actorwire.adapters.keysquare',"
        " 'actorwire.adapters.jupyter') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


BROKEN = """\
[pipeline]
name = "p"

[[sources]]
name = "ticks"
kind = "radio"

[[sinks]]
name = "out"
kind = "stdout"
from = "ticks"
"""


def test_a_plugin_that_fails_to_import_is_reported_by_check_at_the_key_path(
    tmp_path: Path,
) -> None:
    # A real installed distribution (its metadata on sys.path) whose plugin cannot import.
    dist = tmp_path / "site" / "radio_adapter-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: radio-adapter\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[actorwire.plugins]\nradio = radio_adapter:plugin\n")
    (tmp_path / "site" / "radio_adapter.py").write_text("import no_such_dependency\n")
    (tmp_path / "p.toml").write_text(BROKEN)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    out = subprocess.run(
        [sys.executable, "-m", "actorwire.pipelines.cli", "check", "p.toml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "p.toml:6: sources[0].kind: unknown source kind 'radio'" in out.stderr
    assert (
        "plugin 'radio' failed to load: ModuleNotFoundError: No module named "
        "'no_such_dependency'" in out.stderr
    )
