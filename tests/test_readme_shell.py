"""Every shell line in the README runs as written in the environment make builds, except
the blocks it marks: ``setup`` (the make commands themselves), ``synopsis`` (a usage line
with placeholders) and ``long-running`` (demos that run for seconds or until Ctrl-C, which
tests/test_examples.py runs in their own way)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"(?:<!-- shell: ([a-z-]+) -->\n)?```(?:sh|bash)\n(.*?)```", re.S)
SKIPPED = {"setup", "synopsis", "long-running"}


def _lines() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out: list[str] = []
    for mark, body in FENCE.findall(text):
        if mark and mark not in SKIPPED:
            raise AssertionError(f"unknown README shell mark {mark!r}")
        if mark in SKIPPED:
            continue
        out.extend(line for line in body.splitlines() if line.strip())
    return out


def test_every_shell_block_is_marked_or_run() -> None:
    assert _lines(), "the README has shell lines to run"


@pytest.mark.parametrize("line", _lines())
def test_a_readme_shell_line_runs_as_written(line: str) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(
        ["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, f"{line}\n{run.stdout[-1000:]}{run.stderr[-1000:]}"
